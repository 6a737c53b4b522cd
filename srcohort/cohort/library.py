"""Saved cohort definitions of the active study (``cohorts/`` in its folder), by name."""

from __future__ import annotations

from pathlib import Path

from srcohort.cohort.definition import Cohort, CohortError, load_cohort
from srcohort.study.load import load_study


def saved_cohorts() -> dict[str, str]:
    """Name -> YAML text of every definition the active study ships."""
    return {name: entry.read_text("utf-8") for name, entry in load_study().cohorts.items()}


def resolve_cohort(name_or_path: str) -> Cohort:
    """A saved cohort of the active study by name, or a definition file by path."""
    path = Path(name_or_path)
    if path.is_file():
        return load_cohort(path)
    saved = saved_cohorts()
    if name_or_path in saved:
        return load_cohort(saved[name_or_path])
    raise CohortError(f"{name_or_path}: neither a file nor a saved cohort of study "
                      f"{load_study().name!r} (saved: {', '.join(saved) or 'none'})")
