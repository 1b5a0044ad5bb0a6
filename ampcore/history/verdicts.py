"""Per-metric verdicts: is one metric of a candidate benchmark worse than its baseline, and by
how much. Time and speedup are measured from the raw rounds; every other ``METRICS`` row reads
its record field."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from ampcore.measure import kernels, stats
from ampcore.history.config import Thresholds
from ampcore.history.noise import RunStability
from ampcore.history.speedup import FROM_ROUNDS, run_speedup
from ampcore.history.storage import Benchmark, Run
from ampcore.judge import accuracy
from ampcore.judge.metrics import DEFAULT_ALPHA, Metric, describe_changes, get_metric
from ampcore.core.registry import REFERENCE_PRECISION

REGRESSION = "regression"
IMPROVEMENT = "improvement"
OK = "ok"
NOT_AVAILABLE = "n/a"
# A time-like verdict of a benchmark whose baseline or candidate timing was unstable (round CV
# or probe spread above its limit, ``ampcore.judge.stability``): neither a regression nor an
# improvement can be told from the noise. ``compare`` replaces the verdict with it.
UNSTABLE = "unstable"
TIME_LIKE = ("time", "host_time", "eager_time", "speedup")

# How a verdict was reached when the row's own test could not run.
THRESHOLD_ONLY = "THRESHOLD ONLY on stored medians (no raw rounds)"
PAIRED_FALLBACK = "THRESHOLD ONLY on the test accuracy (no paired held-out predictions)"
THRESHOLD_RULE = (f"judged by the absolute threshold on the final test accuracy instead (the "
                  f"larger of the margin and {accuracy.UNPAIRED_THRESHOLD:g}: no paired test)")


@dataclass(frozen=True)
class MetricVerdict:
    metric: str
    status: str
    method: str
    baseline: float | None = None
    candidate: float | None = None
    change: float | None = None  # a fraction for relative metrics, a difference otherwise
    threshold: float | None = None
    p_worse: float | None = None  # one-sided p-value that the metric got worse
    p_better: float | None = None  # one-sided p-value that it got better
    q_value: float | None = None  # the p-value of the observed direction, FDR-adjusted
    ci: tuple[float, float] | None = None  # interval of the candidate/baseline ratio
    ci_level: float | None = None
    note: str = ""
    in_family: bool = False  # one of the gate's significance tests (see ``adjust``)

    @property
    def tested(self) -> bool:
        return self.p_worse is not None and self.p_better is not None

    @property
    def p_value(self) -> float | None:
        """The raw one-sided p-value in the direction the metric moved."""
        if not self.tested:
            return None
        worse = get_metric(self.metric).is_worse(self.change or 0.0)
        return self.p_worse if worse else self.p_better


# --- per-metric verdicts ---------------------------------------------------------------------

def decide(metric: Metric, change: float, threshold: float, worse_significant: bool = True,
           better_significant: bool = True) -> str:
    """Regression: worse by more than ``threshold`` and (when tested) significant."""
    if not abs(change) > threshold:  # NaN: no verdict either way
        return OK
    if metric.is_worse(change):
        return REGRESSION if worse_significant else OK
    return IMPROVEMENT if better_significant else OK


def time_verdict(metric: Metric, baseline: Sequence[Benchmark], candidate: Benchmark,
                 thresholds: Thresholds, time_ci: bool = True) -> MetricVerdict:
    """Slower only when a one-sided Mann-Whitney U test on the raw rounds is significant at
    ``alpha`` (after adjustment over the gate's tests, see ``adjust``) AND the median grew
    by more than the threshold; threshold only when a run saved no rounds."""
    threshold = thresholds[metric.name]
    base_rounds = [b.rounds for b in baseline]
    if candidate.rounds is None or any(r is None for r in base_rounds):
        base_median = float(np.median([b.median for b in baseline]))
        change = metric.change(base_median, candidate.median)
        return MetricVerdict(metric.name, decide(metric, change, threshold), THRESHOLD_ONLY,
                             base_median, candidate.median, change, threshold,
                             note="no significance test: a run saved no stats.data")
    pooled = np.concatenate([np.asarray(r) for r in base_rounds])
    base_median, cand_median = float(np.median(pooled)), stats.median(candidate.rounds)
    change = metric.change(base_median, cand_median)
    # "less": baseline rounds tend to be shorter, i.e. the candidate is slower
    p_worse = stats.mann_whitney(pooled, candidate.rounds, alternative="less")
    p_better = stats.mann_whitney(pooled, candidate.rounds, alternative="greater")
    ci = None
    if time_ci:  # for the reader only: the decision rests on the test and the threshold
        # CI of candidate/baseline median time: invert the speedup interval.
        _, low, high = stats.bootstrap_speedup_ci(pooled, candidate.rounds)
        ci = (1 / high, 1 / low) if high > 0 and low > 0 else None  # NaN compares False
    status = decide(metric, change, threshold, p_worse < thresholds.alpha,
                    p_better < thresholds.alpha)
    note = f"n={len(pooled)} vs {len(candidate.rounds)} rounds"
    if metric.is_worse(change) and abs(change) >= threshold / 2:  # where the time went
        note += _kernel_note(baseline, candidate)
    return MetricVerdict(metric.name, status, metric.test, base_median, cand_median, change,
                         threshold, p_worse, p_better, ci=ci, ci_level=0.95 if ci else None,
                         note=note, in_family=True)


def mark_unstable(metrics: Sequence[MetricVerdict], stability: Sequence[RunStability],
                  reference: Sequence[RunStability] = ()) -> tuple[MetricVerdict, ...]:
    """With an unstable run on either side, every judged time-like verdict (``TIME_LIKE``)
    becomes ``UNSTABLE``, its note naming the run, its CV and limit, and what it would have
    been; the other metrics (accuracy, memory, counters) stand. The speedup is also marked
    when an fp32 run it is taken over (``reference``) was unstable."""
    own = [s for s in stability if s.stability.unstable]
    partner = [s for s in reference if s.stability.unstable]

    def marked(m: MetricVerdict) -> MetricVerdict:
        runs = own + partner if m.metric == "speedup" else own
        if not runs or m.metric not in TIME_LIKE or m.status == NOT_AVAILABLE:
            return m
        why = "; ".join(f"{s.side} {s.stability.describe()}" for s in runs)
        return replace(m, status=UNSTABLE, note=f"unstable: {why}; would be {m.status}"
                       + (f"; {m.note}" if m.note else ""))

    return tuple(marked(m) for m in metrics)


def _kernel_note(baseline: Sequence[Benchmark], candidate: Benchmark) -> str:
    """The kernels whose time per step moved most (``ampcore.measure.kernels``), when both
    sides recorded kernel times."""
    base = [b.record.kernel_time_per_step for b in baseline if b.record is not None]
    if candidate.record is None or not base:
        return ""
    lines = kernels.changes(base, candidate.record.kernel_time_per_step)
    return "; kernels: " + "; ".join(lines) if lines else ""


def speedup_change_verdict(metric: Metric, baseline_runs: Sequence[Run], candidate_run: Run,
                           key: str, thresholds: Thresholds) -> MetricVerdict:
    """A drop of the within-run speedup by more than the threshold (relative). When every
    run has rounds, the drop must also be significant: a bootstrap over all four samples of
    candidate speedup / baseline speedup gives the one-sided p-values."""
    threshold = thresholds[metric.name]
    cand = run_speedup(candidate_run, candidate_run.benchmarks[key])
    base = [s for run in baseline_runs if key in run.benchmarks
            for s in [run_speedup(run, run.benchmarks[key])] if s is not None]
    if cand is None or not base:
        missing = "candidate" if cand is None else "baseline"
        return MetricVerdict(metric.name, NOT_AVAILABLE, "", note=f"no {REFERENCE_PRECISION} "
                             f"run of this workload nor speedup_vs_fp32 in the {missing}")
    note = f"within-run median(fp32)/median(amp); baseline: {len(base)} run(s)"
    if cand.source == FROM_ROUNDS and all(s.source == FROM_ROUNDS for s in base):
        base_fp32 = np.concatenate([s.fp32_rounds for s in base])
        base_amp = np.concatenate([s.amp_rounds for s in base])
        base_value = stats.median(base_fp32) / stats.median(base_amp)
        change = metric.change(base_value, cand.value)
        if not abs(change) > threshold:
            # Within the threshold the verdict is "ok" whatever the test says: skip the
            # bootstrap (the costly part of a gate); ``adjust`` counts it as p = 1.
            return MetricVerdict(metric.name, OK, metric.test, base_value, cand.value, change,
                                 threshold, note=note + "; within threshold, not tested",
                                 in_family=True)
        result = stats.bootstrap_speedup_change(base_fp32, base_amp, cand.fp32_rounds,
                                                cand.amp_rounds, confidence=1 - thresholds.alpha)
        if math.isfinite(result.p_drop):
            status = decide(metric, change, threshold, result.p_drop < thresholds.alpha,
                            result.p_gain < thresholds.alpha)
            return MetricVerdict(metric.name, status, metric.test, base_value, cand.value,
                                 change, threshold, result.p_drop, result.p_gain,
                                 ci=(result.low, result.high), ci_level=1 - thresholds.alpha,
                                 note=note, in_family=True)
    base_value = float(np.median([s.value for s in base]))
    change = metric.change(base_value, cand.value)
    source = cand.source if cand.source != FROM_ROUNDS else "too few rounds"
    return MetricVerdict(metric.name, decide(metric, change, threshold),
                         f"THRESHOLD ONLY (speedup from {source})", base_value, cand.value,
                         change, threshold, note=note)


def field_verdict(metric: Metric, baseline: Sequence[Benchmark], candidate: Benchmark,
                  threshold: float, alpha: float = DEFAULT_ALPHA) -> MetricVerdict:
    """A record field against the baseline median: the row's absolute or relative change
    compared with its threshold; a paired row (accuracy) by the accuracy judge where the
    runs saved per-sample correctness of one held-out set."""
    records = [b.record for b in baseline if b.record is not None]
    if metric.requires and any(getattr(r, metric.requires) is False
                               for r in [*records, candidate.record] if r is not None):
        return MetricVerdict(metric.name, NOT_AVAILABLE, "", note=f"{metric.requires} is "
                             f"false: the {metric.label} means nothing here")
    fallback = ""
    if metric.paired:
        verdict, fallback = _paired_verdict(metric, records, candidate.record, threshold, alpha)
        if verdict is not None:
            return verdict
    base = [v for r in records if (v := metric.value(r)) is not None]
    value = metric.value(candidate.record)
    if value is None or not base:
        missing = "candidate" if value is None else "baseline"
        return MetricVerdict(metric.name, NOT_AVAILABLE, "",
                             note=f"{metric.field} not recorded in the {missing}")
    if metric.samples:  # judged on the per-step samples, not on the recorded medians
        return _samples_verdict(metric, records, candidate.record, threshold, alpha)
    base_value = float(np.median(base))
    change = metric.change(base_value, value)
    note = _counter_note(records, candidate.record) if metric.counter and change else ""
    if fallback:
        limit = accuracy.unpaired_threshold(threshold)
        return MetricVerdict(metric.name, decide(metric, change, limit), PAIRED_FALLBACK,
                             base_value, value, change, limit, note=fallback)
    return MetricVerdict(metric.name, decide(metric, change, threshold), metric.test,
                         base_value, value, change, threshold, note=note)


def _heldout(record, field: str):
    """A record's held-out correctness and the set it is of, or None (not saved, malformed)."""
    if record is None or not getattr(record, field) or not record.heldout_samples:
        return None
    try:
        return stats.unpack_correct(getattr(record, field), record.heldout_samples)
    except ValueError:
        return None


def _paired_verdict(metric: Metric, records: Sequence, candidate, threshold: float,
                    alpha: float) -> tuple[MetricVerdict | None, str]:
    """The accuracy judge on the held-out set (``judge.accuracy.judge_against_each``): the
    candidate paired with each baseline run of the same set, a regression when the drop is
    significant at ``alpha`` and larger than the margin (``threshold``, raised by the
    baseline runs' spread) against every one. (None, why) when the runs cannot be paired."""
    cand = _heldout(candidate, metric.paired)
    if cand is None:
        return None, f"the candidate saved no held-out predictions; {THRESHOLD_RULE}"
    same = [(r, bits) for r in records if (bits := _heldout(r, metric.paired)) is not None
            and r.heldout_source == candidate.heldout_source and len(bits) == len(cand)]
    if not same:
        return None, (f"no baseline run saved held-out predictions of the candidate's set "
                      f"({candidate.heldout_source}); {THRESHOLD_RULE}")
    judged = accuracy.judge_against_each([bits for _, bits in same], cand, threshold, alpha)
    paired = judged.paired
    status = REGRESSION if judged.worse else IMPROVEMENT if judged.better else OK
    note = (f"{len(cand)} held-out samples, {len(same)} baseline run(s): "
            f"{judged.describe('baseline', 'candidate')}")
    # change and interval as candidate - baseline, the row's convention
    return MetricVerdict(metric.name, status, metric.test, paired.reference_accuracy,
                         paired.candidate_accuracy, -paired.difference, judged.margin,
                         paired.p_worse, paired.p_better, ci=(-paired.high, -paired.low),
                         ci_level=judged.confidence, note=note), ""


def _samples_verdict(metric: Metric, records: Sequence, candidate, threshold: float,
                     alpha: float) -> MetricVerdict:
    """Per-step samples: worse only when a one-sided Mann-Whitney U test is significant (in
    the gate's adjusted family) and the median moved by more than the threshold."""
    pooled = [x for r in records for x in metric.samples_of(r)]
    cand = metric.samples_of(candidate)
    base_value, value = float(np.median(pooled)), float(np.median(cand))
    change = metric.change(base_value, value)
    if len(pooled) < 2 or len(cand) < 2:
        return MetricVerdict(metric.name, decide(metric, change, threshold), THRESHOLD_ONLY,
                             base_value, value, change, threshold, note="too few samples")
    p_worse = stats.mann_whitney(pooled, cand, alternative="less")
    p_better = stats.mann_whitney(pooled, cand, alternative="greater")
    status = decide(metric, change, threshold, p_worse < alpha, p_better < alpha)
    return MetricVerdict(metric.name, status, metric.test, base_value, value, change, threshold,
                         p_worse, p_better, note=f"n={len(pooled)} vs {len(cand)} steps",
                         in_family=True)


def _counter_note(records: Sequence, candidate) -> str:
    """Which operators' counts changed most, e.g. "+24 aten._to_copy per step"."""
    base = next((r.ops_per_step for r in reversed(records) if r.ops_per_step), None)
    if not base or candidate is None or not candidate.ops_per_step:
        return ""
    text = describe_changes(base, candidate.ops_per_step)
    return f"{text} per step" if text else ""
