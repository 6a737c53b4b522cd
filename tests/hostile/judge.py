"""Convert a damaged site and judge the outcome against what the case expects.

Verdicts (one per case): ``clean`` (refused as expected, or accepted where the input is fine),
``crash`` (an exception escaped), ``hang`` (no result within the time limit), ``silent`` (bad
input accepted without a word), ``lost`` (a valid input of the undamaged site no longer
converts), ``leak`` (bytes from outside the site folder reached the output).
"""

from __future__ import annotations

import datetime as dt
import shutil
import signal
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from srcohort.convert.report import ConversionReport
from srcohort.convert.site import convert_site
from srcohort.sources.mapping import MappingError
from tests.hostile.kit import MARKER, Site

TODAY = dt.date(2026, 1, 15)       # a fixed conversion day: verdicts hold on any calendar day
TIME_LIMIT_SECONDS = 120
VERDICTS = ("clean", "crash", "hang", "silent", "lost", "leak")


@dataclass(frozen=True)
class Refused:
    """A quarantined outcome: its input (relative to the site), line, and words of the reason."""

    input: str
    reason: str
    line: int | None = None


@dataclass
class Expect:
    """What a case must produce."""

    refused: list[Refused] = field(default_factory=list)
    mapping_error: str | None = None          # words of the MappingError, when the mapping is bad
    touched: set[tuple[str, int | None]] = field(default_factory=set)   # may stop converting
    duplicates: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Case:
    name: str
    family: str
    damage: Callable[[Site], Expect]


@dataclass
class Result:
    case: str
    family: str
    verdict: str
    detail: str = ""


class _Hang(Exception):
    pass


def converted_inputs(report: ConversionReport) -> set[tuple[str, int | None]]:
    return {(o.input, o.line) for o in report.outcomes if o.outcome == "converted"}


def judge(case: Case, base: Path, work: Path, baseline: set[tuple[str, int | None]]) -> Result:
    """Damage a copy of ``base`` as ``case`` says, convert it and judge; ``baseline`` is what
    the undamaged site converts."""
    site = Site(work / "site", work / "outside")
    shutil.copytree(base, site.root, symlinks=True)
    site.outside_file("secret.txt")
    expect = case.damage(site)
    out = work / "out"

    def alarm(*_: object) -> None:
        raise _Hang()

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(TIME_LIMIT_SECONDS)
    try:
        report = convert_site(site.root, out, workers=1, today=TODAY)
        error = None
    except _Hang:
        return Result(case.name, case.family, "hang", f"over {TIME_LIMIT_SECONDS} s")
    except MappingError as exc:
        report, error = None, exc
    except Exception:
        return Result(case.name, case.family, "crash", traceback.format_exc(limit=3))
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    leaked = [str(p) for p in out.rglob("*") if p.is_file() and MARKER in p.read_bytes()] \
        if out.exists() else []
    if leaked:
        return Result(case.name, case.family, "leak", ", ".join(leaked))
    if expect.mapping_error is not None:
        if error is None:
            return Result(case.name, case.family, "silent", "mapping accepted")
        if expect.mapping_error not in str(error) or "mapping.yaml" not in str(error):
            return Result(case.name, case.family, "silent", f"other error: {error}")
        return Result(case.name, case.family, "clean", str(error))
    if error is not None:
        return Result(case.name, case.family, "crash", f"unexpected MappingError: {error}")
    assert report is not None
    refused = {(o.input, o.line): o.reason for o in report.quarantined}
    for want in expect.refused:
        reason = refused.get((want.input, want.line))
        if reason is None or want.reason not in reason:
            return Result(case.name, case.family, "silent",
                          f"{want.input}:{want.line} not refused with {want.reason!r} "
                          f"(got {reason!r})")
    duplicates = {o.input for o in report.outcomes if o.outcome == "duplicate"}
    if not set(expect.duplicates) <= duplicates:
        return Result(case.name, case.family, "silent", "duplicate not noted")
    missing = baseline - expect.touched - converted_inputs(report)
    if missing:
        return Result(case.name, case.family, "lost", f"no longer converted: {sorted(missing)}")
    return Result(case.name, case.family, "clean",
                  "; ".join(refused.get((w.input, w.line), "") for w in expect.refused))


def base_site(folder: Path) -> tuple[Path, set[tuple[str, int | None]]]:
    """The undamaged site every case starts from, and what it converts."""
    from srcohort.demo.consortium import generate_consortium
    generate_consortium(folder, sites=1, patients_per_site=4, seed=3)
    site = folder / "site-01"
    report = convert_site(site, folder / "baseline-out", workers=1, today=TODAY)
    return site, converted_inputs(report)
