"""UCUM units a number condition may be written in, and the ranges they stand for.

Sites store measurements in their canonical unit (mm, mm2, ...), but a cohort author may think
in cm. Rather than converting every stored value at query time (impossible without scripts),
a condition's bounds are converted into each unit of the same dimension: ``min: 2.5, unit:
cm`` becomes ``unit = cm AND value >= 2.5`` OR ``unit = mm AND value >= 25`` OR ... . Factors
are exact fractions, so a converted bound is the double nearest the exact product (2.3 cm is
23.0 mm, not 22.999999999999996). Units not listed here match only themselves.
"""

from __future__ import annotations

from fractions import Fraction

# unit -> (dimension, factor to the dimension's base unit)
_UNITS: dict[str, tuple[str, Fraction]] = {
    **{u: ("length", f) for u, f in (("m", Fraction(1)), ("dm", Fraction(1, 10)),
                                      ("cm", Fraction(1, 100)), ("mm", Fraction(1, 1000)),
                                      ("um", Fraction(1, 10**6)))},
    **{u: ("area", f) for u, f in (("m2", Fraction(1)), ("cm2", Fraction(1, 10**4)),
                                    ("mm2", Fraction(1, 10**6)))},
    **{u: ("volume", f) for u, f in (("m3", Fraction(1)), ("L", Fraction(1, 1000)),
                                      ("dL", Fraction(1, 10**4)), ("mL", Fraction(1, 10**6)),
                                      ("cm3", Fraction(1, 10**6)), ("uL", Fraction(1, 10**9)),
                                      ("mm3", Fraction(1, 10**9)))},
    **{u: ("time", f) for u, f in (("d", Fraction(86400)), ("h", Fraction(3600)),
                                    ("min", Fraction(60)), ("s", Fraction(1)),
                                    ("ms", Fraction(1, 1000)))},
    **{u: ("mass", f) for u, f in (("kg", Fraction(1000)), ("g", Fraction(1)),
                                    ("mg", Fraction(1, 1000)))},
    **{u: ("ratio", f) for u, f in (("1", Fraction(1)), ("%", Fraction(1, 100)))},
}

Range = tuple[str | None, float | None, float | None]


def equivalent_ranges(unit: str | None, low: float | None, high: float | None) -> list[Range]:
    """``(unit, low, high)`` in every unit a stored number may have and still match.

    Without a unit the bounds apply to the stored value whatever its unit: one range, unit None.
    """
    if unit is None or unit not in _UNITS:
        return [(unit, low, high)]
    dimension, factor = _UNITS[unit]
    return [(other, _convert(low, factor / other_factor), _convert(high, factor / other_factor))
            for other, (other_dimension, other_factor) in _UNITS.items()
            if other_dimension == dimension]


def _convert(bound: float | None, ratio: Fraction) -> float | None:
    return None if bound is None else float(Fraction(bound) * ratio)
