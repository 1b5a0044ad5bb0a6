"""Statistics helpers over scipy, shared by the benchmark suite and the history tools."""

from __future__ import annotations

import inspect
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def _as_array(values: Sequence[float], name: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of numbers")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def _sps():  # noqa: ANN202 - scipy.stats, the module
    # Imported when a statistic is computed, not when the suite collects its tests (~0.8 s).
    from scipy import stats

    return stats


def _median_ratio(baseline: np.ndarray, candidate: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(baseline, axis=axis) / np.median(candidate, axis=axis)


def _rng_argument(seed: int) -> dict:
    # scipy >= 1.15 takes ``rng``; older releases (the project allows >= 1.11) ``random_state``.
    name = "rng" if "rng" in inspect.signature(_sps().bootstrap).parameters else "random_state"
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
    result = _sps().bootstrap((baseline, candidate), _median_ratio, n_resamples=n_resamples,
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
    result = _sps().bootstrap(samples, _speedup_change, n_resamples=n_resamples, paired=False,
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
    return [float(q) for q in _sps().false_discovery_control(np.asarray(p_values, dtype=float))]


def mann_whitney(a: Sequence[float], b: Sequence[float], alternative: str = "two-sided") -> float:
    """p-value of the Mann-Whitney U test that ``a`` and ``b`` come from one distribution."""
    x = _as_array(a, "a")
    y = _as_array(b, "b")
    if np.ptp(np.concatenate([x, y])) == 0:
        return 1.0  # all values equal: no evidence of a shift (scipy would return NaN)
    return float(_sps().mannwhitneyu(x, y, alternative=alternative).pvalue)


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


def coefficient_of_variation(values: Sequence[float]) -> float | None:
    """Sample sd / mean; None for fewer than two finite values or a non-positive mean."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if len(finite) < 2 or statistics.fmean(finite) <= 0:
        return None
    return statistics.stdev(finite) / statistics.fmean(finite)


def round_cv(round_times: Sequence[float], sizes: Sequence[int] = ()) -> float | None:
    """A run's round CV: of the per-sample round times when every round's size is known
    (an epoch's last round is short), else of the raw times; None when it cannot be told.
    The one definition the suite records and compare and calibrate read."""
    per = ([t / n for t, n in zip(round_times, sizes)]
           if len(sizes) == len(round_times) and all(n > 0 for n in sizes) else list(round_times))
    return coefficient_of_variation(per)


def robust_sigma(values: Sequence[float]) -> float:
    """Normal-consistent spread that ignores outliers: scipy's scaled MAD."""
    return float(_sps().median_abs_deviation(_as_array(values, "values"), scale="normal"))


# --- paired accuracy: two models classifying the same samples ----------------------------------

def pack_correct(correct: Sequence[bool]) -> str:
    """Per-sample correct-or-not as base64 of a bit string (1 bit a sample, zero-padded to a
    whole byte): 5,000 samples take 836 characters in a JSON record."""
    import base64

    bits = np.asarray(correct, dtype=bool)
    if bits.ndim != 1:
        raise ValueError("correct must be a 1-D sequence of booleans")
    return base64.b64encode(np.packbits(bits).tobytes()).decode("ascii")


def unpack_correct(text: str, n: int) -> np.ndarray:
    """The ``n`` booleans ``pack_correct`` packed; ValueError for text that cannot be them
    (not base64, a length that does not hold ``n`` bits, set padding bits)."""
    import base64
    import binascii

    if isinstance(n, bool) or not isinstance(n, int) or n < 1 or not isinstance(text, str):
        raise ValueError(f"need packed text and a sample count >= 1, got {type(text).__name__} "
                         f"and {n!r}")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError(f"packed correctness is not base64: {exc}") from None
    if len(raw) != -(-n // 8):
        raise ValueError(f"packed correctness holds {len(raw) * 8} bits, not the {n} samples "
                         "it claims (rounded up to whole bytes)")
    bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8)).astype(bool)
    if bits[n:].any():
        raise ValueError("packed correctness has bits set past its sample count")
    return bits[:n]


@dataclass(frozen=True)
class PairedAccuracy:
    """Reference vs candidate on the same samples: the paired table and the interval of the
    accuracy difference ``reference - candidate`` (positive: the candidate is worse)."""

    n: int  # pairs, pooled over the runs compared
    reference_accuracy: float
    candidate_accuracy: float
    b: int  # reference right, candidate wrong
    c: int  # reference wrong, candidate right
    low: float
    high: float
    p_mcnemar: float  # exact, two-sided, on the pooled disagreements
    p_worse: float  # one-sided: the candidate is wrong more often
    p_better: float
    method: str
    runs: int = 1
    run_differences: tuple[float, ...] = ()  # reference - candidate accuracy per pair of runs

    @property
    def difference(self) -> float:
        return self.reference_accuracy - self.candidate_accuracy


def _check_pair(reference: Sequence[bool],
                candidate: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
    ref, cand = np.asarray(reference, dtype=bool), np.asarray(candidate, dtype=bool)
    if ref.ndim != 1 or ref.size == 0 or ref.shape != cand.shape:
        raise ValueError(f"paired correctness needs two equally long non-empty 1-D sequences; "
                         f"got {ref.size} and {cand.size} samples")
    return ref, cand


def mcnemar_exact(b: int, c: int, alternative: str = "two-sided") -> float:
    """Exact McNemar test: under "no difference" the ``b`` + ``c`` disagreements split
    Binomial(b + c, 1/2). ``greater``: evidence that ``b`` (reference right, candidate wrong)
    is the larger. 1.0 without disagreements."""
    if b < 0 or c < 0:
        raise ValueError(f"disagreement counts must be >= 0, got b={b}, c={c}")
    if b + c == 0:
        return 1.0
    return float(_sps().binomtest(int(b), int(b + c), 0.5, alternative=alternative).pvalue)


def newcombe_paired_ci(a: int, b: int, c: int, d: int,
                       confidence: float = 0.95) -> tuple[float, float]:
    """Interval of p1 - p2 for paired proportions (p1 = (a+b)/n, p2 = (a+c)/n): Newcombe's
    hybrid score interval (1998, method 10), which combines the two Wilson intervals through
    the table's phi correlation. Chosen because it is closed-form (no root finding), keeps
    near-nominal coverage with few disagreements, and stays wider than zero when b = c = 0,
    where a Wald interval collapses."""
    n = a + b + c + d
    if min(a, b, c, d) < 0 or n == 0:
        raise ValueError(f"a paired table needs counts >= 0 and n >= 1, got {(a, b, c, d)}")

    def wilson(k: int) -> tuple[float, float, float]:
        ci = _sps().binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
        return k / n, ci.low, ci.high

    p1, l1, u1 = wilson(a + b)
    p2, l2, u2 = wilson(a + c)
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    phi = (a * d - b * c) / math.sqrt(margins) if margins else 0.0
    delta = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    eps = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    theta = p1 - p2
    return max(-1.0, theta - delta), min(1.0, theta + eps)


def paired_accuracy(pairs: Sequence[tuple[Sequence[bool], Sequence[bool]]],
                    confidence: float = 0.95) -> PairedAccuracy:
    """Reference vs candidate over one or more pairs of runs, each pair on the same samples.

    One pair: the paired table, Newcombe's interval and the exact McNemar test. Several
    (training seeds): the tables are pooled for the counts and the test, and the interval is
    the wider of the pooled Newcombe interval and a t-interval over the per-pair accuracy
    differences: the pooled table alone treats the seeds' repeated samples as independent and
    misses run-to-run training variance, which the t-interval carries; the t-interval alone
    collapses when the few seeds happen to agree."""
    if not pairs:
        raise ValueError("paired_accuracy needs at least one pair of runs")
    tables = []
    for reference, candidate in pairs:
        ref, cand = _check_pair(reference, candidate)
        tables.append((int(np.sum(ref & cand)), int(np.sum(ref & ~cand)),
                       int(np.sum(~ref & cand)), int(np.sum(~ref & ~cand))))
    a, b, c, d = (sum(t[i] for t in tables) for i in range(4))
    n = a + b + c + d
    low, high = newcombe_paired_ci(a, b, c, d, confidence)
    diffs = tuple((t[1] - t[2]) / sum(t) for t in tables)
    method = "Newcombe hybrid score interval on the paired table"
    if len(tables) > 1:
        mean, sd = float(np.mean(diffs)), float(np.std(diffs, ddof=1))
        half = _sps().t.ppf((1 + confidence) / 2, len(diffs) - 1) * sd / math.sqrt(len(diffs))
        low, high = min(low, mean - half), max(high, mean + half)
        method = (f"wider of Newcombe on the {len(tables)} pooled paired tables and a t-interval "
                  f"over the {len(tables)} per-run differences")
    return PairedAccuracy(n, (a + b) / n, (a + c) / n, b, c, low, high, mcnemar_exact(b, c),
                          mcnemar_exact(b, c, "greater"), mcnemar_exact(c, b, "greater"),
                          method, len(tables), diffs)
