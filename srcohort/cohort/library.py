"""Saved cohort definitions shipped with the package, addressable by name."""

from __future__ import annotations

from pathlib import Path

from srcohort.cohort.definition import Cohort, CohortError, load_cohort

LIBRARY = Path(__file__).resolve().parent.parent / "cohorts"


def saved_cohorts() -> dict[str, Path]:
    """Name -> file of every shipped definition."""
    return {path.stem: path for path in sorted(LIBRARY.glob("*.yaml"))}


def resolve_cohort(name_or_path: str) -> Cohort:
    """A saved cohort by name, or a definition file by path."""
    path = Path(name_or_path)
    if path.is_file():
        return load_cohort(path)
    saved = saved_cohorts()
    if name_or_path in saved:
        return load_cohort(saved[name_or_path])
    raise CohortError(f"{name_or_path}: neither a file nor a saved cohort "
                      f"(saved: {', '.join(saved) or 'none'})")
