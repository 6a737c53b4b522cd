"""Text rendering of a combined result: one column per site, then the overall column."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Mapping

from srcohort.federated.suppression import SUPPRESSED

if TYPE_CHECKING:
    from srcohort.federated.combine import Combined, Range

DASH = "\u2013"


def show(r: "Range", k: int) -> str:
    """A proven range as people read it: ``12``, ``<5`` (0 to k-1), ``3–9``, ``≥40``."""
    low, high = r
    if low == high:
        return str(low)
    if high == math.inf:
        return f"\u2265{low}"
    if low == 0 and high < k:
        return f"<{k}"
    return f"{low}{DASH}{int(high)}"


def _feature(summary: Mapping[str, Any]) -> str:
    if summary["n"] == SUPPRESSED:
        return "suppressed"
    if not summary["n"]:
        return "-"
    spread = f"\u00b1{summary['sd']:.1f}" if "sd" in summary else ""
    return f"{summary['mean']:.1f}{spread} (n={summary['n']})"


def _label(name: str, label: str) -> str:
    """Row label: intersections spelt short (``CT+ECG+1500+outcome``), so the table fits;
    label cells named after the study's label."""
    if name.startswith("combination/"):
        parts = name.removeprefix("combination/").split(" + ")
        return "\u2229 " + "+".join(p.removeprefix("SR TID ").removeprefix("SR ") for p in parts)
    return name.replace("channel/", "").replace("label/", f"{label} ")


def render(combined: "Combined") -> str:
    """Counts per site and overall, then feature means ± SD (the SD where it was published);
    suppressed cells as ranges.

    Features no site could publish are named in one line instead of a row of "suppressed".
    """
    k = combined.k
    header = ["", *combined.sites, "overall"]
    rows: list[list[str]] = []
    for name, by_site in combined.cells.items():
        rows.append([_label(name, combined.label), *(show(by_site[s], k) for s in combined.sites),
                     show(combined.overall(name), k)])
    hidden: list[str] = []
    for name, by_site in combined.features.items():
        if all(by_site[s]["n"] == SUPPRESSED for s in combined.sites):
            hidden.append(name)
            continue
        rows.append([name, *(_feature(by_site[s]) for s in combined.sites),
                     _feature(by_site["overall"])])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [f"cohort {combined.cohort['name']} (sha256 {combined.cohort['sha256'][:12]}), "
             f"k={k}: counts below k are suppressed, ranges are what the published cells prove"]
    if combined.withheld:
        lines.append(f"detail withheld (only the total is safe) at: {', '.join(combined.withheld)}")
    for row in [header, *rows]:
        lines.append("  ".join([row[0].ljust(widths[0])]
                               + [cell.rjust(w) for cell, w in zip(row[1:], widths[1:])]))
    if hidden:
        lines.append(f"suppressed at every site (n < {k}): {', '.join(hidden)}")
    return "\n".join(lines)
