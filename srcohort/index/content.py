"""SR content -> one nested ``annotation`` object, by value type, for any SR.

Extraction needs no template profile: every CODE becomes a qualitative item (name + value),
every NUM a quantitative item (name + value + unit), every SCOORD/SCOORD3D a geometric item
(name + graphic type), TEXT and DATE items likewise. So an SR written by any tool is
searchable. Items inside a measurement group carry the group's tracking identifier and
finding, which is what makes "the same annotation" and "the same landmark" queries exact.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from pydicom.dataset import Dataset

from srcohort.codes import concept_key
from srcohort.sr.profiles import Profile, default_profiles, profile_for, walk_items

Annotation = dict[str, Any]


def _name(item: Dataset) -> tuple[str, str]:
    seq = item.get("ConceptNameCodeSequence")
    if not seq:
        return "", ""
    return concept_key(seq[0]), str(seq[0].get("CodeMeaning", ""))


def sr_annotation(ds: Dataset, profiles: Iterable[Profile] | None = None) -> Annotation:
    """The SR's content tree as one annotation object (see docs/index.md for the fields).

    When an SR template profile (sr_templates/) matches, the paths it declares with a
    ``field`` name are also set under ``fields``; ``profiles`` defaults to the installed ones.
    """
    title, title_meaning = _name(ds)
    template = ""
    if ds.get("ContentTemplateSequence"):
        template = str(ds.ContentTemplateSequence[0].get("TemplateIdentifier", ""))
    annotation: Annotation = {
        "kind": "SR", "sop_instance_uid": str(ds.SOPInstanceUID),
        "series_instance_uid": str(ds.SeriesInstanceUID), "template": template,
        "title": title, "title_meaning": title_meaning,
        "codes": [], "numbers": [], "points": [], "texts": [], "dates": [],
        "referenced_series": sorted(_referenced_series(ds)),
    }
    for item, group in _walk(ds.get("ContentSequence", []), group=None):
        _add(annotation, item, group)
    profile = profile_for(ds, default_profiles() if profiles is None else profiles)
    if profile is not None:
        annotation["profile"] = profile.template
        annotation["fields"] = profile_fields(ds, profile)
    return annotation


def profile_fields(ds: Dataset, profile: Profile) -> dict[str, Any]:
    """Values of the paths ``profile`` names, by field name (a list when a path repeats)."""
    fields: dict[str, list[Any]] = {}
    declared = profile.fields
    for path, item in walk_items(ds):
        node = declared.get((path, str(item.get("ValueType", ""))))
        if node is not None and (value := _field_value(item)) is not None:
            fields.setdefault(node.field, []).append(value)
    return {name: values[0] if len(values) == 1 else values
            for name, values in sorted(fields.items())}


def _field_value(item: Dataset) -> Any:
    kind = item.get("ValueType")
    if kind == "CODE" and item.get("ConceptCodeSequence"):
        return concept_key(item.ConceptCodeSequence[0])
    if kind == "NUM" and item.get("MeasuredValueSequence"):
        return float(item.MeasuredValueSequence[0].NumericValue)
    if kind == "DATE" and item.get("Date"):
        text = str(item.Date)
        return f"{text[:4]}-{text[4:6]}-{text[6:8]}"
    if kind == "TEXT":
        return str(item.get("TextValue", "")) or None
    if kind in ("SCOORD", "SCOORD3D"):
        return str(item.get("GraphicType", "")) or None
    return None


def _walk(sequence: Any, group: dict | None) -> Iterator[tuple[Dataset, dict | None]]:
    for item in sequence:
        if item.get("ValueType") == "CONTAINER":
            children = item.get("ContentSequence", [])
            yield from _walk(children, _group_of(children) or group)
        else:
            yield item, group
            if item.get("ContentSequence"):
                yield from _walk(item.ContentSequence, group)


def _group_of(children: Any) -> dict | None:
    """Tracking identifier and finding of a measurement group (TID 1410/1411/1501), if any."""
    group: dict[str, str] = {}
    for child in children:
        name, _ = _name(child)
        if name == "DCM:112039" and child.get("TextValue"):   # Tracking Identifier
            group["group"] = str(child.TextValue)
        elif name == "DCM:121071" and child.get("ConceptCodeSequence"):   # Finding
            group["finding"] = concept_key(child.ConceptCodeSequence[0])
    return group or None


def _add(annotation: Annotation, item: Dataset, group: dict | None) -> None:
    name, meaning = _name(item)
    base = {"name": name, "name_meaning": meaning, **(group or {})}
    kind = item.get("ValueType")
    if kind == "CODE" and item.get("ConceptCodeSequence"):
        code = item.ConceptCodeSequence[0]
        annotation["codes"].append({**base, "value": concept_key(code),
                                    "value_meaning": str(code.get("CodeMeaning", ""))})
    elif kind == "NUM" and item.get("MeasuredValueSequence"):
        measured = item.MeasuredValueSequence[0]
        unit = measured.get("MeasurementUnitsCodeSequence")
        annotation["numbers"].append({**base, "value": float(measured.NumericValue),
                                      "unit": str(unit[0].CodeValue) if unit else ""})
    elif kind in ("SCOORD", "SCOORD3D"):
        annotation["points"].append({**base, "graphic_type": str(item.get("GraphicType", "")),
                                     "dimensions": 3 if kind == "SCOORD3D" else 2})
    elif kind == "TEXT" and item.get("TextValue"):
        annotation["texts"].append({**base, "value": str(item.TextValue)})
    elif kind == "DATE" and item.get("Date"):
        text = str(item.Date)
        annotation["dates"].append({**base, "value": f"{text[:4]}-{text[4:6]}-{text[6:8]}"})


def _referenced_series(ds: Dataset) -> set[str]:
    found: set[str] = set()
    for keyword in ("CurrentRequestedProcedureEvidenceSequence", "PertinentOtherEvidenceSequence",
                    "ReferencedSeriesSequence"):
        for study in ds.get(keyword, []):
            found.update(str(s.SeriesInstanceUID) for s in study.get("ReferencedSeriesSequence", [])
                         if "SeriesInstanceUID" in s)
            if "SeriesInstanceUID" in study:
                found.add(str(study.SeriesInstanceUID))
    return found
