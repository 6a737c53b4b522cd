"""The export's dataset card in Croissant 1.0 (MLCommons' JSON-LD vocabulary for ML datasets).

A training pipeline (or ``mlcroissant``) finds in it what the export holds: the files with
their checksums, the patients table's columns with types, and for every feature column where
it comes from — the SR template and the content path inside it (the provenance a reviewer
asks for before trusting a feature). Counts and label balance are those of this site's export;
the card stays at the site with the data (only ``srcohort federated`` aggregates leave it).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Sequence

from srcohort.export.features import Column

CONFORMS_TO = "http://mlcommons.org/croissant/1.0"
# The @context Croissant 1.0 publishes (the specification's, verbatim in meaning).
CONTEXT: dict[str, Any] = {
    "@language": "en", "@vocab": "https://schema.org/", "citeAs": "cr:citeAs",
    "column": "cr:column", "conformsTo": "dct:conformsTo", "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/", "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"}, "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"}, "extract": "cr:extract",
    "field": "cr:field", "fileProperty": "cr:fileProperty", "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet", "format": "cr:format", "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset", "jsonPath": "cr:jsonPath", "key": "cr:key",
    "md5": "cr:md5", "parentField": "cr:parentField", "path": "cr:path",
    "recordSet": "cr:recordSet", "references": "cr:references", "regex": "cr:regex",
    "repeated": "cr:repeated", "replace": "cr:replace", "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/", "separator": "cr:separator", "source": "cr:source",
    "subField": "cr:subField", "transform": "cr:transform",
}
LICENSE = "https://creativecommons.org/licenses/by-nc/4.0/"
_TYPES = {"string": "sc:Text", "float64": "sc:Float", "Int32": "sc:Integer"}
_FILE_SETS = (
    ("ct-volumes", "ct/*.nii.gz", "application/gzip",
     "CT volumes in Hounsfield units, NIfTI-1, RAS+, resampled to the common spacing"),
    ("seg-masks", "seg/*/*.nii.gz", "application/gzip",
     "uint8 masks per segment type (file name: coding scheme _ code), on the CT's grid"),
    ("ecg-arrays", "ecg/*.npy", "application/octet-stream",
     "float32 (12, n) ECGs in mV, leads I II III aVR aVL aVF V1-V6, common sampling rate"),
)


def croissant_card(manifest: dict[str, Any], columns: Sequence[Column], *,
                   published: dt.datetime | None = None) -> dict[str, Any]:
    """The card for an export described by its ``manifest`` (training.py)."""
    table = next(f for f in manifest["files"] if f.get("kind") == "table")
    settings, counts = manifest["settings"], manifest["counts"]
    label_field = settings["label"]["field"]
    when = (published or dt.datetime.now(dt.timezone.utc)).replace(microsecond=0)
    fields = [
        _field("pseudonym", "sc:Text", "HMAC-SHA256 pseudonym (per-site secret); never an id"),
        _field("site", "sc:Text", "the site that exported the patient"),
        _field("split", "sc:Text", "train/val/test from a hash of the pseudonym (stable)"),
        _field(label_field, "sc:Text", f"yes/no/unknown: {label_field} field of SR template "
                                       f"{settings['label']['profile']}"),
        _field("label", "sc:Integer", f"1 = {label_field} yes, 0 = no, empty = unknown"),
        _field("ct", "sc:Text", "relative path of the CT volume, empty without CT"),
        _field("segments", "sc:Text", "segment types present, | separated SCHEME:CODE"),
        _field("ecg", "sc:Text", "relative path of the ECG array, empty without ECG"),
        _field("ecg_derived_leads", "sc:Text", "limb leads computed from I and II"),
    ] + [_field(c.name, _TYPES[c.dtype], c.description) for c in columns]
    return {
        "@context": CONTEXT, "@type": "sc:Dataset", "conformsTo": CONFORMS_TO,
        "name": f"srcohort-{manifest['cohort']['name']}",
        "description": (
            f"De-identified cohort '{manifest['cohort']['name']}' of the study "
            f"'{manifest['study']['title'] or manifest['study']['name']}' (definition sha256 "
            f"{manifest['cohort']['sha256']}): {counts['patients']} patients, "
            f"{counts['with_ct']} with CT, {counts['with_ecg']} with ECG, {counts['with_seg']} "
            f"with segmentations; label {label_field}: " +
            ", ".join(f"{k} {v}" for k, v in counts["label"].items()) + "; split " +
            ", ".join(f"{k} {v}" for k, v in counts["split"].items()) + "."),
        "citeAs": (f"@misc{{srcohort-{manifest['cohort']['name']}, title = {{"
                   f"{manifest['study']['name']} cohort "
                   f"{manifest['cohort']['name']}, de-identified site export}}, note = {{cohort "
                   f"definition sha256 {manifest['cohort']['sha256']}}}}}"),
        "license": LICENSE, "version": "1.0.0", "datePublished": when.isoformat(),
        "creator": [{"@type": "sc:Organization", "name": site} for site in counts["sites"]],
        "isBasedOn": sorted({f"DICOM SR template {c.profile}" for c in columns}),
        "keywords": [manifest["study"]["name"], label_field, "CT", "ECG", "DICOM SR",
                     "federated learning"],
        "distribution": [
            {"@type": "cr:FileObject", "@id": "patients-table", "name": "patients-table",
             "contentUrl": table["path"], "encodingFormat": "application/x-parquet",
             "sha256": table["sha256"], "contentSize": f"{table['bytes']} B"},
        ] + [{"@type": "cr:FileSet", "@id": name, "name": name, "description": text,
              "encodingFormat": media, "includes": pattern}
             for name, pattern, media, text in _FILE_SETS],
        "recordSet": [{"@type": "cr:RecordSet", "@id": "patients", "name": "patients",
                       "description": "one record per patient; features per SR template path",
                       "key": {"@id": "patients/pseudonym"}, "field": fields}],
    }


def _field(name: str, data_type: str, description: str) -> dict[str, Any]:
    return {"@type": "cr:Field", "@id": f"patients/{name}", "name": name,
            "description": description, "dataType": data_type,
            "source": {"fileObject": {"@id": "patients-table"}, "extract": {"column": name}}}


# Where srcohort's own card properties live: a URN, so no web address is implied.
AUDIT_CONTEXT = {"srcohort": "urn:srcohort:"}


def with_audit(card: dict[str, Any], log: str, entries: Sequence[dict[str, Any]]
               ) -> dict[str, Any]:
    """The card citing the site's audit entries it came from (the export's own, the indexing
    run it read): position, digest, action and time of each, so an auditor can find them in
    ``log`` and check them against the hash chain. No user names: the card may travel."""
    return {**card, "@context": {**card["@context"], **AUDIT_CONTEXT},
            "srcohort:audit": {"srcohort:log": log,
                               "srcohort:entries": [dict(entry) for entry in entries]}}
