"""ECG files and label maps of a site -> DICOM ECG waveform + ECG report SR, and DICOM SEG.

Both join patients the site already has (images or a registry row); anything that cannot be
read, or that belongs to nobody, is quarantined with the reason. UIDs derive from the site, the
source file and the content (``outputs.seal``), so converting again rewrites the same instances.
"""

from __future__ import annotations

from typing import Callable


from srcohort.convert.outputs import seal
from srcohort.convert.patients import PatientInputs, with_ct
from srcohort.convert.report import ConversionReport, Quarantine
from srcohort.logs import get_logger
from srcohort.sources.ecg.model import EcgFormatError
from srcohort.sources.ecg.read import read_ecg
from srcohort.sources.labelmaps import LabelMapError, LabelTable, read_label_table
from srcohort.sources import identifiers
from srcohort.sources.confine import inside, refusal, site_files
from srcohort.sources.mapping import SiteMapping
from srcohort.sources.tables import RowError, TableRecord
from srcohort.seg.sop import build_segmentation
from srcohort.sr.ecg import EcgReport, EcgReportSR
from srcohort.uids import derived_uid
from srcohort.waveform.sop import ecg_dataset

log = get_logger(__name__)
Writer = Callable[..., str]   # (instance[, its sealed bytes]) -> its path below dicom/
UNKNOWN_PATIENT = "patient id matches no images nor registry row"


def convert_ecgs(mapping: SiteMapping, patients: dict[str, PatientInputs], write: Writer,
                 report: ConversionReport, quarantine: Quarantine) -> None:
    """Every file of the site's ECG folder -> waveform + report, joined to its patient."""
    if mapping.ecg is None or not mapping.ecg.is_dir():
        return
    for path, reason in site_files(mapping.ecg, mapping.root):
        if reason:
            quarantine.add(RowError(path, None, reason))
            continue
        rel = str(path.relative_to(mapping.root))
        try:
            recording = read_ecg(path)
            pid = recording.patient_id = identifiers.patient_id(recording.patient_id,
                                                                "the ECG's patient id")
            if pid not in patients:
                quarantine.add(RowError(path, None, f"{path}: {UNKNOWN_PATIENT} ({pid!r})"))
                continue
            waveform = ecg_dataset(
                recording, study=None, institution=mapping.institution,
                series_instance_uid=derived_uid(mapping.site, rel, "ecg-series"),
                sop_instance_uid=derived_uid(mapping.site, rel, "ecg-instance"))
            sealed = seal(waveform)           # the report references its final UID
            sr = EcgReportSR(waveform, EcgReport(recording, waveform), site=mapping.site,
                             institution=mapping.institution)
        except (EcgFormatError, ValueError) as exc:
            message = str(exc) if str(path) in str(exc) else f"{path}: {exc}"
            quarantine.add(RowError(path, None, message))
            continue
        report.converted(path, mapping.root, outputs=[write(waveform, sealed), write(sr)])


def convert_segmentations(mapping: SiteMapping, patients: dict[str, PatientInputs],
                          rows: list[TableRecord], write: Writer, report: ConversionReport,
                          quarantine: Quarantine) -> None:
    """Every row of the segmentations table -> a binary SEG on the patient's CT."""
    if not rows:
        return
    try:
        table: LabelTable = read_label_table(mapping.label_table)
    except (LabelMapError, OSError) as exc:
        for row in rows:
            quarantine.add(RowError(row.file, row.line, f"label table unusable: {exc}",
                                    row.values["patient_id"]))
        return
    for row in rows:
        pid, rel = row.values["patient_id"], str(row.values["file"])
        try:
            label_map = inside(mapping.root, rel, "label map")
            if reason := refusal(label_map, mapping.root):
                raise LabelMapError(f"{rel}: {reason}")
            ct = with_ct(patients[pid]).ct_headers       # read for this SEG, then dropped
            if not ct:
                raise LabelMapError(f"{rel}: patient {pid!r} has no CT to put the SEG on")
            seg, dropped = build_segmentation(
                label_map, table, ct, institution=mapping.institution,
                series_instance_uid=derived_uid(mapping.site, rel, "seg-series"),
                sop_instance_uid=derived_uid(mapping.site, rel, "seg-instance"))
        except (LabelMapError, OSError, ValueError) as exc:
            quarantine.add(RowError(row.file, row.line, str(exc), pid))
            continue
        note = (f"{dropped} labelled slice(s) lie on CT slices that were set aside and are not "
                f"in the SEG" if dropped else "")
        report.converted(label_map, mapping.root, outputs=[write(seg)], note=note)
