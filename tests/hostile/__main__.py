"""Run every hostile case and print the totals: ``python -m tests.hostile [--out DIR]``."""

from __future__ import annotations

import argparse
import tempfile
from collections import Counter
from pathlib import Path

from srcohort import logs
from tests.hostile.cases import CASES
from tests.hostile.judge import VERDICTS, base_site, judge


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: temporary)")
    args = parser.parse_args()
    logs.configure("warning")
    with tempfile.TemporaryDirectory() as scratch:
        work = args.out or Path(scratch)
        base, baseline = base_site(work / "base")
        results = [judge(case, base, work / case.name, baseline) for case in CASES]
    for result in results:
        print(f"{result.verdict:7} {result.family:12} {result.case:32} {result.detail[:110]}")
    totals = Counter(r.verdict for r in results)
    print(f"\ninputs tried {len(results)}: refused or accepted cleanly {totals['clean']}, "
          + ", ".join(f"{v} {totals[v]}" for v in VERDICTS if v != "clean"))
    return 0 if totals["clean"] == len(results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
