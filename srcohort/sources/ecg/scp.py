"""SCP-ECG (EN 1064 / ISO 11073-91064) binary records -> ``EcgRecording``.

ecgdatakit decodes the sections (Huffman, difference encoding, reference beat subtraction) and
checks every CRC. Section 7 stores wave boundaries of the reference beat rather than
intervals; PR, QRS and QT are their differences (QRS onset - P onset, QRS offset - QRS onset,
T offset - QRS onset), which ecgdatakit leaves to the caller.
"""

from __future__ import annotations

from pathlib import Path

from ecgdatakit.parsing.parsers.scp_ecg import SCPECGParser

from srcohort.sources.ecg.model import EcgRecording
from srcohort.sources.ecg.utils import first_of, number, parse_with, recogniser, recording_from

SOURCE_FORMAT = "scp"

# Whether the first bytes of a file are an SCP record: Section 0 pointing at itself.
is_scp = recogniser(SCPECGParser)


def read_scp(path: str | Path) -> EcgRecording:
    """Read an SCP-ECG record: rhythm data, patient data, global measurements, statements."""
    path = Path(path)
    record = parse_with(SCPECGParser, path)
    p_onset, qrs_onset, qrs_offset, t_offset = (
        number(record.annotations.get(f"median_{wave}_ms"))
        for wave in ("p_onset", "qrs_onset", "qrs_offset", "t_offset"))
    measurements = {
        "pr_interval": _interval(p_onset, qrs_onset),
        "qrs_duration": _interval(qrs_onset, qrs_offset),
        "qt_interval": _interval(qrs_onset, t_offset),
        "qtc_interval": first_of(record.measurements.qtc_bazett,
                                 record.raw_metadata.get("qtc_ms")),
    }
    return recording_from(record, path, SOURCE_FORMAT, measurements=measurements)


def _interval(start: float | None, end: float | None) -> float | None:
    return None if start is None or end is None else end - start
