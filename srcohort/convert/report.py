"""What happened to every input of a conversion, and the quarantine that holds the bad ones."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from srcohort.logs import get_logger
from srcohort.sources.tables import RowError

log = get_logger(__name__)


@dataclass
class Outcome:
    """One input (a file, or a row of a table) and what became of it."""

    input: str
    line: int | None
    outcome: str                      # "converted" | "quarantined"
    reason: str = ""
    outputs: list[str] = field(default_factory=list)


@dataclass
class ConversionReport:
    """Every input and its outcome; written as JSON beside the converted objects."""

    site: str
    outcomes: list[Outcome] = field(default_factory=list)
    # instances an earlier run wrote that this one does not: path below dicom/, and the UID of
    # the instance of the same series that replaces it (None: its input is gone)
    superseded_instances: list[dict] = field(default_factory=list)

    def converted(self, path: Path, root: Path, line: int | None = None,
                  outputs: list[str] | None = None) -> None:
        self.outcomes.append(Outcome(_rel(path, root), line, "converted", outputs=outputs or []))

    def superseded(self, path: str, replaced_by: str | None) -> None:
        self.superseded_instances.append({"path": path, "replaced_by": replaced_by})
        log.info("superseded", extra={"site": self.site, "path": path,
                                      "replaced_by": replaced_by})

    def counts(self) -> dict[str, int]:
        return dict(Counter(o.outcome for o in self.outcomes))

    @property
    def quarantined(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.outcome == "quarantined"]

    def to_dict(self) -> dict:
        return {"site": self.site, "counts": self.counts(),
                "outcomes": [asdict(o) for o in self.outcomes],
                "superseded": self.superseded_instances}

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False), "utf-8")


class Quarantine:
    """Set bad input aside with its reason, so an admin can fix and resubmit it."""

    def __init__(self, folder: Path, site_root: Path, report: ConversionReport) -> None:
        self.folder = folder
        self.site_root = site_root
        self.report = report

    def add(self, error: RowError) -> None:
        rel = _rel(error.file, self.site_root)
        target = self.folder / (rel if error.line is None else f"{rel}.line{error.line}")
        target.parent.mkdir(parents=True, exist_ok=True)
        if error.line is None:
            shutil.copyfile(error.file, target)
        else:
            target.write_text(_line_with_header(error.file, error.line), "utf-8")
        target.with_name(target.name + ".reason.txt").write_text(error.reason + "\n", "utf-8")
        self.report.outcomes.append(Outcome(rel, error.line, "quarantined", error.reason))
        log.warning("quarantined", extra={"site": self.report.site, "file": rel,
                                          "line": error.line, "reason": error.reason})


def _line_with_header(path: Path, line: int) -> str:
    """The header and the offending line, in the file's own bytes decoded leniently."""
    lines = path.read_bytes().decode("utf-8", errors="replace").splitlines()
    return "\n".join([lines[0], lines[line - 1]]) + "\n"


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
