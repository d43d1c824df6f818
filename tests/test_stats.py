"""Unit tests for virtbench.stats."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy import stats as sps

from virtbench.stats import (
    POLICY,
    VERDICTS,
    Estimate,
    Policy,
    Verdict,
    _holm,
    censored_median_ci,
    check_claim,
    cliffs_delta,
    fit_slope,
    hodges_lehmann,
    mann_whitney_holm,
    median_ci,
    order_statistic_ranks,
    ratio_ci,
    stability_warnings,
)

# --- Estimate -------------------------------------------------------------------------------


def test_estimate_str_matches_ci_precision() -> None:
    assert str(Estimate(12.3, 11.9, 12.8, 10)) == "12.3 [11.9, 12.8]"
    assert str(Estimate(1234.5, 1200.0, 1300.0, 10)) == "1234 [1200, 1300]"
    assert str(Estimate(3.0, 3.0, 3.0, 4)) == "3 [3, 3]"
    assert "no CI" in str(Estimate(3.0, math.nan, math.nan, 1))


def test_estimate_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Estimate(1.0, 0.0, 2.0, 3).value = 5.0  # type: ignore[misc]


# --- median_ci ------------------------------------------------------------------------------


def test_median_ci_hand_case() -> None:
    est = median_ci([1, 2, 3, 4, 5])
    assert est.value == 3.0
    assert est.n == 5
    assert 1.0 <= est.low <= 3.0 <= est.high <= 5.0


@pytest.mark.parametrize("size", [2, 7, 20, 101])
def test_median_ci_value_is_numpy_median(size: int) -> None:
    sample = np.random.default_rng(size).exponential(5.0, size)
    est = median_ci(sample)
    assert est.value == pytest.approx(np.median(sample))
    assert est.low <= est.value <= est.high
    assert est.n == size


def test_median_ci_contains_true_median_of_large_normal_sample() -> None:
    sample = np.random.default_rng(42).normal(loc=10.0, scale=2.0, size=1000)
    est = median_ci(sample)
    assert est.low < 10.0 < est.high
    assert est.high - est.low < 0.5  # n=1000, sd=2: the median's CI is narrow


def test_median_ci_is_deterministic_for_a_seed() -> None:
    sample = np.random.default_rng(7).lognormal(2.0, 0.5, 40)
    assert median_ci(sample, seed=3) == median_ci(sample, seed=3)


def test_median_ci_single_value_has_no_ci() -> None:
    est = median_ci([4.2])
    assert est.value == 4.2 and est.n == 1
    assert math.isnan(est.low) and math.isnan(est.high)


def test_median_ci_all_equal_gives_zero_width_ci() -> None:
    assert median_ci([5.0] * 8) == Estimate(5.0, 5.0, 5.0, 8)


def test_median_ci_drops_nans() -> None:
    est = median_ci([1.0, math.nan, 3.0])
    assert est.value == 2.0 and est.n == 2


@pytest.mark.parametrize("sample", [[], [math.nan, math.nan]])
def test_median_ci_empty_raises(sample: list[float]) -> None:
    with pytest.raises(ValueError, match="empty"):
        median_ci(sample)


# --- ratio_ci -------------------------------------------------------------------------------


def test_ratio_ci_of_halved_sample() -> None:
    a = np.random.default_rng(1).lognormal(3.0, 0.2, 60)
    est = ratio_ci(a, 2 * a)
    assert est.value == pytest.approx(0.5)
    assert est.low < 0.5 < est.high
    assert est.n == 60


def test_ratio_ci_is_deterministic_and_independent_samples_may_differ_in_size() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(20, 1, 30), rng.normal(10, 1, 12)
    est = ratio_ci(a, b, seed=5)
    assert est == ratio_ci(a, b, seed=5)
    assert est.value == pytest.approx(np.median(a) / np.median(b))
    assert est.low < 2.0 < est.high
    assert est.n == 12


def test_ratio_ci_edge_cases() -> None:
    assert math.isnan(ratio_ci([4.0], [2.0, 2.0]).low)
    assert ratio_ci([4.0, 4.0], [2.0, 2.0, 2.0]) == Estimate(2.0, 2.0, 2.0, 2)
    with pytest.raises(ValueError, match="median 0"):
        ratio_ci([1.0, 2.0], [0.0, 0.0, 1.0])


# --- effect sizes ---------------------------------------------------------------------------


def test_cliffs_delta_hand_cases() -> None:
    assert cliffs_delta([1, 2, 3], [4, 5, 6]) == -1.0
    assert cliffs_delta([4, 5, 6], [1, 2, 3]) == 1.0
    assert cliffs_delta([1, 2, 3], [1, 2, 3]) == 0.0
    # pairs: 1<2, 1<3, 2=2, 2<3 -> (0 - 3) / 4
    assert cliffs_delta([1, 2], [2, 3]) == -0.75


def test_cliffs_delta_matches_pairwise_definition() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 10, 25).astype(float), rng.integers(2, 12, 17).astype(float)
    diff = np.subtract.outer(a, b)
    expected = (np.sum(diff > 0) - np.sum(diff < 0)) / diff.size
    assert cliffs_delta(a, b) == pytest.approx(expected)


def test_hodges_lehmann_hand_cases() -> None:
    assert hodges_lehmann([1, 2, 3], [0]) == 2.0
    # differences 9, 8, 19, 18 -> median 13.5
    assert hodges_lehmann([10, 20], [1, 2]) == 13.5
    assert hodges_lehmann([1, 2, 3], [1, 2, 3]) == 0.0


# --- mann_whitney_holm ----------------------------------------------------------------------


@pytest.fixture
def three_groups() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    return {
        "process": rng.normal(10.0, 1.0, 25),
        "docker": rng.normal(10.4, 1.0, 25),
        "wasm": rng.normal(11.5, 1.0, 20),
        "vm": rng.normal(10.8, 1.0, 22),
    }


def test_mann_whitney_holm_raw_and_adjusted_p(three_groups: dict[str, np.ndarray]) -> None:
    table = mann_whitney_holm(three_groups, reference="process", alpha=0.05)
    assert list(table.columns) == [
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
    assert list(table["group"]) == ["docker", "wasm", "vm"]
    assert set(table["reference"]) == {"process"}

    ref = three_groups["process"]
    raw = {}
    for row in table.itertuples():
        expected = sps.mannwhitneyu(three_groups[row.group], ref, alternative="two-sided")
        assert row.p == pytest.approx(expected.pvalue, rel=1e-12)
        assert row.u == expected.statistic
        assert row.n == len(three_groups[row.group]) and row.n_reference == 25
        assert row.cliffs_delta == pytest.approx(cliffs_delta(three_groups[row.group], ref))
        raw[row.group] = expected.pvalue

    # Holm step-down by hand: sort ascending, multiply by m, m-1, 1, keep monotone, cap at 1.
    names = sorted(raw, key=raw.get)
    first = min(1.0, 3 * raw[names[0]])
    second = max(first, min(1.0, 2 * raw[names[1]]))
    third = max(second, min(1.0, 1 * raw[names[2]]))
    expected_holm = dict(zip(names, [first, second, third], strict=True))
    for row in table.itertuples():
        assert row.p_holm == pytest.approx(expected_holm[row.group], rel=1e-12)
        assert row.significant == (row.p_holm < 0.05)
    assert table["significant"].any()  # wasm is 1.5 sd slower than the reference


def test_holm_monotone_step() -> None:
    # sorted 0.01, 0.03, 0.04 -> 0.03, 0.06, max(0.06, 0.04) = 0.06; back in input order
    np.testing.assert_allclose(_holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    np.testing.assert_allclose(_holm([0.5, 0.9]), [1.0, 1.0])


def test_mann_whitney_holm_unknown_reference(three_groups: dict[str, np.ndarray]) -> None:
    with pytest.raises(ValueError, match="unknown reference") as info:
        mann_whitney_holm(three_groups, reference="bare-metal")
    for name in three_groups:
        assert name in str(info.value)


def test_mann_whitney_holm_reference_only() -> None:
    table = mann_whitney_holm({"process": [1.0, 2.0, 3.0]}, reference="process")
    assert table.empty and "p_holm" in table.columns


# --- check_claim ----------------------------------------------------------------------------


@pytest.fixture
def around_ten() -> np.ndarray:
    return np.random.default_rng(5).normal(10.0, 0.5, 200)


def test_check_claim_consistent(around_ten: np.ndarray) -> None:
    result = check_claim(around_ten, 10.0)
    assert isinstance(result, Verdict)
    assert result.verdict == "consistent"
    assert result.claim_low == result.claim_high == 10.0
    assert result.estimate == median_ci(around_ten)
    # A range that only overlaps the CI at its lower end is still consistent.
    assert check_claim(around_ten, result.estimate.high - 1e-9, 50.0).verdict == "consistent"


def test_check_claim_higher_than_claimed(around_ten: np.ndarray) -> None:
    assert check_claim(around_ten, 5.0).verdict == "higher than claimed"
    assert check_claim(around_ten, 8.0, 9.0).verdict == "higher than claimed"


def test_check_claim_lower_than_claimed(around_ten: np.ndarray) -> None:
    assert check_claim(around_ten, 15.0).verdict == "lower than claimed"
    assert check_claim(around_ten, 11.0, 12.0).verdict == "lower than claimed"


def test_check_claim_uses_ci_not_point_estimate() -> None:
    # Median 10.5, but the CI of six noisy samples is wide enough to include the claim 10.
    sample = [9.0, 10.0, 10.4, 10.6, 11.0, 12.0]
    result = check_claim(sample, 10.0, policy=Policy(margin=0.0))
    assert result.estimate.value != 10.0
    assert result.verdict == "consistent"


def test_check_claim_inconclusive() -> None:
    result = check_claim([12.0], 10.0)
    assert result.verdict == "inconclusive (n = 1 < 6)"
    assert result.verdict.split(" (")[0] in VERDICTS
    assert "inconclusive" in str(result)


def test_check_claim_rejects_bad_arguments(around_ten: np.ndarray) -> None:
    with pytest.raises(ValueError, match="reversed"):
        check_claim(around_ten, 12.0, 10.0)
    with pytest.raises(ValueError, match="min_n"):
        Policy(min_n=1)
    with pytest.raises(ValueError, match="margin"):
        Policy(margin=1.5)


# --- the verdict policy ---------------------------------------------------------------------


def test_small_n_is_inconclusive_even_far_from_the_claim() -> None:
    assert check_claim([100.0, 101.0, 102.0], 1.0).verdict == "inconclusive (n = 3 < 6)"
    six = [100.0, 101.0, 102.0, 103.0, 104.0, 105.0]
    assert check_claim(six, 1.0).verdict == "higher than claimed"
    assert check_claim(six[:5], 1.0, policy=Policy(min_n=5)).verdict == "higher than claimed"


def test_order_statistic_ranks_follow_the_binomial() -> None:
    # n = 10: P(B <= 1) = 11/1024 <= 0.025 < P(B <= 2): the interval is [x(2), x(9)]
    assert order_statistic_ranks(10)[:2] == (2, 9)
    lo, hi, coverage = order_statistic_ranks(6)
    assert (lo, hi) == (1, 6) and coverage == pytest.approx(1 - 2 / 64)
    lo, hi, coverage = order_statistic_ranks(3)
    assert (lo, hi) == (1, 3) and coverage == pytest.approx(0.75)
    est = median_ci([3.0, 1.0, 2.0])
    assert est.coverage == pytest.approx(0.75) and "75% CI" in str(est)
    assert math.isnan(median_ci(range(6)).coverage)


@pytest.mark.parametrize("confidence", [0.5, 0.9, 0.95, 0.99])
def test_order_statistic_ranks_equal_scipys_binomial_quantiles(confidence) -> None:
    """The exact integer sums give the ranks and coverage scipy's binomial gives."""
    from scipy.stats import binom

    alpha = (1 - confidence) / 2
    for n in [*range(1, 400), 1000, 2500]:
        lo, hi, coverage = order_statistic_ranks(n, confidence)
        below = binom.cdf(lo - 1, n, 0.5)
        assert hi == n - lo + 1 and coverage == pytest.approx(1 - 2 * below, abs=1e-12)
        if lo > 1 or below <= alpha:  # an interval that holds: lo is the largest such rank
            assert below <= alpha + 1e-15 < binom.cdf(lo, n, 0.5)


def _coverage(n: int, method: str, trials: int, rng: np.random.Generator) -> float:
    true_median = 1.0  # median of a lognormal(0, 1)
    hits = 0
    for _ in range(trials):
        est = median_ci(rng.lognormal(0.0, 1.0, n), method=method, n_resamples=499)
        hits += est.low <= true_median <= est.high
    return hits / trials


@pytest.mark.parametrize("n", [6, 10, 25])
def test_order_statistic_ci_holds_its_coverage_by_simulation(n: int) -> None:
    assert _coverage(n, "order", 2000, np.random.default_rng(n)) >= 0.94


def test_bootstrap_ci_under_covers_at_small_n_by_simulation() -> None:
    # why the bootstrap is not the median's interval at the sizes a benchmark has
    assert _coverage(4, "bootstrap", 300, np.random.default_rng(4)) < 0.9


def test_tolerance_margin_and_precision() -> None:
    tight = np.linspace(10.25, 10.35, 20)  # median 10.3, CI well inside [10.25, 10.35]
    assert check_claim(tight, 10.0).verdict == "consistent"  # within 10 +- 5 %
    assert check_claim(tight, 10.0, policy=Policy(margin=0.0)).verdict == "higher than claimed"
    # a claim stated as "10" carries +- 0.5: consistent even without a margin
    assert check_claim(tight, 10.0, precision=0.5, policy=Policy(margin=0.0)).verdict == (
        "consistent")
    result = check_claim(tight, 9.0, 9.5)
    assert (result.tolerance_low, result.tolerance_high) == pytest.approx((8.55, 9.975))
    assert result.verdict == "higher than claimed"


def test_identical_samples_give_the_interval_v_v_and_a_verdict() -> None:
    same = [4.0] * 10
    result = check_claim(same, 4.0)
    assert (result.estimate.low, result.estimate.high) == (4.0, 4.0)
    assert result.verdict == "consistent"
    assert check_claim(same, 10.0).verdict == "lower than claimed"  # 10 % of CPU vs 4 %
    assert check_claim([0.0] * 10, 0.5).verdict == "lower than claimed"  # 0 % idle CPU
    assert check_claim([4.0] * 5, 10.0).verdict.startswith("inconclusive (n = 5")
    rules = " ".join(POLICY.rules())
    assert "no interval" not in rules and "[v, v]" in rules
    # a size on disk is exact: one sample suffices and is no interval problem
    assert check_claim([4096.0], 4096.0, exact=True).verdict == "consistent"
    assert check_claim([4096.0], 1000.0, exact=True).verdict == "higher than claimed"


# --- censored samples (bounds) ------------------------------------------------------------


def test_censored_upper_bounds_hand_case() -> None:
    # n = 10: ranks (2, 9). Three upper bounds (3.0, 0.9, 1.0) among seven exact values.
    values = [1.8, 4.9, 3.0, 3.9, 4.4, 0.9, 1.0, 2.5, 2.2, 5.5]
    censored = [False, False, True, False, False, True, True, False, False, False]
    est = censored_median_ci(values, censored)
    assert est.n == 10 and est.censored == 3 and est.bound == "upper"
    assert est.high == 4.9  # the 9th smallest with the bounds in
    assert est.low == -math.inf  # 3 bounds, any of them may lie below rank 2
    assert est.value == pytest.approx(np.median(values))  # the median with the bounds in
    assert str(est).startswith("\u2264 ")
    one = censored_median_ci(values, [False] * 9 + [True])  # only 5.5 is a bound
    # the bound may be the smallest value, so rank 2 is at least the smallest exact value
    assert one.low == 0.9 and one.high == 4.9
    assert censored_median_ci(values, [False] * 10) == median_ci(values)


def test_censored_interval_contains_the_interval_of_the_unknown_values() -> None:
    rng = np.random.default_rng(7)
    for _ in range(300):
        n = int(rng.integers(6, 25))
        y = rng.normal(1.0, 1.0, n)  # what was measured, some of it known only as a bound
        censored = rng.random(n) < 0.4
        bounds = np.where(censored, y + rng.exponential(1.0, n), y)
        truth = median_ci(y)
        est = censored_median_ci(bounds, censored)
        assert est.low <= truth.low and est.high >= truth.high
        assert est.value >= truth.value
        lower = censored_median_ci(np.where(censored, y - 0.5, y), censored, bound="lower")
        assert lower.low <= truth.low and lower.high >= truth.high
        assert lower.value <= truth.value


def test_censored_interval_holds_its_coverage_by_simulation() -> None:
    rng = np.random.default_rng(3)
    hits = 0
    for _ in range(2000):
        y = rng.lognormal(0.0, 1.0, 10)  # true median 1
        censored = y < 0.8  # small values known only as "below 0.8"
        est = censored_median_ci(np.where(censored, 0.8, y), censored)
        hits += est.low <= 1.0 <= est.high
    assert hits / 2000 >= 0.94


def test_censored_values_decide_only_where_the_bounds_allow() -> None:
    exact = [3.0, 4.0, 4.5, 5.0]
    small = [0.9, 1.0, 1.2]  # upper bounds: the value is at most this
    mask = [False] * 4 + [True] * 3
    low_claim = check_claim(exact + small, 60.0, censored=mask)
    assert low_claim.verdict == "lower than claimed" and low_claim.estimate.censored == 3
    # the bounds say nothing about how small the values are: never "higher than claimed"
    assert check_claim(exact + small, 0.1, censored=mask).verdict == "consistent"
    # without the bounds only 4 repetitions are left, too few for a verdict
    assert check_claim(exact, 60.0).verdict.startswith("inconclusive (n = 4")
    # lower bounds (at least this many instances) can only be "higher than claimed"
    many = check_claim([5000.0] * 3 + [2000.0, 2500.0, 3000.0, 2600.0], 133.0,
                       censored=[True] * 3 + [False] * 4, bound="lower")
    assert many.verdict == "higher than claimed" and many.estimate.high == math.inf


def test_censored_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="valid: upper, lower"):
        censored_median_ci([1.0, 2.0], [True, False], bound="above")
    with pytest.raises(ValueError, match="one per value"):
        censored_median_ci([1.0, 2.0], [True])
    with pytest.raises(ValueError, match="one per value"):
        check_claim([1.0, 2.0], 1.0, censored=[True, False, False])


# --- fit_slope ------------------------------------------------------------------------------


def test_fit_slope_recovers_known_slope() -> None:
    rng = np.random.default_rng(9)
    x = np.repeat(np.arange(1, 21), 3).astype(float)
    y = 3.0 * x + 50.0 + rng.normal(0.0, 2.0, x.size)
    est = fit_slope(x, y)
    assert est.value == pytest.approx(sps.linregress(x, y).slope)
    assert est.value == pytest.approx(3.0, abs=0.15)
    assert est.low < 3.0 < est.high
    assert est.high - est.low < 0.5
    assert est.n == x.size


def test_fit_slope_ci_is_t_based() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    y = np.array([2.1, 3.9, 6.2, 7.8, 10.1])
    fit = sps.linregress(x, y)
    half = sps.t.ppf(0.975, 3) * fit.stderr
    est = fit_slope(x, y)
    assert est.low == pytest.approx(fit.slope - half)
    assert est.high == pytest.approx(fit.slope + half)


def test_fit_slope_edge_cases() -> None:
    two = fit_slope([1.0, 2.0], [1.0, 3.0])
    assert two.value == pytest.approx(2.0) and math.isnan(two.low)
    with pytest.raises(ValueError, match="differ"):
        fit_slope([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="equal"):
        fit_slope([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])


# --- stability_warnings ---------------------------------------------------------------------


def _has(warnings: list[str], prefix: str) -> bool:
    return any(w.startswith(prefix) for w in warnings)


def test_stability_clean_sample_has_no_warnings() -> None:
    clean = np.random.default_rng(0).normal(100.0, 1.0, 30)
    assert stability_warnings(clean, unit="ms") == []


def test_stability_few_samples() -> None:
    found = stability_warnings([10.0, 10.1, 9.9])
    assert "only 3 samples" in found


def test_stability_wide_ci_without_large_spread() -> None:
    # Six samples with ~14% spread: not "unstable", but the median's CI is > 20% of it.
    found = stability_warnings([8.0, 9.0, 10.0, 10.0, 11.0, 12.0], unit="ms")
    assert _has(found, "wide CI")
    assert not _has(found, "unstable")
    assert " ms" in next(w for w in found if w.startswith("wide CI"))


def test_stability_unstable() -> None:
    noisy = np.random.default_rng(4).lognormal(3.0, 0.8, 40)
    assert _has(stability_warnings(noisy), "unstable")


def test_stability_warm_up() -> None:
    rest = np.random.default_rng(6).normal(10.0, 0.1, 19)
    found = stability_warnings([30.0, *rest], unit="ms")
    assert _has(found, "first sample slower")
    assert not _has(stability_warnings([*rest, 30.0]), "first sample slower")


def test_stability_bimodal() -> None:
    rng = np.random.default_rng(8)
    two_modes = rng.permutation(np.r_[rng.normal(10.0, 0.2, 20), rng.normal(14.0, 0.2, 20)])
    found = stability_warnings(two_modes)
    assert _has(found, "bimodal")
    assert not _has(stability_warnings(rng.normal(10.0, 0.2, 40)), "bimodal")


def test_stability_empty() -> None:
    assert stability_warnings([]) == ["no samples"]
