"""What happened to every input of a conversion, and the quarantine that holds the bad ones."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from srcohort.files import write_atomic
from srcohort.logs import get_logger
from srcohort.sources.confine import refusal
from srcohort.sources.tables import RowError

log = get_logger(__name__)
REPORT = "conversion-report.json"


@dataclass
class Outcome:
    """One input (a file, or a row of a table) and what became of it."""

    input: str
    line: int | None
    outcome: str                      # "converted" | "quarantined" | "duplicate"
    reason: str = ""
    outputs: list[str] = field(default_factory=list)


@dataclass
class ConversionReport:
    """Every input and its outcome; written as JSON beside the converted objects."""

    site: str
    state: str = "validated"          # "running" | "complete" (a conversion) | "validated"
    outcomes: list[Outcome] = field(default_factory=list)
    # instances an earlier run wrote that this one does not: path below dicom/, and the UID of
    # the instance of the same series that replaces it (None: its input is gone)
    superseded_instances: list[dict] = field(default_factory=list)

    def converted(self, path: Path, root: Path, line: int | None = None,
                  outputs: list[str] | None = None, note: str = "") -> None:
        """``note``: what of the input could not be kept, when the rest of it was."""
        self.outcomes.append(Outcome(_rel(path, root), line, "converted", note,
                                     outputs=outputs or []))

    def duplicate(self, path: Path, root: Path, same_as: Path) -> None:
        """A file holding the very bytes of an input already taken: noted, not passed twice."""
        self.outcomes.append(Outcome(_rel(path, root), None, "duplicate",
                                     f"same bytes as {_rel(same_as, root)}"))

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
        return {"site": self.site, "state": self.state, "counts": self.counts(),
                "outcomes": [asdict(o) for o in self.outcomes],
                "superseded": self.superseded_instances}

    def write(self, path: Path) -> None:
        write_atomic(path, json.dumps(self.to_dict(), indent=1, ensure_ascii=False)
                     .encode("utf-8"))


class Quarantine:
    """Set bad input aside with its reason, so an admin can fix and resubmit it.

    The folder describes one run: it is emptied when the run starts. A file is copied only when
    it is a regular file of the site (``confine.refusal``); for anything else (a link that
    leaves the site, a device) only the reason is written, so nothing from outside the site
    folder ever reaches the output.
    """

    def __init__(self, folder: Path | None, site_root: Path, report: ConversionReport) -> None:
        """``folder`` None: the outcomes are reported, nothing is written (a dry run)."""
        self.folder = folder
        self.site_root = site_root
        self.report = report
        self._lines: dict[Path, list[bytes]] = {}     # each table read once, however many rows
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)

    def add(self, error: RowError) -> None:
        rel = _rel(error.file, self.site_root)
        if Path(rel).is_absolute() or ".." in Path(rel).parts:
            rel = str(Path("outside-the-site") / Path(rel).name)
        self.report.outcomes.append(Outcome(rel, error.line, "quarantined", error.reason))
        log.warning("quarantined", extra={"site": self.report.site, "file": rel,
                                          "line": error.line, "reason": error.reason})
        if self.folder is None:
            return
        target = self.folder / (rel if error.line is None else f"{rel}.line{error.line}")
        target.parent.mkdir(parents=True, exist_ok=True)
        if refusal(error.file, self.site_root) is None:
            if error.line is None:
                shutil.copyfile(error.file, target)
            else:
                if error.file not in self._lines:
                    self._lines[error.file] = error.file.read_bytes().splitlines()
                target.write_bytes(_line_with_header(self._lines[error.file], error.line))
        target.with_name(target.name + ".reason.txt").write_text(error.reason + "\n", "utf-8")


def _line_with_header(lines: list[bytes], line: int) -> bytes:
    """The header and the offending line, in the file's own bytes and encoding."""
    return b"\n".join([lines[0], lines[line - 1] if line <= len(lines) else b""]) + b"\n"


def _rel(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
