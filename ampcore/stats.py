"""Statistics helpers over scipy, shared by the benchmark suite and the history tools."""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as _stats


def _as_array(values: Sequence[float], name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of numbers")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _median_ratio(baseline: np.ndarray, candidate: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(baseline, axis=axis) / np.median(candidate, axis=axis)


def _rng_argument(seed: int) -> dict:
    # scipy >= 1.15 takes ``rng``; older releases (the project allows >= 1.10) ``random_state``.
    name = "rng" if "rng" in inspect.signature(_stats.bootstrap).parameters else "random_state"
    return {name: np.random.default_rng(seed)}


def bootstrap_speedup_ci(baseline_rounds: Sequence[float], candidate_rounds: Sequence[float],
                         confidence: float = 0.95, n_resamples: int = 9999,
                         seed: int = 0) -> tuple[float, float, float]:
    """Speedup of ``candidate`` over ``baseline`` as median(baseline)/median(candidate), with a
    bootstrap confidence interval from two independently resampled samples.

    Returns ``(estimate, low, high)``; the bounds are NaN when a sample has fewer than two
    rounds (nothing to resample). The percentile method is used because BCa's jackknife is
    unstable for a median of a handful of rounds."""
    baseline = _as_array(baseline_rounds, "baseline_rounds")
    candidate = _as_array(candidate_rounds, "candidate_rounds")
    if np.any(candidate <= 0) or np.any(baseline <= 0):
        raise ValueError("round times must be positive")
    estimate = float(_median_ratio(baseline, candidate))
    if baseline.size < 2 or candidate.size < 2:
        return estimate, math.nan, math.nan
    if np.ptp(baseline) == 0 and np.ptp(candidate) == 0:
        return estimate, estimate, estimate  # every resample gives the same ratio
    result = _stats.bootstrap((baseline, candidate), _median_ratio, n_resamples=n_resamples,
                              paired=False, vectorized=True, confidence_level=confidence,
                              method="percentile", **_rng_argument(seed))
    return estimate, float(result.confidence_interval.low), float(result.confidence_interval.high)


def mann_whitney(a: Sequence[float], b: Sequence[float], alternative: str = "two-sided") -> float:
    """p-value of the Mann-Whitney U test that ``a`` and ``b`` come from one distribution."""
    x = _as_array(a, "a")
    y = _as_array(b, "b")
    if np.ptp(np.concatenate([x, y])) == 0:
        return 1.0  # all values equal: no evidence of a shift (scipy would return NaN)
    return float(_stats.mannwhitneyu(x, y, alternative=alternative).pvalue)


def median(values: Sequence[float]) -> float:
    return float(np.median(_as_array(values, "values")))


def quartiles(values: Sequence[float]) -> tuple[float, float]:
    """First and third quartile (numpy's default linear interpolation, as pytest-benchmark's
    ``statistics.quantiles`` gives for the stored q1/q3 up to small-sample differences)."""
    q1, q3 = np.percentile(_as_array(values, "values"), [25, 75])
    return float(q1), float(q3)


def relative_change(baseline: float, candidate: float) -> float:
    """(candidate - baseline) / baseline; positive means the candidate is larger."""
    if baseline == 0:
        return math.inf if candidate > 0 else (0.0 if candidate == 0 else -math.inf)
    return (candidate - baseline) / baseline


def robust_sigma(values: Sequence[float]) -> float:
    """Normal-consistent spread that ignores outliers: scipy's scaled MAD."""
    return float(_stats.median_abs_deviation(_as_array(values, "values"), scale="normal"))
