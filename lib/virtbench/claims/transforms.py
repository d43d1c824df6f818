"""Transforms of measured values: what a pick turns its samples into (a ratio to the
baseline, a percentage, instances per 8 GiB) and the unit of the result."""

from __future__ import annotations

import numpy as np

MIB_PER_8GIB = 8 * 1024

TRANSFORMS: dict[str, tuple[str | None, bool]] = {
    # transform -> (unit of the result, None = the metric's own unit; needs a baseline)
    "value": (None, False),
    "per_8gib": ("instances", False),
    "capability": ("", False),
    "ratio": ("x", True),
    "inverse_ratio": ("x", True),
    "pct_of_baseline": ("%", True),
    "pct_of_baseline_time": ("%", True),
    "pct_change": ("%", True),
    "pct_reduction": ("%", True),
    # the geometric mean over the pick's kernels of the per-kernel ratio of medians to the
    # baseline, with its bootstrap CI (stats.geomean_ratio_ci): 100 x baseline / variant time
    # ("% of native"), or variant / baseline ("x")
    "geomean_pct_of_baseline_time": ("%", True),
    "geomean_ratio": ("x", True),
}
GEOMEAN_TRANSFORMS = ("geomean_pct_of_baseline_time", "geomean_ratio")


def apply(transform: str, v: np.ndarray, b: np.ndarray | float) -> np.ndarray:
    """The transformed samples (``b`` the paired baseline values or the baseline median)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "ratio": lambda: v / b,
            "inverse_ratio": lambda: b / v,
            "pct_of_baseline": lambda: 100 * v / b,
            "pct_of_baseline_time": lambda: 100 * b / v,
            "pct_change": lambda: 100 * (v / b - 1),
            "pct_reduction": lambda: 100 * (1 - v / b),
        }[transform]()


# Censored values (bounds, see stats.censored_median_ci) through a transform: a decreasing
# one turns an upper bound into a lower bound.
FLIPPED = {"upper": "lower", "lower": "upper"}
DECREASING = ("inverse_ratio", "pct_of_baseline_time", "pct_reduction")
