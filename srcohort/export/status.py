"""The explicit state of an export folder, for both formats: running, failed or complete, and
what was left out and why.

A failed export must not look like a finished one: ``status.json`` says ``running`` while the
export writes, ``failed`` with the reason when it stops (an error, identifying values found,
a full disk) and ``complete`` only after the verification, together with the ``COMPLETE``
marker. What a complete export left out (a CT that is not a volume, an ECG that cannot be
read) is listed in it by pseudonym, kind and error class. The status travels with the export,
so its reasons name kinds, never values or source paths: those stay in the site's log.
"""

from __future__ import annotations

import errno
import json
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from srcohort.export.state import COMPLETE, json_bytes, write_atomic
from srcohort.export.verify import PhiFound
from srcohort.logs import get_logger

log = get_logger(__name__)
STATUS = "status.json"


@dataclass
class Tracker:
    """What an export run reports into its status: left-out items and the manifest digest."""

    left_out: list[dict[str, str]] = field(default_factory=list)
    manifest_sha256: str = ""

    def leave_out(self, pseudonym: str, kind: str, error: BaseException | str) -> None:
        self.left_out.append({"pseudonym": pseudonym, "kind": kind,
                              "error": error if isinstance(error, str)
                              else type(error).__name__})


def read_status(root: Path) -> dict[str, Any] | None:
    """The status of the export at ``root``, or None where no run has started."""
    path = root / STATUS
    return json.loads(path.read_text("utf-8")) if path.exists() else None


@contextmanager
def tracked(root: Path, *, export_format: str, cohort_sha256: str) -> Iterator[Tracker]:
    """Mark ``root`` running (and not complete) for the block; failed when the block raises,
    complete with ``COMPLETE`` when it returns."""
    root.mkdir(parents=True, exist_ok=True)
    (root / COMPLETE).unlink(missing_ok=True)
    base = {"format": export_format, "cohort_sha256": cohort_sha256}
    _write(root, {**base, "state": "running"})
    tracker = Tracker()
    try:
        yield tracker
    except BaseException as exc:
        reason = failure_reason(exc)
        log.error("export failed", extra={"out": str(root), "reason": reason,
                                          "error": str(exc)})
        try:
            _write(root, {**base, "state": "failed", "reason": reason})
        except OSError:                    # the disk may be the reason: the marker stays off
            pass
        raise
    left_out = sorted(tracker.left_out, key=lambda item: (item["pseudonym"], item["kind"]))
    _write(root, {**base, "state": "complete", "left_out": left_out,
                  "manifest_sha256": tracker.manifest_sha256})
    write_atomic(root / COMPLETE, f"{tracker.manifest_sha256}\n".encode("ascii"))


def failure_reason(exc: BaseException) -> str:
    """Why an export stopped, in words that carry no identifying value."""
    if isinstance(exc, PhiFound):
        return (f"identifying values of the sources found ({len(exc.findings)}); see the "
                f"site's log")
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return "the disk is full (ENOSPC); free space and run the export again to resume"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted; run the export again to resume"
    return f"{type(exc).__name__}; see the site's log"


def _write(root: Path, status: dict[str, Any]) -> None:
    write_atomic(root / STATUS, json_bytes(status))
