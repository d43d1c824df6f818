"""Magnitude classes: a published word ("milliseconds", "KB-MB", "near-native") read as a range
of a measured unit, with every boundary stated.

A claim whose published value is such a word is checked like a claimed range: the measured
median's CI against the class's range under the verdict policy (its tolerance included).
"""

from __future__ import annotations

import math

#: class -> (measured unit, low, high, what the boundaries are). A time class spans three
#: decades below the next one; a size class the decimal prefixes it names.
CLASSES: dict[str, tuple[str, float, float, str]] = {
    "microseconds": ("ms", 0.001, 1.0, "1 us to 1 ms"),
    "milliseconds": ("ms", 1.0, 1000.0, "1 ms to 1 s"),
    "seconds": ("ms", 1000.0, 60_000.0, "1 s to 1 min"),
    "KB-MB": ("B", 1e3, 1e9, "10^3 B (1 KB) to 10^9 B (the end of the MB range)"),
    "near-native": ("%", 90.0, 100.0, "at least 90 % of native speed (within 10 %), a "
                    "boundary set here: the seed gives none"),
}
#: The time classes as ranges in ms (claims.MAGNITUDES keeps this name).
TIME_CLASSES = {k: (lo, hi) for k, (unit, lo, hi, _) in CLASSES.items() if unit == "ms"}


def class_range(category: str, unit: str) -> tuple[float, float, str] | str:
    """(low, high, what the reading says) of a class in ``unit``; a sentence saying why not
    when the word is no class or the class is not one of that unit."""
    if category not in CLASSES:
        return f"a category ({category!r}) is no magnitude class; classes: {', '.join(CLASSES)}"
    want, low, high, said = CLASSES[category]
    if unit != want:
        return f"a category ({category!r}) cannot be compared with {unit or 'no unit'}"
    shown = f"{_num(low)}-{_num(high)} {unit}" if math.isfinite(high) else \
        f">= {_num(low)} {unit}"
    return low, high, f"'{category}' read as {shown} ({said})"


def _num(x: float) -> str:
    """A boundary in plain digits (1,000,000,000, never 1e+09)."""
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:g}"


def class_of(value: float, unit: str) -> str:
    """The class a measured value falls in ("" when none of that unit holds it)."""
    for name, (want, low, high, _) in CLASSES.items():
        if unit == want and low <= value < high:
            return name
    return ""
