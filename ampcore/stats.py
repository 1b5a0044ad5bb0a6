"""Statistics helpers over scipy, shared by the benchmark suite and the history tools."""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass

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


def _speedup_change(base_fp32, base_amp, cand_fp32, cand_amp, axis: int = -1) -> np.ndarray:
    return _median_ratio(cand_fp32, cand_amp, axis) / _median_ratio(base_fp32, base_amp, axis)


@dataclass(frozen=True)
class SpeedupChange:
    """Candidate speedup / baseline speedup, its bootstrap interval and one-sided p-values."""

    estimate: float
    low: float
    high: float
    p_drop: float  # evidence that the speedup dropped (ratio < 1)
    p_gain: float  # evidence that it grew (ratio > 1)


def bootstrap_speedup_change(baseline_fp32: Sequence[float], baseline_amp: Sequence[float],
                             candidate_fp32: Sequence[float], candidate_amp: Sequence[float],
                             confidence: float = 0.95, n_resamples: int = 9999,
                             seed: int = 0) -> SpeedupChange:
    """How the speedup over fp32 changed between two runs: candidate speedup / baseline speedup
    (each median(fp32)/median(amp) within its run). The bootstrap resamples all four samples, so
    the baseline's own noise counts too. The p-values invert the percentile interval: the share
    of bootstrap ratios on the wrong side of 1. Bounds and p-values are NaN with < 2 rounds."""
    samples = tuple(_as_array(v, n) for v, n in ((baseline_fp32, "baseline_fp32"),
                                                 (baseline_amp, "baseline_amp"),
                                                 (candidate_fp32, "candidate_fp32"),
                                                 (candidate_amp, "candidate_amp")))
    if any(np.any(s <= 0) for s in samples):
        raise ValueError("round times must be positive")
    estimate = float(_speedup_change(*samples))
    if any(s.size < 2 for s in samples):
        return SpeedupChange(estimate, math.nan, math.nan, math.nan, math.nan)
    if all(np.ptp(s) == 0 for s in samples):
        return SpeedupChange(estimate, estimate, estimate, float(estimate >= 1), float(estimate <= 1))
    result = _stats.bootstrap(samples, _speedup_change, n_resamples=n_resamples, paired=False,
                              vectorized=True, confidence_level=confidence, method="percentile",
                              **_rng_argument(seed))
    ratios = result.bootstrap_distribution
    p_drop = (np.count_nonzero(ratios >= 1) + 1) / (ratios.size + 1)
    p_gain = (np.count_nonzero(ratios <= 1) + 1) / (ratios.size + 1)
    return SpeedupChange(estimate, float(result.confidence_interval.low),
                         float(result.confidence_interval.high), float(p_drop), float(p_gain))


def adjust_p_values(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (scipy): comparing them with alpha keeps the chance
    of any false alarm among all the gate's tests at alpha when nothing changed."""
    if not len(p_values):
        return []
    return [float(q) for q in _stats.false_discovery_control(np.asarray(p_values, dtype=float))]


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
