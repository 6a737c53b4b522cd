"""The SR instance shared by the families: Comprehensive (3D) SR with srcohort's conventions.

Every family's ``sop.py`` subclasses one of these and names only its series number and
description, so manufacturer, the private coding scheme declaration, the character set and the
handling of context-only evidence are the same for every SR srcohort writes.

highdicom's SR constructor spends most of a conversion's time on work that comes out the same
for every instance of a class: it looks attributes up in the standard's IOD and module tables
(milliseconds per look-up), deep-copies and re-parses the content tree that highdicom's
templates have just validated, and searches that tree for references. So the first instance of
each class is built by highdicom's constructor; what it shares with every other instance is kept
(``_Shell``), and each later instance is a copy of that shell plus what differs: UIDs,
institution, the patient and study attributes highdicom copies from the first
evidence instance, the evidence references, the contributing equipment and the content. The
checks highdicom's constructor applies to those values are applied too, with highdicom's own
functions, so bad input fails the same way. Inside ``items.highdicom_only()`` every SR is built
by highdicom's constructor; tests/test_sr_fast_path.py shows that both give the same bytes.
"""

from __future__ import annotations

import datetime as dt
import logging
from copy import deepcopy
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, Sequence

import highdicom as hd
from highdicom.enum import PatientSexValues
from highdicom.sr.templates import Template
from highdicom.sr.utils import collect_evidence
from highdicom.sr.value_types import ContentItem, ContentSequence
from highdicom.valuerep import _check_specific_character_set, check_person_name
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DataElementSequence
from pydicom.tag import BaseTag, Tag
from pydicom.uid import UID
from pydicom.valuerep import DA, TM

from srcohort import __version__
from srcohort.content_time import NO_DATE, settle, source_datetime
from srcohort.sr.evidence import finish, is_context_only
from srcohort.sr.items import Prototypes, clone, copying

MANUFACTURER = "srcohort"

# Set by highdicom's SOPClass constructor from the first evidence instance; those the evidence
# carries are then replaced by copies of its elements (copy_patient_and_study_information).
_FROM_EVIDENCE = {keyword: Tag(keyword) for keyword in (
    "PatientID", "PatientName", "PatientBirthDate", "PatientSex", "StudyInstanceUID",
    "AccessionNumber", "StudyID", "StudyDate", "StudyTime", "ReferringPhysicianName")}
# Set per instance beside those, the copied Patient and Study module attributes and the root
# content item's attributes; everything else an instance has is its class's.
_PER_INSTANCE = tuple(Tag(keyword) for keyword in (
    "SOPInstanceUID", "SeriesInstanceUID", "InstitutionName", "InstanceCreationDate",
    "InstanceCreationTime", "ContentDate", "ContentTime",
    "CurrentRequestedProcedureEvidenceSequence", "PertinentOtherEvidenceSequence",
    "ContributingEquipmentSequence"))
_ACQUISITION_EQUIPMENT = ("Manufacturer", "ManufacturerModelName", "SoftwareVersions",
                          "DeviceSerialNumber", "InstitutionName", "InstitutionalDepartmentName",
                          "InstitutionAddress", "StationName")
_CONTENT_SEQUENCE, _VALUE_TYPE = Tag("ContentSequence"), Tag("ValueType")
_HIGHDICOM_LOG = logging.getLogger("highdicom.base")    # where its constructor logs PN warnings

_SHELLS: dict[type, _Shell] = {}
_EVIDENCE: Prototypes[tuple, Dataset] = Prototypes(size=16)
_EQUIPMENT: Prototypes[tuple, Dataset] = Prototypes(size=64)


class SrcohortSR:
    """Mixin: build the SR with srcohort's attributes, then finish it (evidence, codes); the
    first instance of a class with highdicom's constructor, later ones from its ``_Shell``."""

    SERIES_NUMBER: ClassVar[int]
    SERIES_DESCRIPTION: ClassVar[str]

    def __init__(self, evidence: Sequence[Dataset], content: Template, *,
                 series_instance_uid: str, sop_instance_uid: str, institution: str = "",
                 content_datetime: tuple[str, str] | None = None) -> None:
        """``content_datetime`` (DA, TM): when the recorded data were made; by default the
        content time of the first evidence instance (``content_time.source_datetime``)."""
        when = content_datetime or (source_datetime(evidence[0]) if evidence else NO_DATE)
        shell = _SHELLS.get(type(self)) if copying() else None
        if shell is not None:
            shell.fill(self, evidence, content, series_instance_uid=series_instance_uid,
                       sop_instance_uid=sop_instance_uid, institution=institution)
            settle(self, when)  # type: ignore[arg-type]
            return
        super().__init__(  # type: ignore[call-arg]
            evidence=evidence, content=content, series_instance_uid=series_instance_uid,
            series_number=self.SERIES_NUMBER, sop_instance_uid=sop_instance_uid,
            instance_number=1, manufacturer=MANUFACTURER, is_complete=True,
            institution_name=institution or None,
            record_evidence=not is_context_only(evidence),
            series_description=self.SERIES_DESCRIPTION, software_versions=__version__)
        finish(self, evidence, private_codes=True)  # type: ignore[arg-type]
        settle(self, when)  # type: ignore[arg-type]
        if copying() and type(self) not in _SHELLS:
            _SHELLS[type(self)] = _Shell.of(self, evidence,  # type: ignore[arg-type]
                                            _root(content))

    @property
    def content(self) -> ContentSequence:
        """highdicom's parsed view of the content tree. Made on first use for an instance built
        from a shell, the way highdicom's constructor makes it (from a copy of the content)."""
        if "_content" not in self.__dict__:
            root = ContentItem._from_dataset_derived(deepcopy(self.__dict__["_content_root"]))
            self.__dict__["_content"] = ContentSequence([root], is_root=True)
        return self.__dict__["_content"]


class SrcohortComprehensiveSR(SrcohortSR, hd.sr.ComprehensiveSR):
    """Comprehensive SR: text, codes, numbers, dates and 2D coordinates."""


class SrcohortComprehensive3DSR(SrcohortSR, hd.sr.Comprehensive3DSR):
    """Comprehensive 3D SR, needed for SCOORD3D (landmarks in the CT's frame of reference)."""


@dataclass(frozen=True)
class _Shell:
    """What every instance of one SR class has in common, taken from one highdicom built."""

    common: Dataset          # that instance without its per-instance attributes
    meta_length: int         # its File Meta Information Group Length, for its SOP Instance UID
    meta_uid_length: int

    @classmethod
    def of(cls, sr: Dataset, evidence: Sequence[Dataset], root: Dataset) -> _Shell:
        common = clone(sr)
        del common.__dict__["_content"]
        for tag in {*_PER_INSTANCE, *_FROM_EVIDENCE.values(),
                    *_copied_tags(evidence[0].SOPClassUID), *root.keys()}:
            common._dict.pop(tag, None)
        meta = sr.file_meta
        return cls(common, int(meta.FileMetaInformationGroupLength),
                   _even(meta.MediaStorageSOPInstanceUID))

    def fill(self, sr: Dataset, evidence: Sequence[Dataset], content: Template, *,
             series_instance_uid: str, sop_instance_uid: str, institution: str) -> None:
        """Make ``sr`` what highdicom's constructor (and ``finish``) would have made of it."""
        if len(evidence) == 0:
            raise ValueError("No evidence was provided.")
        first = evidence[0]
        values = _patient_and_study(first)
        root = _root(content)
        _check_content(sr, root, evidence)
        sr.__dict__.update(clone(self.common).__dict__)
        sr.__dict__["_content_root"] = root
        meta = sr.file_meta
        meta.MediaStorageSOPInstanceUID = UID(sop_instance_uid)
        meta.FileMetaInformationGroupLength = (
            self.meta_length - self.meta_uid_length + _even(meta.MediaStorageSOPInstanceUID))
        # Standard (not private) attributes go straight into the element dict: what
        # Dataset.__setattr__ and .add do for them, without their generic look-ups.
        elements = sr._dict
        copied = {tag: first[tag] for tag in _copied_tags(first.SOPClassUID) & first._dict.keys()}
        for keyword, value in values.items():
            if _FROM_EVIDENCE[keyword] not in copied:
                _put(elements, keyword, value)
        elements.update(copied)
        _put(elements, "SeriesInstanceUID", str(series_instance_uid))
        _put(elements, "SOPInstanceUID", str(sop_instance_uid))
        if institution:
            _put(elements, "InstitutionName", institution)
        elements.update((tag, root[tag]) for tag in root.keys())
        if not is_context_only(evidence):
            references = _evidence_references(evidence, values["StudyInstanceUID"])
            elements.update((tag, references[tag]) for tag in references.keys())
        highdicom = _EQUIPMENT.copy(("highdicom",), hd.ContributingEquipment.for_highdicom)
        _put(elements, "ContributingEquipmentSequence",
             [*_acquisition_equipment(first), highdicom])


def _put(elements: dict, keyword: str, value: Any) -> None:
    tag = Tag(keyword)
    elements[tag] = DataElement(tag, dictionary_VR(tag), value)


def _root(content: Dataset | DataElementSequence) -> Dataset:
    """The root content item, as highdicom's constructor takes it from ``content``."""
    if isinstance(content, DataElementSequence):
        if len(content) != 1:
            raise ValueError("If content is a pydicom.Sequence, it must contain a single "
                             "element.")
        return content[0]
    return content


def _even(uid: str) -> int:
    """Encoded length of a UID value, padded to even length."""
    return len(uid) + len(uid) % 2


def _patient_and_study(first: Dataset) -> dict[str, Any]:
    """Patient and study values as highdicom's SOPClass constructor sets them from the first
    evidence instance, checked as it checks them (an invalid sex or date raises)."""
    charset = first.get("SpecificCharacterSet")
    study_uid, patient_id, name = first.StudyInstanceUID, first.PatientID, first.PatientName
    birth_date, sex = first.PatientBirthDate, first.PatientSex
    accession, study_id, date, time = (first.AccessionNumber, first.StudyID, first.StudyDate,
                                       first.StudyTime)
    name_ok, birth_date, sex, date, time = _checked(_hashable(charset), name, birth_date, sex,
                                                    date, time)
    if not name_ok:
        _HIGHDICOM_LOG.warning(f'value of argument "patient_name" is potentially invalid: '
                               f'"{name}"')
    return {"PatientID": patient_id, "PatientName": name, "PatientBirthDate": birth_date,
            "PatientSex": sex, "StudyInstanceUID": str(study_uid),
            "AccessionNumber": accession, "StudyID": study_id, "StudyDate": date,
            "StudyTime": time,
            "ReferringPhysicianName": getattr(first, "ReferringPhysicianName", None)}


@lru_cache(maxsize=4096)
def _checked(charset: Any, name: Any, birth_date: Any, sex: Any, date: Any, time: Any
             ) -> tuple[bool, Any, Any, Any, Any]:
    """highdicom's checks and conversions of those values: they repeat for every SR of a
    patient, and many values (dates, sexes, empty names) across patients."""
    if charset is not None:
        _check_specific_character_set(list(charset) if isinstance(charset, tuple) else charset)
    try:
        if name is not None:
            check_person_name(name)
        name_ok = True
    except ValueError:
        name_ok = False
    return (name_ok, DA(birth_date),
            PatientSexValues(sex).value if sex not in (None, "") else sex,
            DA(date) if date is not None else None, TM(time) if time is not None else None)


def _check_content(sr: Dataset, root: Dataset, evidence: Sequence[Dataset]) -> None:
    """highdicom's constructor's checks of the tree as a whole: no SCOORD3D item in a
    Comprehensive SR, and every IMAGE or COMPOSITE item references an evidence instance."""
    value_types, referenced = set(), set()
    stack = list(_value(root, _CONTENT_SEQUENCE) or ())
    while stack:
        item = stack.pop()
        value_type = _value(item, _VALUE_TYPE)
        value_types.add(value_type)
        if value_type in ("IMAGE", "COMPOSITE"):
            referenced.add(item.ReferencedSOPSequence[0].ReferencedSOPInstanceUID)
        stack.extend(_value(item, _CONTENT_SEQUENCE) or ())
    if isinstance(sr, hd.sr.ComprehensiveSR) and "SCOORD3D" in value_types:
        raise ValueError("Comprehensive SR does not support content items with SCOORD3D value "
                         "type.")
    missing = referenced - {e.SOPInstanceUID for e in evidence} if referenced else set()
    if missing:
        raise ValueError("No evidence was provided for the following SOP instances, which are "
                         f'referenced in the document content: "{", ".join(sorted(missing))}"')


def _value(ds: Dataset, tag: BaseTag) -> Any:
    """``ds[tag].value``, or None when absent, for the walk over every content item."""
    elem = ds._dict.get(tag)
    if elem is None:
        return None
    return elem.value if elem.__class__ is DataElement else ds[tag].value


class _Recorder(Dataset):
    """Evidence stand-in that has only a SOP class, and notes every attribute asked for."""

    def __init__(self, sop_class_uid: str) -> None:
        super().__init__()
        self.SOPClassUID = sop_class_uid
        self.SOPInstanceUID = sop_class_uid       # named in highdicom's log lines only
        self.asked: list[BaseTag] = []

    def __getitem__(self, key: Any) -> Any:
        tag = Tag(key)
        if tag not in self._dict:
            self.asked.append(tag)
            raise KeyError(tag)
        return super().__getitem__(key)


@lru_cache(maxsize=None)
def _copied_tags(sop_class_uid: str) -> frozenset[BaseTag]:
    """The attributes highdicom copies from evidence of this SOP class (Patient and Study
    modules of its IOD): what ``copy_patient_and_study_information`` asks a recorder for."""
    recorder = _Recorder(sop_class_uid)
    target = hd.SOPClass.__new__(hd.SOPClass)
    Dataset.__init__(target)
    target.copy_patient_and_study_information(recorder)
    return frozenset(recorder.asked)


def _evidence_references(evidence: Sequence[Dataset], study_uid: str) -> Dataset:
    """The evidence sequences highdicom's constructor makes with ``collect_evidence``, held in a
    dataset. One patient's SRs share their evidence, so they are made once per patient."""
    def build() -> Dataset:
        stub = Dataset()                     # references in the content are checked apart
        stub.ContentSequence = []
        current, other = collect_evidence(evidence, stub, study_instance_uid=study_uid)
        references = Dataset()
        if current:
            references.CurrentRequestedProcedureEvidenceSequence = current
        if other:
            references.PertinentOtherEvidenceSequence = other
        return references
    key = (study_uid, *((e.StudyInstanceUID, e.SeriesInstanceUID, e.SOPInstanceUID,
                         e.SOPClassUID) for e in evidence))
    return _EVIDENCE.copy(key, build)


def _acquisition_equipment(first: Dataset) -> list[Dataset]:
    """The item ``ContributingEquipment.for_image_acquisition`` makes of the first evidence
    instance, or none where it makes none (no image, no manufacturer). Its look-up of pixel data
    in the IOD tables takes milliseconds, so the item is made once per distinct key, which holds
    everything the item is made of: the equipment attributes and the acquisition datetime."""
    def build() -> Dataset:
        holder = Dataset()
        try:
            holder.ContributingEquipmentSequence = [
                hd.ContributingEquipment.for_image_acquisition(first)]
        except Exception:                    # as highdicom: no acquisition item then
            holder.ContributingEquipmentSequence = []
        return holder
    key = (first.get("SOPClassUID"), _acquisition_datetime(first),
           *(_hashable(first.get(keyword)) for keyword in _ACQUISITION_EQUIPMENT))
    return list(_EQUIPMENT.copy(key, build).ContributingEquipmentSequence)


def _acquisition_datetime(ds: Dataset) -> Any:
    """What ``for_image_acquisition`` takes as contribution datetime: AcquisitionDateTime, else
    AcquisitionDate with AcquisitionTime when pydicom converted both to date and time."""
    value = ds.get("AcquisitionDateTime")
    if value is None:
        date, time = ds.get("AcquisitionDate"), ds.get("AcquisitionTime")
        if isinstance(date, dt.date) and isinstance(time, dt.time):
            value = dt.datetime.combine(date, time)
    return value


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, MultiValue) else value
