"""Train/validation/test assignment that survives re-exports and cohort growth.

A patient's split depends only on its pseudonym: a hash mapped to [0, 1) and cut at the
fractions. Re-exporting the same cohort gives the same split; a patient added later never moves
another patient between splits (which a shuffled split would do, leaking test patients into
training across export versions).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitFractions:
    train: float = 0.70
    val: float = 0.15
    test: float = 0.15

    def __post_init__(self) -> None:
        values = (self.train, self.val, self.test)
        if any(v < 0 for v in values) or abs(sum(values) - 1.0) > 1e-9:
            raise ValueError(f"split fractions must be >= 0 and sum to 1, got {values}")

    @classmethod
    def parse(cls, text: str) -> "SplitFractions":
        """``"70/15/15"`` or ``"0.8/0.1/0.1"`` (percentages when they sum to 100)."""
        try:
            parts = [float(p) for p in text.replace(",", "/").split("/")]
        except ValueError:
            raise ValueError(f"split {text!r}: expected train/val/test, e.g. 70/15/15") from None
        if len(parts) != 3:
            raise ValueError(f"split {text!r}: expected three parts train/val/test")
        scale = 100.0 if abs(sum(parts) - 100.0) < 1e-6 else 1.0
        return cls(*(p / scale for p in parts))

    def __str__(self) -> str:
        return "/".join(f"{v * 100:g}" for v in (self.train, self.val, self.test))


def unit_interval(pseudonym: str) -> float:
    """A stable, uniformly spread number in [0, 1) for a pseudonym."""
    digest = hashlib.sha256(f"srcohort-split\x1f{pseudonym}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2 ** 64


def assign_split(pseudonym: str, fractions: SplitFractions) -> str:
    u = unit_interval(pseudonym)
    if u < fractions.train:
        return "train"
    return "val" if u < fractions.train + fractions.val else "test"
