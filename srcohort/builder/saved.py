"""Saved cohorts: the YAML definition (the saved form, what ``srcohort cohort count`` reads)
and beside it what it counted, on which data: its digest, the counts per site and step, and
the snapshot of the indices (``snapshot.py``).

``<dir>/<name>.yaml`` and ``<dir>/<name>.counted.json``; the name is the definition's own.
Definitions the study ships (``cohorts/`` of the study folder) can be opened, not overwritten.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from srcohort.cohort.definition import CohortError
from srcohort.files import write_atomic
from srcohort.study.load import load_study

Json = dict[str, Any]
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
COUNTED = ".counted.json"


def file_stem(name: str) -> str:
    """The cohort's name when it can be a file name in the cohorts folder; CohortError else."""
    if not _NAME.fullmatch(name) or name.endswith("."):
        raise CohortError(f"cohort name {name!r}: to be saved, a name takes letters, digits, "
                          f"'.', '_' and '-' (at most 100, starting with a letter or digit)")
    return name


class SavedCohorts:
    """The deployment's folder of saved cohorts, and the study's shipped ones."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def names(self) -> list[Json]:
        saved = sorted(p.name[:-5] for p in self.folder.glob("*.yaml")) \
            if self.folder.is_dir() else []
        shipped = [n for n in load_study().cohorts if n not in saved]
        return ([{"name": n, "source": "saved"} for n in saved]
                + [{"name": n, "source": "study"} for n in shipped])

    def read(self, name: str) -> tuple[str, Json | None]:
        """YAML text and the record of what it counted (None for a study's or never counted)."""
        path = self.folder / f"{file_stem(name)}.yaml"
        if path.is_file():
            record = path.with_name(f"{name}{COUNTED}")
            return (path.read_text("utf-8"),
                    json.loads(record.read_text("utf-8")) if record.is_file() else None)
        shipped = load_study().cohorts.get(name)
        if shipped is None:
            raise CohortError(f"no saved cohort {name!r}")
        return shipped.read_text("utf-8"), None

    def save(self, name: str, yaml_text: str, record: Json) -> Path:
        """Write the YAML and its record; a study's shipped cohort keeps its name to itself."""
        if name in load_study().cohorts:
            raise CohortError(f"{name!r} is a cohort the study ships: save it under another name")
        path = self.folder / f"{file_stem(name)}.yaml"
        self.folder.mkdir(parents=True, exist_ok=True)
        write_atomic(path, yaml_text.encode("utf-8"))
        write_atomic(path.with_name(f"{name}{COUNTED}"),
                     (json.dumps(record, indent=1, sort_keys=True) + "\n").encode("utf-8"))
        return path


def record(digest: str, counts: Json, snapshot: Json, labels: list[str]) -> Json:
    """What a saved cohort carries besides its YAML."""
    return {"digest": digest, "counted_at": dt.datetime.now(dt.timezone.utc).isoformat(
        timespec="seconds"), "counts": counts, "snapshot": snapshot, "steps": labels}
