"""A seeded bootstrap confidence interval (BCa, else percentile) in NumPy alone.

It follows ``scipy.stats.bootstrap(..., vectorized=True, method="BCa")`` step for step (the
same resampling order from ``numpy.random.default_rng(seed)``, the same jackknife
acceleration, the same Hyndman–Fan type 7 quantile), so it gives scipy's interval without
importing ``scipy.stats``, which takes a second: the claims check of a run needs only this.
``tests/test_bootstrap.py`` holds it equal to scipy's.

Every sample is one-dimensional; ``statistic(*samples, axis=-1)`` reduces the last axis.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

import numpy as np

Statistic = Callable[..., np.ndarray]
_NORMAL = NormalDist()


def interval(data: tuple[np.ndarray, ...], statistic: Statistic, confidence: float,
             n_resamples: int, seed: int) -> tuple[float, float]:
    """The BCa interval, or the percentile interval where BCa is undefined (a degenerate
    jackknife, or every resample on one side); (nan, nan) when neither is defined."""
    rng = np.random.default_rng(seed)
    resamples = [x[rng.integers(0, x.size, (n_resamples, x.size))] for x in data]
    theta_b = np.sort(np.asarray(statistic(*resamples, axis=-1), dtype=float))
    alpha = (1 - confidence) / 2
    for low_q, high_q in (_bca_levels(data, statistic, alpha, theta_b), (alpha, 1 - alpha)):
        if math.isfinite(low_q) and math.isfinite(high_q):
            low, high = _quantile(theta_b, low_q), _quantile(theta_b, high_q)
            if math.isfinite(low) and math.isfinite(high):
                return low, high
    return math.nan, math.nan


def _bca_levels(data: tuple[np.ndarray, ...], statistic: Statistic, alpha: float,
                theta_b: np.ndarray) -> tuple[float, float]:
    """The bias-corrected, accelerated quantile levels (Efron & Tibshirani 14.3, 15.4)."""
    theta = float(statistic(*data, axis=-1))
    below = np.count_nonzero(theta_b < theta) + np.count_nonzero(theta_b <= theta)
    z0 = _ndtri(below / (2 * theta_b.size))
    accel = _acceleration(data, statistic)
    z_alpha = _ndtri(alpha)
    levels = []
    for z in (z_alpha, -z_alpha):
        shifted = z0 + z
        with np.errstate(all="ignore"):
            levels.append(_ndtr(z0 + shifted / (1 - accel * shifted)))
    return levels[0], levels[1]


def _acceleration(data: tuple[np.ndarray, ...], statistic: Statistic) -> float:
    """The jackknife acceleration over every sample, each left out one value at a time."""
    nums, dens = 0.0, 0.0
    for j, sample in enumerate(data):
        n = sample.size
        keep = ~np.eye(n, dtype=bool)
        left_out = np.broadcast_to(sample, (n, n))[keep].reshape(n, n - 1)
        samples = [left_out if k == j else np.broadcast_to(x, (n, x.size))
                   for k, x in enumerate(data)]
        theta_i = np.asarray(statistic(*samples, axis=-1), dtype=float)
        u = (n - 1) * (theta_i.mean() - theta_i)
        nums += float(np.sum(u ** 3)) / n ** 3
        dens += float(np.sum(u ** 2)) / n ** 2
    with np.errstate(all="ignore"):
        return float(1 / 6 * np.float64(nums) / np.float64(dens) ** (3 / 2))


def _quantile(ordered: np.ndarray, p: float) -> float:
    """Hyndman–Fan type 7 quantile of a sorted sample, computed as scipy computes it."""
    n = ordered.size
    jg = p * n + (1 - p)
    j, g = jg // 1 - 1, jg % 1
    if j < 0:
        g = 0.0
    low = int(min(max(j, 0), n - 1))
    high = int(min(max(j + 1, 0), n - 1))
    return float((1 - g) * ordered[low] + g * ordered[high])


def _ndtri(p: float) -> float:
    """The standard normal quantile, infinite at 0 and 1, NaN outside [0, 1]."""
    if p <= 0 or p >= 1:
        return -math.inf if p == 0 else math.inf if p == 1 else math.nan
    return _NORMAL.inv_cdf(p)


def _ndtr(x: float) -> float:
    """The standard normal distribution function."""
    if math.isnan(x):
        return math.nan
    return 0.5 * math.erfc(-x / math.sqrt(2))
