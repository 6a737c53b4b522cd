"""UCUM units: converting a site's value to a declared unit, and the ranges a number condition
stands for in every unit of its dimension.

Sites write measurements in their own units (cm, ml); the converter stores them in the unit
the study declares (``convert``). A cohort author may think in cm while SRs hold mm. Rather than converting every stored value at query time (impossible without scripts),
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

# How sites spell UCUM units that UCUM spells otherwise (case matters in UCUM).
ALIASES = {"ml": "mL", "l": "L", "dl": "dL", "cc": "cm3", "AU": "1", "": "1", "sec": "s"}
Range = tuple[str | None, float | None, float | None]


def canonical_unit(unit: str) -> str:
    """``unit`` as UCUM spells it (``ml`` -> ``mL``)."""
    text = unit.strip()
    return ALIASES.get(text, text)


def factor(from_unit: str, to_unit: str) -> Fraction | None:
    """What a value in ``from_unit`` is multiplied by to be in ``to_unit``; None when the two
    are not units of one dimension (or not known)."""
    source, target = canonical_unit(from_unit), canonical_unit(to_unit)
    if source == target:
        return Fraction(1)
    if source not in _UNITS or target not in _UNITS or _UNITS[source][0] != _UNITS[target][0]:
        return None
    return _UNITS[source][1] / _UNITS[target][1]


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
