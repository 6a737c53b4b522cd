"""PNG figures of a combined result: UpSet-style intersections and the label balance.

Bars stack the sites: the solid part of a site's bar is what it published (or proved lower
bound), the hatched part the width of its suppressed range, so nothing hidden is drawn as if it
were known. Agg backend, fixed sizes and no dates in the metadata: same input, same file.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the backend)
from matplotlib.axes import Axes  # noqa: E402

from srcohort.federated.aggregate import LABELS, OTHER_COMBINATIONS  # noqa: E402

if TYPE_CHECKING:
    from srcohort.federated.combine import Combined

UPSET = "upset.png"
LABEL_BALANCE = "label-balance.png"
_METADATA = {"Software": None}
HATCH = "///"


def _stacked(ax: Axes, x: Sequence[float], combined: "Combined", cells: Sequence[str],
             width: float = 0.8) -> None:
    """One stacked bar per cell: each site's proven part solid, its uncertain part hatched."""
    colours = plt.get_cmap("tab10")
    bottom = [0.0] * len(cells)
    for i, site in enumerate(combined.sites):
        low = [combined.cells[c][site][0] for c in cells]
        extra = [_finite(combined.cells[c][site][1]) - combined.cells[c][site][0] for c in cells]
        ax.bar(x, low, width, bottom=bottom, color=colours(i % 10), label=site)
        bottom = [b + v for b, v in zip(bottom, low)]
        ax.bar(x, extra, width, bottom=bottom, color="white", edgecolor=colours(i % 10),
               hatch=HATCH, linewidth=0.5)
        bottom = [b + v for b, v in zip(bottom, extra)]
    for xi, cell in zip(x, cells):
        low, high = combined.overall(cell)
        text = str(low) if low == high else f"{low}\u2013{int(_finite(high))}"
        ax.annotate(text, (xi, _finite(high)), ha="center", va="bottom", fontsize=7)


def _finite(value: float) -> float:
    return 0.0 if value == math.inf else value


def upset(combined: "Combined", path: Path) -> Path:
    """Intersection sizes (stacked by site) above a dot matrix of the channels they contain."""
    combos = combined.rows("combination/")
    members = [name.removeprefix("combination/").split(" + ") for name in combos]
    channels = [c for c in combined.channels if any(c in m for m in members)]
    fig, (bars, dots) = plt.subplots(2, 1, figsize=(max(6.0, 0.6 * len(combos) + 3), 7),
                                     gridspec_kw={"height_ratios": [3, 2]}, sharex=True)
    x = list(range(len(combos)))
    _stacked(bars, x, combined, combos)
    bars.set_ylabel("patients")
    bars.set_title(f"{combined.cohort['name']}: channel intersections "
                   f"(hatched: suppressed, k={combined.k})", fontsize=9)
    bars.margins(y=0.12)
    bars.legend(fontsize=7, ncols=2)
    for xi, member in zip(x, members):
        present = [row for row, c in enumerate(channels) if c in member]
        dots.scatter([xi] * len(channels), range(len(channels)), color="lightgrey", s=30)
        if present:
            dots.scatter([xi] * len(present), present, color="black", s=30)
            dots.plot([xi, xi], [min(present), max(present)], color="black", linewidth=1.5)
    dots.set_yticks(range(len(channels)), channels, fontsize=8)
    dots.set_xticks(x, [f"<{combined.k} pooled" if m == [OTHER_COMBINATIONS] else ""
                        for m in members], fontsize=7)
    dots.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata=_METADATA)
    plt.close(fig)
    return path


def label_balance(combined: "Combined", path: Path) -> Path:
    """The label's yes / no / unknown per site (small multiples, one panel per label value)."""
    fig, axes = plt.subplots(1, len(LABELS), figsize=(3.2 * len(LABELS), 3.8), sharey=True)
    for ax, label in zip(axes, LABELS):
        cell = f"label/{label}"
        low = [combined.cells[cell][s][0] for s in combined.sites]
        extra = [_finite(combined.cells[cell][s][1]) - lo for s, lo in zip(combined.sites, low)]
        x = list(range(len(combined.sites)))
        ax.bar(x, low, color="tab:blue")
        ax.bar(x, extra, bottom=low, color="white", edgecolor="tab:blue", hatch=HATCH)
        for xi, lo, ex in zip(x, low, extra):
            ax.annotate(str(lo) if not ex else f"{lo}\u2013{int(lo + ex)}", (xi, lo + ex),
                        ha="center", va="bottom", fontsize=7)
        ax.set_xticks(x, combined.sites, rotation=45, ha="right", fontsize=7)
        ax.set_title(f"{combined.label}: {label}")
        ax.margins(y=0.15)          # room for the value labels above the tallest bar
    axes[0].set_ylabel("patients")
    fig.suptitle(f"{combined.cohort['name']}: label balance (hatched: suppressed, "
                 f"k={combined.k})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata=_METADATA)
    plt.close(fig)
    return path


def write_plots(combined: "Combined", out_dir: Path) -> list[Path]:
    return [upset(combined, out_dir / UPSET), label_balance(combined, out_dir / LABEL_BALANCE)]
