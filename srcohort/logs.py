"""Structured logging and progress reporting.

Every log line is one JSON object (``event`` plus fields) on stderr, so a site admin can grep it
and a log shipper can parse it, while stdout stays free for the results a command prints.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Iterable, Iterator, TypeVar

T = TypeVar("T")

_RESERVED = set(vars(logging.makeLogRecord({})))


class JsonFormatter(logging.Formatter):
    """Render a record as one JSON line: time, level, logger, event and any ``extra`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        payload.update({k: v for k, v in vars(record).items() if k not in _RESERVED})
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


def configure(level: str = "info") -> None:
    """Send JSON log lines to stderr; idempotent so tests and the CLI can both call it.

    Libraries' log records (pydicom, highdicom, opensearch-py) and Python warnings go through
    the same formatter at warning level and above, so stderr holds JSON lines only.
    """
    ours = logging.getLogger("srcohort")
    ours.setLevel(level.upper())
    ours.propagate = False
    libraries = logging.getLogger()
    if libraries.level > logging.WARNING or libraries.level == logging.NOTSET:
        libraries.setLevel(logging.WARNING)
    for logger in (ours, libraries):
        if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(JsonFormatter())
            logger.addHandler(handler)
    logging.captureWarnings(True)


def get_logger(name: str) -> logging.Logger:
    """Return a logger below ``srcohort`` so one ``configure`` call governs all of them."""
    return logging.getLogger(name if name.startswith("srcohort") else f"srcohort.{name}")


def progress(items: Iterable[T], *, total: int, what: str, logger: logging.Logger,
             every: float = 2.0) -> Iterator[T]:
    """Yield ``items`` and log a ``progress`` event at most every ``every`` seconds and at the end.

    Long steps (converting thousands of files, bulk indexing) would otherwise be silent for
    minutes; a rate and an ETA let an operator tell a slow run from a hung one.
    """
    start = last = time.monotonic()
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= every or done == total:
            last = now
            rate = done / max(now - start, 1e-9)
            eta = (total - done) / rate if rate and total >= done else None
            logger.info("progress", extra={"what": what, "done": done, "total": total,
                                           "per_second": round(rate, 1),
                                           "eta_seconds": None if eta is None else round(eta, 1)})
