"""Philips (Sierra) ECG XML, PageWriter / TraceMasterVue / IntelliSpace ECG -> ``EcgRecording``.

Document versions 1.03 to 1.04.02, Base64 or plain samples, uncompressed or XLI-compressed
(with the limb-lead residuals rebuilt), all parsed by ecgdatakit. Philips states QTc per
formula; the model keeps one QTc, Bazett's where present (the cart's printed default). The
declared lead count is checked here: ecgdatakit reads fewer labels than declared silently.
"""

from __future__ import annotations

from pathlib import Path

from ecgdatakit.parsing.parsers.sierra_xml import SierraXMLParser

from srcohort.sources.ecg.model import EcgFormatError, EcgRecording
from srcohort.sources.ecg.utils import first_of, number, parse_with, recogniser, recording_from

SOURCE_FORMAT = "philips"

# Whether the first bytes of a file are a ``<restingecgdata>`` document (UTF-8 or -16).
is_philips = recogniser(SierraXMLParser)


def read_philips(path: str | Path) -> EcgRecording:
    """Read a Philips XML ECG: rhythm leads, patient, measurements, interpretation."""
    path = Path(path)
    record = parse_with(SierraXMLParser, path)
    declared = record.raw_metadata.get("parsed_waveforms", {}).get("numberofleads", "")
    if declared.isdigit() and int(declared) != len(record.leads):
        raise EcgFormatError(f"{path}: parsedwaveforms declares {declared} leads but holds "
                             f"{len(record.leads)}")
    gm = record.measurements
    qtc = first_of(gm.qtc_bazett, gm.qtc_fridericia, number(record.annotations.get("qtc")))
    return recording_from(record, path, SOURCE_FORMAT, measurements={"qtc_interval": qtc})
