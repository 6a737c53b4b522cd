"""HL7 annotated ECG (aECG, HL7 V3 ECG R1, the FDA's submission format) -> ``EcgRecording``.

ecgdatakit parses the rhythm series (``value = origin + scale * digit``), the subject and the
annotation sets. A QTc without a stated formula (``MDC_ECG_TIME_PD_QTc``) is left by ecgdatakit
as annotation text; it is read here, in milliseconds.
"""

from __future__ import annotations

import re
from pathlib import Path

from ecgdatakit.parsing.parsers.hl7_aecg import HL7aECGParser

from srcohort.sources.ecg.model import EcgRecording
from srcohort.sources.ecg.utils import first_of, parse_with, recogniser, recording_from

SOURCE_FORMAT = "hl7-aecg"
QTC_CODE = "MDC_ECG_TIME_PD_QTc"
_SECONDS = {"ms": 1.0, "s": 1000.0}

# Whether the first bytes of a file are an ``<AnnotatedECG>`` document.
is_aecg = recogniser(HL7aECGParser)


def read_aecg(path: str | Path) -> EcgRecording:
    """Read an aECG: rhythm sequences, trial subject, measurement and statement annotations."""
    path = Path(path)
    record = parse_with(HL7aECGParser, path)
    gm = record.measurements
    qtc = first_of(_milliseconds(record.annotations.get(QTC_CODE)), gm.qtc_bazett,
                   gm.qtc_fridericia)
    return recording_from(record, path, SOURCE_FORMAT, measurements={"qtc_interval": qtc})


def _milliseconds(text: str | None) -> float | None:
    """``"436 ms"`` or ``"0.436 s"`` in ms; None for other units."""
    match = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(ms|s)?\s*", text or "")
    return None if match is None else float(match.group(1)) * _SECONDS[match.group(2) or "ms"]
