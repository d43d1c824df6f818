"""The NumPy bootstrap gives scipy.stats.bootstrap's interval (BCa, else percentile)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats as scipy_stats

from virtbench import bootstrap
from virtbench.stats import _median_ratio


def _scipy_interval(data, statistic, confidence, n_resamples, seed):
    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = scipy_stats.bootstrap(data, statistic, n_resamples=n_resamples,
                                           confidence_level=confidence, method=method,
                                           vectorized=True, rng=np.random.default_rng(seed))
        low, high = (float(v) for v in result.confidence_interval)
        if math.isfinite(low) and math.isfinite(high):
            return low, high
    return math.nan, math.nan


def _median(x, axis=-1):
    return np.median(x, axis=axis)


def _geomean_of_ratios(*samples, axis=-1):
    logs = [np.log(_median_ratio(samples[i], samples[i + 1], axis=axis))
            for i in range(0, len(samples), 2)]
    return np.exp(np.mean(logs, axis=0))


def _samples(rng, sizes, ties):
    if ties:
        return tuple(rng.integers(1, 4, size).astype(float) for size in sizes)
    return tuple(rng.lognormal(3, 0.4, size) for size in sizes)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize("statistic,sizes", [
    (_median, (3,)), (_median, (6,)), (_median, (25,)),
    (_median_ratio, (6, 6)), (_median_ratio, (3, 10)),
    (_geomean_of_ratios, (6, 6, 5, 7)),
])
def test_equals_scipy(statistic, sizes, ties):
    rng = np.random.default_rng(sum(sizes) + ties)
    for trial in range(4):
        data = _samples(rng, sizes, ties)
        for confidence in (0.9, 0.95):
            ours = bootstrap.interval(data, statistic, confidence, 999, trial)
            theirs = _scipy_interval(data, statistic, confidence, 999, trial)
            np.testing.assert_allclose(ours, theirs, rtol=1e-12, equal_nan=True)


def test_degenerate_sample_falls_back_to_percentile():
    data = (np.array([5.0, 5.0, 5.0, 5.0, 9.0]),)
    theta_b = np.median(data[0][np.random.default_rng(0).integers(0, 5, (999, 5))], axis=-1)
    alpha = 0.025
    assert math.isnan(bootstrap._bca_levels(data, _median, alpha, np.sort(theta_b))[0])
    ours = bootstrap.interval(data, _median, 0.95, 999, 0)
    assert 5.0 <= ours[0] <= ours[1] <= 9.0
    np.testing.assert_allclose(ours, _scipy_interval(data, _median, 0.95, 999, 0))


def test_constant_sample_has_its_value_or_nan():
    data = (np.full(6, 2.0),)
    ours = bootstrap.interval(data, _median, 0.95, 99, 0)
    np.testing.assert_allclose(ours, _scipy_interval(data, _median, 0.95, 99, 0),
                               equal_nan=True)
