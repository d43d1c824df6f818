"""Statistics for the benchmark suite: medians with CIs, group comparisons, claim checks.

The median's CI is the distribution-free order-statistic (binomial) interval: it holds its
coverage at every sample size, and says so when the sample is too small to reach the asked
confidence. Ratios of medians use a seeded two-sample bootstrap (:mod:`virtbench.bootstrap`,
equal to ``scipy.stats.bootstrap``'s BCa interval).
The verdict policy (minimum samples, tolerance, censored values) is :class:`Policy`, stated
once here and printed by every report. NaNs in input samples are dropped.

Censored values (:func:`censored_median_ci`): a repetition that only bounds its value (a
density slope whose CI includes 0 is an upper bound) stays in the sample as its bound; the
median and its order-statistic interval are then computed so that every stated end still
holds (see that function for which end does).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from virtbench import bootstrap

__all__ = [
    "POLICY",
    "VERDICTS",
    "Estimate",
    "Policy",
    "Verdict",
    "censored_median_ci",
    "check_claim",
    "cliffs_delta",
    "fit_slope",
    "geomean_ratio_ci",
    "hodges_lehmann",
    "mann_whitney_holm",
    "median_ci",
    "ratio_ci",
    "stability_warnings",
]

VERDICTS = ("consistent", "lower than claimed", "higher than claimed", "inconclusive")


def _scipy_stats() -> Any:
    """``scipy.stats``, imported on first use: it takes a second to import, and reading a
    run or a kept claims check needs none of it."""
    from scipy import stats

    return stats


_MANN_WHITNEY_COLUMNS = [
    "group",
    "reference",
    "n",
    "n_reference",
    "u",
    "p",
    "p_holm",
    "significant",
    "cliffs_delta",
    "hodges_lehmann",
]


def _fmt(x: float, digits: int = 4) -> str:
    """A number with at most ``digits`` significant digits, in fixed-point notation."""
    if not math.isfinite(x):
        return str(x)
    if x == 0:
        return "0"
    decimals = min(12, max(0, digits - 1 - math.floor(math.log10(abs(x)))))
    text = f"{x:.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def _sig(x: float, digits: int) -> str:
    return f"{x:.{digits}g}" if abs(x) < 10 ** digits else f"{x:,.0f}"


def human(value: float, unit: str = "", digits: int = 3) -> str:
    """A number with its unit, readable: bytes in B/KiB/MiB/GiB, times in ms or s.

    ``human(9732690, "B") -> "9.28 MiB"``, ``human(4144, "ms") -> "4.14 s"``,
    ``human(0.25, "s") -> "250 ms"``; times under a millisecond stay in ms unless given in
    a smaller unit; other units keep their value (``digits`` significant digits) and unit.
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    value = float(value)
    if not math.isfinite(value):
        return f"{value} {unit}".strip()
    if unit in BYTE_UNITS:
        scaled, i = value * 1024 ** BYTE_UNITS.index(unit), 0
        while abs(scaled) >= 1024 and i < len(BYTE_UNITS) - 1:
            scaled, i = scaled / 1024, i + 1
        if i == 0:
            return f"{scaled:,.0f} B" if scaled == int(scaled) else f"{_sig(scaled, digits)} B"
        return f"{_sig(scaled, digits)} {BYTE_UNITS[i]}"
    if unit in TIME_UNITS:
        seconds = value * TIME_UNITS[unit]
        if abs(seconds) >= 1:
            return f"{_sig(seconds, digits)} s"
        if abs(seconds) >= 1e-3 or TIME_UNITS[unit] >= 1e-3:
            return f"{_sig(seconds * 1e3, digits)} ms"
        return f"{_sig(value, digits)} {unit}"
    return f"{_sig(value, digits)} {unit}".strip()


@dataclass(frozen=True)
class Estimate:
    """A point estimate with its confidence interval (``nan`` bounds when not computable)."""

    value: float
    low: float
    high: float
    n: int
    coverage: float = math.nan  # the interval's real coverage when below the one asked for
    censored: int = 0  # how many of the n values are bounds (see censored_median_ci)
    bound: str = ""  # "upper" or "lower": which kind of bound the censored values are

    @property
    def has_ci(self) -> bool:
        """Whether both interval bounds are finite numbers."""
        return math.isfinite(self.low) and math.isfinite(self.high)

    def __str__(self) -> str:
        if self.censored:
            sign = "\u2264" if self.bound == "upper" else "\u2265"
            short = f", {self.coverage:.0%} CI" if math.isfinite(self.coverage) else ""
            return (f"{sign} {_fmt(self.value)} [{_fmt(self.low)}, {_fmt(self.high)}] "
                    f"(n={self.n}, {self.censored} {self.bound} bound"
                    f"{'s' if self.censored > 1 else ''}{short})")
        if not self.has_ci:
            return f"{_fmt(self.value)} (n={self.n}, no CI)"
        short = f" ({self.coverage:.0%} CI: n={self.n})" if math.isfinite(self.coverage) else ""
        width = self.high - self.low
        if width <= 0:
            return f"{_fmt(self.value)} [{_fmt(self.low)}, {_fmt(self.high)}]{short}"
        # Enough decimals for at least five steps across the interval: 11.9..12.8 -> 1 decimal.
        decimals = min(12, max(0, math.ceil(math.log10(5 / width))))
        return (f"{self.value:.{decimals}f} [{self.low:.{decimals}f}, "
                f"{self.high:.{decimals}f}]{short}")


def _clean(sample: Sequence[float] | np.ndarray, name: str = "sample") -> np.ndarray:
    """The sample as a flat float array without NaNs; ValueError if nothing is left."""
    x = np.asarray(sample, dtype=float).ravel()
    x = x[~np.isnan(x)]
    if x.size == 0:
        raise ValueError(f"{name} is empty (no non-NaN values)")
    return x


def _bootstrap_ci(
    data: tuple[np.ndarray, ...],
    statistic: Callable[..., np.ndarray],
    confidence: float,
    n_resamples: int,
    seed: int,
) -> tuple[float, float]:
    """BCa bootstrap interval, falling back to the percentile method when BCa yields NaN."""
    return bootstrap.interval(data, statistic, confidence, n_resamples, seed)


def _location_ci(
    sample: Sequence[float] | np.ndarray,
    statistic: Callable[..., np.ndarray],
    confidence: float,
    n_resamples: int,
    seed: int,
) -> Estimate:
    x = _clean(sample)
    value = float(statistic(x))
    if x.size < 2:
        return Estimate(value, math.nan, math.nan, int(x.size))
    if np.all(x == x[0]):
        return Estimate(value, value, value, int(x.size))
    low, high = _bootstrap_ci((x,), statistic, confidence, n_resamples, seed)
    return Estimate(value, low, high, int(x.size))


@functools.lru_cache(maxsize=1024)
def order_statistic_ranks(n: int, confidence: float = 0.95) -> tuple[int, int, float]:
    """1-based ranks (lo, hi) of the distribution-free CI of the median, and its coverage.

    The interval [x_(lo), x_(hi)] covers the median with probability 1 - 2 P(B <= lo - 1),
    B ~ Binomial(n, 1/2), at least ``confidence``. When even [min, max] is short of it (n < 6
    at 95%), (1, n) is returned with the coverage it really has.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    alpha = (1 - confidence) / 2
    # the largest k with P(B <= k - 1) <= alpha (k = 0: no such interval exists), from the
    # exact binomial sums C(n, 0) + ... + C(n, k), in integers
    total, below, term, k = 1 << n, 0, 1, 0  # below = 2^n P(B <= k - 1); term = C(n, k)
    while k < n and (below + term) / total <= alpha:
        below += term
        term = term * (n - k) // (k + 1)
        k += 1
    if k == 0:
        k, below = 1, 1  # [min, max]: P(B <= 0) = 2^-n
    return k, n - k + 1, 1 - 2 * (below / total)


def median_ci(
    sample: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
    method: str = "order",
) -> Estimate:
    """Median with its CI: the order-statistic interval (``method="order"``, the default) or
    a seeded bootstrap (``"bootstrap"``: BCa, percentile fallback; it under-covers at small n).

    n == 1 gives a NaN CI; when n is too small for ``confidence``, the returned interval is
    [min, max] and ``coverage`` says what it really covers.
    """
    if method == "bootstrap":
        return _location_ci(sample, np.median, confidence, n_resamples, seed)
    if method != "order":
        raise ValueError(f"unknown method {method!r}; valid: order, bootstrap")
    x = np.sort(_clean(sample))
    value = float(np.median(x))
    if x.size < 2:
        return Estimate(value, math.nan, math.nan, int(x.size))
    lo, hi, coverage = order_statistic_ranks(int(x.size), confidence)
    short = coverage if coverage < confidence - 1e-12 else math.nan
    return Estimate(value, float(x[lo - 1]), float(x[hi - 1]), int(x.size), short)


BOUNDS = ("upper", "lower")


def censored_median_ci(
    sample: Sequence[float] | np.ndarray,
    censored: Sequence[bool] | np.ndarray,
    confidence: float = 0.95,
    bound: str = "upper",
    limit: float | None = None,
) -> Estimate:
    """Median and order-statistic CI of a sample some of whose values are only bounds.

    ``censored[i]`` says that ``sample[i]`` bounds an unknown value y_i: from above when
    ``bound="upper"`` (left-censored: y_i <= sample[i]; a density slope whose CI includes 0
    is kept as the upper end of that CI), from below when ``bound="lower"`` (y_i >=
    sample[i]). ``limit`` is how far a censored value can lie beyond its bound (default:
    -inf for upper bounds, +inf for lower bounds; 0 only if the unknown values cannot be
    negative). The other values are exact (y_i = sample[i]).

    What holds (upper bounds; lower bounds are the mirror image): let z be the sample with
    every censored value at its bound and w the sample with every censored value at
    ``limit``. Then w_i <= y_i <= z_i for every i, and order statistics are monotone in each
    value, so w_(k) <= y_(k) <= z_(k) for every rank k. With (lo, hi) the ranks of the
    order-statistic interval at n (:func:`order_statistic_ranks`), [y_(lo), y_(hi)] covers
    the median with the stated coverage, hence so does the wider [w_(lo), z_(hi)]:

    - ``high`` = z_(hi) is a valid upper end (the hi-th smallest value with bounds in);
    - ``low`` = w_(lo) is the lo-th smallest with censored values at ``limit``: the lo-th
      smallest exact value counted after the censored ones, or ``limit`` (-inf) when at
      least lo values are censored;
    - ``value`` = median(z) is an upper bound of the sample median (it is the median itself
      when median(w) equals it).

    So "lower than claimed" (the upper end below the claim) stays a valid verdict with any
    number of censored values, and "higher than claimed" needs the lo-th exact value above
    the claim. With no censored value this is :func:`median_ci`. The bounds themselves are
    taken as given: for a slope kept at the upper end of its fit's CI, the fitted slope
    (the value the exact repetitions report) is always below it.
    """
    if bound not in BOUNDS:
        raise ValueError(f"unknown bound {bound!r}; valid: {', '.join(BOUNDS)}")
    x = np.asarray(sample, dtype=float).ravel()
    mask = np.asarray(censored, dtype=bool).ravel()
    if mask.shape != x.shape:
        raise ValueError(f"censored has {mask.size} flags for {x.size} values; give one per "
                         "value")
    keep = ~np.isnan(x)
    x, mask = x[keep], mask[keep]
    if x.size == 0:
        raise ValueError("sample is empty (no non-NaN values)")
    if not mask.any():
        return median_ci(x, confidence)
    sign = 1.0 if bound == "upper" else -1.0  # lower bounds: mirror, compute, mirror back
    far = -math.inf if limit is None else sign * float(limit)
    z = np.sort(sign * x)
    w = np.sort(np.where(mask, far, sign * x))
    n = int(x.size)
    value = float(np.median(z))
    if n < 2:
        low, high, short = far, float(z[0]), math.nan
    else:
        lo, hi, coverage = order_statistic_ranks(n, confidence)
        low, high = float(w[lo - 1]), float(z[hi - 1])
        short = coverage if coverage < confidence - 1e-12 else math.nan
    if sign < 0:
        value, low, high = -value, -high, -low
    return Estimate(value, low + 0.0, high + 0.0, n, short, int(mask.sum()), bound)


def _median_ratio(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.median(a, axis=axis) / np.median(b, axis=axis)


def ratio_ci(
    numerator_sample: Sequence[float] | np.ndarray,
    denominator_sample: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
) -> Estimate:
    """median(a) / median(b) with an independent two-sample bootstrap CI.

    ``n`` of the result is the smaller of the two sample sizes.
    """
    a = _clean(numerator_sample, "numerator_sample")
    b = _clean(denominator_sample, "denominator_sample")
    if np.median(b) == 0:
        raise ValueError("denominator_sample has median 0; the ratio is undefined")
    value = float(_median_ratio(a, b))
    n = int(min(a.size, b.size))
    if n < 2:
        return Estimate(value, math.nan, math.nan, n)
    if np.all(a == a[0]) and np.all(b == b[0]):
        return Estimate(value, value, value, n)
    low, high = _bootstrap_ci((a, b), _median_ratio, confidence, n_resamples, seed)
    return Estimate(value, low, high, n)


def geomean_ratio_ci(
    pairs: Sequence[tuple[Sequence[float] | np.ndarray, Sequence[float] | np.ndarray]],
    confidence: float = 0.95,
    n_resamples: int = 9999,
    seed: int = 0,
) -> Estimate:
    """Geometric mean over ``pairs`` of median(a) / median(b), with a bootstrap CI.

    Each pair is (numerator sample, denominator sample), e.g. one kernel's times on a
    variant and on the baseline. Every sample is resampled independently; the interval is
    BCa (percentile when BCa fails). ``n`` is the smallest sample size.
    """
    if not pairs:
        raise ValueError("no pairs: the geometric mean of nothing is undefined")
    clean = [(_clean(a, f"numerator {i}"), _clean(b, f"denominator {i}"))
             for i, (a, b) in enumerate(pairs)]
    if any(np.median(a) <= 0 or np.median(b) <= 0 for a, b in clean):
        raise ValueError("every median must be positive for a geometric mean of ratios")
    value = float(np.exp(np.mean([np.log(_median_ratio(a, b)) for a, b in clean])))
    n = int(min(min(a.size, b.size) for a, b in clean))
    if n < 2:
        return Estimate(value, math.nan, math.nan, n)
    if all(np.all(a == a[0]) and np.all(b == b[0]) for a, b in clean):
        return Estimate(value, value, value, n)

    def statistic(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
        logs = [np.log(_median_ratio(samples[i], samples[i + 1], axis=axis))
                for i in range(0, len(samples), 2)]
        return np.exp(np.mean(logs, axis=0))

    data = tuple(x for pair in clean for x in pair)
    key = (tuple(x.tobytes() for x in data), tuple(x.size for x in data), confidence,
           n_resamples, seed)
    if key not in _GEOMEAN_CIS:  # the same samples asked by several claims: one bootstrap
        _GEOMEAN_CIS[key] = _bootstrap_ci(data, statistic, confidence, n_resamples, seed)
    low, high = _GEOMEAN_CIS[key]
    return Estimate(value, low, high, n)


#: Bootstrap intervals of :func:`geomean_ratio_ci` by their samples and settings (seeded, so
#: the same samples give the same interval).
_GEOMEAN_CIS: dict[tuple, tuple[float, float]] = {}


def cliffs_delta(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Cliff's delta, P(a > b) - P(a < b), in [-1, 1]."""
    x = _clean(a, "a")
    y = np.sort(_clean(b, "b"))
    below = np.searchsorted(y, x, side="left")  # for each a_i: how many b_j < a_i
    above = y.size - np.searchsorted(y, x, side="right")  # how many b_j > a_i
    return float((below.sum() - above.sum()) / (x.size * y.size))


def hodges_lehmann(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Hodges-Lehmann shift: the median of all pairwise differences a_i - b_j."""
    return float(np.median(np.subtract.outer(_clean(a, "a"), _clean(b, "b"))))


def _holm(p: Sequence[float]) -> np.ndarray:
    """Holm step-down adjusted p-values, in the input order."""
    p = np.asarray(p, dtype=float)
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def mann_whitney_holm(
    groups: dict[str, Sequence[float]], reference: str, alpha: float = 0.05
) -> pd.DataFrame:
    """Two-sided Mann-Whitney U of every group against ``reference``, Holm-corrected.

    ``u`` is the U statistic of the group (not of the reference); effect sizes are group minus
    reference.
    """
    if reference not in groups:
        valid = ", ".join(repr(name) for name in groups)
        raise ValueError(f"unknown reference group {reference!r}; valid groups: {valid}")
    ref = _clean(groups[reference], f"group {reference!r}")
    rows = []
    for name, values in groups.items():
        if name == reference:
            continue
        x = _clean(values, f"group {name!r}")
        test = _scipy_stats().mannwhitneyu(x, ref, alternative="two-sided")
        rows.append(
            {
                "group": name,
                "reference": reference,
                "n": int(x.size),
                "n_reference": int(ref.size),
                "u": float(test.statistic),
                "p": float(test.pvalue),
                "cliffs_delta": cliffs_delta(x, ref),
                "hodges_lehmann": hodges_lehmann(x, ref),
            }
        )
    table = pd.DataFrame(rows, columns=_MANN_WHITNEY_COLUMNS)
    table["p_holm"] = _holm(table["p"].to_numpy())
    table["significant"] = (table["p_holm"] < alpha).astype(bool)
    return table


@dataclass(frozen=True)
class Policy:
    """When a measurement may give a verdict on a claim; stated once, printed by every report.

    ``min_n``: independent samples (repetitions) a verdict needs; sizes on disk are exact and
    exempt. ``margin``: the practical-equivalence margin around a claim (relative). The
    median's CI is the order-statistic interval at ``confidence``.
    """

    min_n: int = 6
    margin: float = 0.05
    confidence: float = 0.95

    def __post_init__(self) -> None:
        if self.min_n < 2:
            raise ValueError(f"min_n must be at least 2, got {self.min_n}")
        if not 0 <= self.margin < 1:
            raise ValueError(f"margin must be in [0, 1), got {self.margin}")
        if not 0.5 < self.confidence < 1:
            raise ValueError(f"confidence must be in (0.5, 1), got {self.confidence}")

    def short_of(self, n: int, exact: bool = False) -> str:
        """"inconclusive (n = k < min_n)" when ``n`` independent samples are too few for a
        verdict or a conclusion; "" when they suffice (``exact`` samples always do)."""
        return "" if exact or n >= self.min_n else f"inconclusive (n = {n} < {self.min_n})"

    def conclusive(self, lines: pd.DataFrame) -> pd.DataFrame:
        """The lines of a summary (column ``n``) with enough samples to conclude from: what a
        headline or sentence about a measurement may quote."""
        return lines[lines["n"].fillna(0).astype(int) >= self.min_n]

    def rules(self) -> list[str]:
        """The policy as sentences, for reports and the README."""
        lo, hi, cov = order_statistic_ranks(self.min_n, self.confidence)
        return [
            f"A verdict needs at least {self.min_n} independent samples (repetitions); below "
            f"that a line reads \"inconclusive (n = k < {self.min_n})\". Sizes on disk are "
            "exact (deterministic) and exempt, and so is a capability (logs collected, a "
            "trace taken): one observation shows it.",
            f"The median's {self.confidence:.0%} CI is the distribution-free order-statistic "
            f"(binomial) interval, which holds its coverage at every n (at n = {self.min_n}: "
            f"[x({lo}), x({hi})], coverage {cov:.1%}). Ratios of medians in comparison "
            "tables use a seeded bootstrap.",
            "A point claim is widened by the precision it was stated with (half a unit of its "
            f"last digit) or a practical-equivalence margin of \u00b1{self.margin:.0%}, "
            "whichever is larger; a range by the margin. \"Higher/lower than claimed\" only "
            "when the whole CI clears that tolerance; otherwise \"consistent\".",
            "A claim whose unit has several readings (a CPU % of one core or of the whole "
            "host; MB as 10^6 B or 2^20 B) is checked under each; if the verdicts differ the "
            "line is \"not comparable\".",
            "Lines marked not comparable, context only or partly comparable, and lines that "
            "compare the baseline with itself, are shown but never tallied. Identical samples "
            "give the interval [v, v]: every order statistic is v, and the interval keeps "
            f"its coverage ({cov:.1%} at n = {self.min_n}).",
            "A repetition that only bounds its value (a density slope whose 95% CI includes "
            "0, kept as the upper end of that CI) stays in the sample as its bound "
            "(censored): the CI's upper end is the order statistic with the bounds in; its "
            "lower end counts censored values as -inf (so it is -inf once as many values "
            "are censored as the lower rank), and the median shown is an upper bound "
            "(\u2264). \"Lower than claimed\" needs only the upper end, so it follows with "
            "any number of bounds.",
            "Readings inside one repetition are correlated (e.g. the cumulative readings of "
            "one density ramp): the repetition is the statistical unit, its readings are "
            "reduced to their median first.",
            "Each published claim gets one verdict per platform family: the verdict its "
            "variants agree on, or \"mixed\" listing which variant says what.",
        ]


POLICY = Policy()


@dataclass(frozen=True)
class Verdict:
    """How a measured sample compares with a published claim (a point or a range)."""

    verdict: str
    estimate: Estimate
    claim_low: float
    claim_high: float
    tolerance_low: float = math.nan   # the claim widened by its tolerance
    tolerance_high: float = math.nan

    def __str__(self) -> str:
        if self.claim_low == self.claim_high:
            claim = _fmt(self.claim_low)
        else:
            claim = f"[{_fmt(self.claim_low)}, {_fmt(self.claim_high)}]"
        return f"{self.verdict}: measured {self.estimate}, claimed {claim}"


def tolerance(low: float, high: float, precision: float = 0.0,
              policy: Policy = POLICY) -> tuple[float, float]:
    """The claimed interval widened by its tolerance (see :meth:`Policy.rules`)."""
    widen_low = policy.margin * abs(low)
    widen_high = policy.margin * abs(high)
    if low == high:
        widen_low = widen_high = max(widen_low, precision)
    return low - widen_low, high + widen_high


def check_claim(
    sample: Sequence[float] | np.ndarray,
    low: float,
    high: float | None = None,
    *,
    precision: float = 0.0,
    exact: bool = False,
    policy: Policy = POLICY,
    censored: Sequence[bool] | np.ndarray | None = None,
    bound: str = "upper",
) -> Verdict:
    """Compare a sample's median with a claimed value or range [low, high] under ``policy``.

    "higher/lower than claimed" only when the whole CI of the median lies above/below the
    claim widened by its tolerance; any overlap is "consistent"; too few samples or no CI
    is "inconclusive (why)". ``exact`` samples (sizes) need no CI. Identical samples give
    the interval [v, v]. ``censored`` flags values that are only ``bound``s (upper: the
    value is at most this); the interval is then :func:`censored_median_ci`'s, whose
    infinite end never clears a claim.
    """
    claim_low = float(low)
    claim_high = claim_low if high is None else float(high)
    if claim_low > claim_high:
        raise ValueError(f"claimed range is reversed: low {claim_low} > high {claim_high}")
    raw = np.asarray(sample, dtype=float).ravel()
    mask = (np.zeros(raw.shape, dtype=bool) if censored is None
            else np.asarray(censored, dtype=bool).ravel())
    if mask.shape != raw.shape:
        raise ValueError(f"censored has {mask.size} flags for {raw.size} values; give one "
                         "per value")
    x, mask = _clean(raw), mask[~np.isnan(raw)]
    n = int(x.size)
    if exact and not mask.any() and np.all(x == x[0]):
        estimate = Estimate(float(x[0]), float(x[0]), float(x[0]), n)
    elif mask.any():
        estimate = censored_median_ci(x, mask, policy.confidence, bound)
    else:
        estimate = median_ci(x, policy.confidence)
    return judge(estimate, claim_low, claim_high, precision=precision, exact=exact,
                 policy=policy)


def judge(estimate: Estimate, low: float, high: float, *, precision: float = 0.0,
          exact: bool = False, policy: Policy = POLICY) -> Verdict:
    """The verdict of an estimate with its CI (a median, a geometric mean of ratios) on the
    claim [low, high] under ``policy``: too few samples or no CI is inconclusive; "higher/
    lower than claimed" only when the whole CI clears the claim widened by its tolerance."""
    tol_low, tol_high = tolerance(low, high, precision, policy)
    verdict = policy.short_of(estimate.n, exact)
    if verdict:
        pass
    elif math.isnan(estimate.low) or math.isnan(estimate.high):
        verdict = "inconclusive (no CI)"
    elif estimate.low > tol_high:
        verdict = "higher than claimed"
    elif estimate.high < tol_low:
        verdict = "lower than claimed"
    else:
        verdict = "consistent"
    return Verdict(verdict, estimate, low, high, tol_low, tol_high)


def fit_slope(
    x: Sequence[float] | np.ndarray, y: Sequence[float] | np.ndarray, confidence: float = 0.95
) -> Estimate:
    """Least-squares slope of y on x with a t-based CI (NaN CI with fewer than 3 points)."""
    xs = np.asarray(x, dtype=float).ravel()
    ys = np.asarray(y, dtype=float).ravel()
    if xs.shape != ys.shape:
        raise ValueError(f"x and y differ in length: {xs.size} != {ys.size}")
    keep = ~(np.isnan(xs) | np.isnan(ys))
    xs, ys = xs[keep], ys[keep]
    if xs.size < 2:
        raise ValueError(f"need at least 2 (x, y) points without NaN, got {xs.size}")
    if np.all(xs == xs[0]):
        raise ValueError("all x values are equal; the slope is undefined")
    fit = _scipy_stats().linregress(xs, ys)
    slope = float(fit.slope)
    dof = xs.size - 2
    if dof < 1:
        return Estimate(slope, math.nan, math.nan, int(xs.size))
    half = float(_scipy_stats().t.ppf(0.5 + confidence / 2, dof)) * float(fit.stderr)
    return Estimate(slope, slope - half, slope + half, int(xs.size))


def _bimodality_coefficient(x: np.ndarray) -> float:
    """Sarle's bimodality coefficient; values above 5/9 (0.555) hint at more than one mode."""
    n = x.size
    skew = _scipy_stats().skew(x, bias=False)
    kurt = _scipy_stats().kurtosis(x, fisher=True, bias=False)
    return float((skew**2 + 1) / (kurt + 3 * (n - 1) ** 2 / ((n - 2) * (n - 3))))


def stability_warnings(sample: Sequence[float] | np.ndarray, unit: str = "") -> list[str]:
    """Human-readable warnings about a sample that may not be trustworthy (empty if it looks fine).

    Checks the sample size, CI width, spread (relative MAD, coefficient of variation), a slow
    first sample (warm-up) and a bimodality hint.
    """
    x = np.asarray(sample, dtype=float).ravel()
    x = x[~np.isnan(x)]
    n = int(x.size)
    if n == 0:
        return ["no samples"]

    def show(v: float) -> str:
        return f"{_fmt(v)} {unit}" if unit else _fmt(v)

    found: list[str] = []
    if n < POLICY.min_n:
        found.append(f"only {n} samples" if n != 1 else "only 1 sample")
    median = float(np.median(x))
    if n >= 2 and median != 0:
        est = median_ci(x)
        if est.has_ci and (est.high - est.low) > 0.2 * abs(median):
            pct = 100 * (est.high - est.low) / abs(median)
            found.append(
                f"wide CI: [{show(est.low)}, {show(est.high)}] spans {pct:.0f}% of the median "
                f"{show(median)}"
            )
        rel_mad = float(_scipy_stats().median_abs_deviation(x, scale="normal")) / abs(median)
        mean = float(np.mean(x))
        cv = float(np.std(x, ddof=1)) / abs(mean) if mean != 0 else math.inf
        if rel_mad > 0.25 or cv > 0.25:
            found.append(
                f"unstable: relative MAD {rel_mad:.0%}, coefficient of variation {cv:.0%} (> 25%)"
            )
    if n >= 2:
        rest = float(np.median(x[1:]))
        if rest > 0 and x[0] > 1.5 * rest:
            found.append(
                f"first sample slower than the rest ({show(float(x[0]))} vs median "
                f"{show(rest)}): warm-up effect?"
            )
    if n >= 10 and not np.all(x == x[0]):
        bc = _bimodality_coefficient(x)
        if bc > 5 / 9:
            found.append(f"bimodal? bimodality coefficient {bc:.2f} > 0.555")
    return found
