"""Any supported ECG file -> ``EcgRecording``, the format told by the content.

Sites name files as they please (``.xml`` is MUSE, Philips or aECG; SCP files often have no
extension), so the format is recognised from the first bytes: the DICOM prefix, the SCP
Section 0 pointer to itself, or the XML root element.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from srcohort.logs import get_logger
from srcohort.sources.ecg.aecg import SOURCE_FORMAT as AECG, is_aecg, read_aecg
from srcohort.sources.ecg.dicom import SOURCE_FORMAT as DICOM, is_dicom, read_dicom
from srcohort.sources.ecg.model import EcgFormatError, EcgRecording
from srcohort.sources.ecg.muse import SOURCE_FORMAT as MUSE, is_muse, read_muse
from srcohort.sources.ecg.philips import SOURCE_FORMAT as PHILIPS, is_philips, read_philips
from srcohort.sources.ecg.scp import SOURCE_FORMAT as SCP, is_scp, read_scp

log = get_logger(__name__)

SNIFF_BYTES = 4096
# source_format -> (recogniser of the first bytes, reader); binary formats first.
FORMATS: dict[str, tuple[Callable[[bytes], bool], Callable[[Path], EcgRecording]]] = {
    DICOM: (is_dicom, read_dicom),
    SCP: (is_scp, read_scp),
    PHILIPS: (is_philips, read_philips),
    MUSE: (is_muse, read_muse),
    AECG: (is_aecg, read_aecg),
}


def detect_format(path: str | Path) -> str:
    """The ``source_format`` of the file at ``path``, from its content."""
    path = Path(path)
    with path.open("rb") as handle:
        header = handle.read(SNIFF_BYTES)
    for name, (recognises, _) in FORMATS.items():
        if recognises(header):
            return name
    raise EcgFormatError(f"{path}: not an ECG file of a supported format "
                         f"({', '.join(FORMATS)})")


def read_ecg(path: str | Path) -> EcgRecording:
    """Read an ECG file of any supported format; EcgFormatError names the file and reason."""
    path = Path(path)
    source_format = detect_format(path)
    recording = FORMATS[source_format][1](path)
    log.info("ecg read", extra={"file": str(path), "format": source_format,
                                "leads": len(recording.leads), "samples": recording.samples})
    return recording
