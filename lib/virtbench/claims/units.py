"""A published claim in the measured unit: the conversions of units (several readings of an
ambiguous unit) and the order-of-magnitude classes of time."""

from __future__ import annotations

from virtbench import magnitudes
from virtbench.claims.pubrows import PublishedClaim

# (published unit, measured unit) -> the readings: (factor that turns the published number
# into the measured unit, what the reading assumes). Several readings: an ambiguous unit.
CONVERSIONS: dict[tuple[str, str], tuple[tuple[float, str], ...]] = {
    ("s", "ms"): ((1000.0, "s x 1000 = ms"),),
    ("ms", "ms"): ((1.0, ""),),
    ("us", "ms"): ((1e-3, "us / 1000 = ms"),),
    ("MB", "MiB"): ((1e6 / 2**20, "MB as 10^6 B (1 MB = 0.954 MiB)"), (1.0, "MB as 2^20 B")),
    ("GB", "MiB"): ((1e9 / 2**20, "GB as 10^9 B (1 GB = 953.7 MiB)"),
                    (1024.0, "GB as 2^30 B")),
    ("MB", "B"): ((1e6, "MB as 10^6 B"), (2.0**20, "MB as 2^20 B")),
    ("GB", "B"): ((1e9, "GB as 10^9 B"), (2.0**30, "GB as 2^30 B")),
    ("%", "%"): ((1.0, ""),),
    ("% of native", "%"): ((1.0, ""),),
    ("%", "% of one core"): ((1.0, "% of one core"),
                             (4.0, "% of the seed's 4-core host (x 4 = % of one core)")),
    ("requests/s", "requests/s"): ((1.0, ""),),
    ("requests/s", "req/s"): ((1.0, ""),),
    ("x", "x"): ((1.0, ""),),
    ("instances", "instances"): ((1.0, ""),),
}
# Published order-of-magnitude classes of time, read as ranges in ms (all classes, with their
# units and boundaries: virtbench.magnitudes).
MAGNITUDES: dict[str, tuple[float, float]] = magnitudes.TIME_CLASSES


def unit_readings(claim: PublishedClaim, unit: str) -> list[tuple[float, float, float, str]] | str:
    """The claim's interval (low, high, precision) in ``unit`` under each reading of its
    unit, with what the reading assumes; or why it cannot be converted."""
    if claim.category:
        found = magnitudes.class_range(claim.category, unit)
        return found if isinstance(found, str) else [(found[0], found[1], 0.0, found[2])]
    key = (claim.unit, unit)
    if key not in CONVERSIONS:
        return f"no conversion from {claim.unit!r} to {unit!r}"
    return [(claim.low * f, claim.high * f, claim.precision * f, said)
            for f, said in CONVERSIONS[key]]
