"""GE MUSE resting ECG XML (restecg.dtd) -> ``EcgRecording``.

MUSE stores the eight independent leads (I, II, V1-V6) as Base64 16-bit samples; the other
four limb leads follow from Einthoven's and Goldberger's relations and are derived here, as
MUSE's own viewer does, so every format yields the same 12 leads. Parsing is ecgdatakit's; the
declared lead count is checked here because ecgdatakit does not compare it with the data.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from ecgdatakit.parsing.helpers.xml import parse_xml_root
from ecgdatakit.parsing.parsers.ge_muse_xml import GEMuseXMLParser

from srcohort.sources.ecg.model import STANDARD_LEADS, EcgFormatError, EcgRecording
from srcohort.sources.ecg.utils import first_of, number, parse_with, recogniser, recording_from

SOURCE_FORMAT = "ge-muse"
DERIVED_LIMB_LEADS = ("III", "aVR", "aVL", "aVF")

# Whether the first bytes of a file are a MUSE ``<RestingECG>`` document.
is_muse = recogniser(GEMuseXMLParser)


def read_muse(path: str | Path) -> EcgRecording:
    """Read a MUSE XML export: rhythm leads, demographics, measurements, diagnosis statements."""
    path = Path(path)
    record = parse_with(GEMuseXMLParser, path)
    _check_lead_count(path, len(record.leads))
    qtc = first_of(number(record.annotations.get("QTCorrected")),
                   record.measurements.qtc_fridericia)
    return recording_from(record, path, SOURCE_FORMAT, measurements={"qtc_interval": qtc},
                          derive=complete_limb_leads)


def complete_limb_leads(leads: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Add III, aVR, aVL, aVF from I and II when the file stores none of them."""
    if "I" not in leads or "II" not in leads or set(DERIVED_LIMB_LEADS) & leads.keys():
        return leads
    one, two = leads["I"], leads["II"]
    derived = {"III": two - one, "aVR": -(one + two) / 2, "aVL": one - two / 2,
               "aVF": two - one / 2}
    complete = {**leads, **derived}
    order = [name for name in STANDARD_LEADS if name in complete]
    return {name: complete[name] for name in order + [n for n in complete if n not in order]}


def _check_lead_count(path: Path, found: int) -> None:
    """The rhythm waveform's NumberofLeads must match the leads it holds."""
    root = parse_xml_root(path.read_bytes())   # parsed before by ecgdatakit, so well-formed
    for waveform in root.findall("Waveform"):
        if _text(waveform, "WaveformType").lower() not in ("", "rhythm"):
            continue
        declared = _text(waveform, "NumberofLeads")
        if declared and declared.isdigit() and int(declared) != found:
            raise EcgFormatError(f"{path}: the rhythm waveform declares {declared} leads "
                                 f"but holds {found}")


def _text(node: ET.Element, tag: str) -> str:
    child = node.find(tag)
    return "" if child is None or child.text is None else child.text.strip()
