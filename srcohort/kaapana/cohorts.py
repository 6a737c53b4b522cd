"""The cohort a Kaapana workflow runs on: a saved name, pasted YAML, or a Kaapana dataset."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Sequence

from srcohort.cohort.definition import Cohort, load_cohort
from srcohort.cohort.library import resolve_cohort
from srcohort.index.mapping import SUMMARY_ATTRIBUTES
from srcohort.kaapana.errors import KaapanaError

SERIES_UID = next(name for name in SUMMARY_ATTRIBUTES if name.endswith(" SeriesInstanceUID_keyword"))


def cohort_setting(value: object) -> Cohort:
    """``workflow_form.cohort``: a saved cohort's name, or a definition pasted as YAML."""
    text = str(value or "").strip()
    if not text:
        raise KaapanaError("workflow_form.cohort is empty: name a saved cohort or paste one")
    return load_cohort(text) if ":" in text or "\n" in text else resolve_cohort(text)


def dataset_cohort(name: str, identifiers: Sequence[str]) -> Cohort:
    """The patients who have a series of a Kaapana dataset, as a cohort definition.

    Exports record their cohort's definition, and a Series Instance UID of the sources must
    not leave with an export (the PHI verification refuses it): the recorded definition names
    the dataset and a SHA-256 of its sorted UIDs instead, which still tells two datasets apart.
    """
    uids = sorted(set(map(str, identifiers)))
    if not uids:
        raise KaapanaError(f"dataset {name!r} has no series (data_form.identifiers is empty)")
    description = f"patients of Kaapana dataset {name}"
    cohort = load_cohort({"name": name, "description": description,
                          "patients": {"series": {"attributes": {SERIES_UID: uids}}}})
    digest = hashlib.sha256("\n".join(uids).encode("ascii")).hexdigest()
    return replace(cohort, source={"name": name, "description": description, "patients": {
        "kaapana_dataset": {"name": name, "series": len(uids), "series_sha256": digest}}})
