"""Verdicts: is a candidate run worse than its baseline, metric by metric, and by how much."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from ampcore import stats
from ampcore.history import environment
from ampcore.history.config import GateConfig, Thresholds
from ampcore.history.storage import Benchmark, Problem, Run

REGRESSION = "regression"
IMPROVEMENT = "improvement"
OK = "ok"
NOT_AVAILABLE = "n/a"

# Method labels: the report says how each verdict was reached.
TESTED = "one-sided Mann-Whitney U on rounds + threshold"
THRESHOLD_ONLY = "THRESHOLD ONLY on stored medians (no raw rounds)"


@dataclass(frozen=True)
class MetricVerdict:
    metric: str
    status: str
    method: str
    baseline: float | None = None
    candidate: float | None = None
    change: float | None = None  # a fraction for RELATIVE metrics, a difference otherwise
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
        return self.p_worse if _worse_side(self.metric, self.change or 0.0) else self.p_better


@dataclass(frozen=True)
class BenchmarkVerdict:
    key: str
    name: str
    metrics: tuple[MetricVerdict, ...]
    thresholds: Thresholds

    @property
    def status(self) -> str:
        statuses = {m.status for m in self.metrics}
        for status in (REGRESSION, IMPROVEMENT, OK):
            if status in statuses:
                return status
        return NOT_AVAILABLE


@dataclass(frozen=True)
class Comparison:
    baseline: tuple[Run, ...]
    candidate: Run
    verdicts: tuple[BenchmarkVerdict, ...]
    only_in_baseline: tuple[str, ...] = ()
    only_in_candidate: tuple[str, ...] = ()
    env_differences: tuple[str, ...] = ()
    env_mismatch_allowed: bool = False
    problems: tuple[Problem, ...] = ()
    notes: tuple[str, ...] = ()
    config_source: str | None = None

    @property
    def regressions(self) -> list[BenchmarkVerdict]:
        return [v for v in self.verdicts if v.status == REGRESSION]

    @property
    def exit_status(self) -> int:
        return 1 if self.regressions else 0


# --- choosing what to compare ----------------------------------------------------------------

def choose_baseline(earlier: Sequence[Run], candidate: Run, last: int = 1) -> tuple[list[Run], list[str]]:
    """The last ``last`` runs before the candidate, preferring runs measured on the candidate's
    environment (so one storage can hold several runners); if none matches, the plain last
    runs, which the environment check will then refuse."""
    matching = [r for r in earlier if environment.same_environment(r, candidate)]
    chosen = (matching or list(earlier))[-last:]
    notes = []
    skipped = [r for r in earlier if r not in matching and r.sort_key() > chosen[0].sort_key()] \
        if matching and chosen else []
    if skipped:
        notes.append(f"skipped {len(skipped)} more recent run(s) measured on another environment: "
                     + ", ".join(r.path.name for r in skipped))
    return chosen, notes


def environment_differences(baseline: Sequence[Run], candidate: Run) -> list[str]:
    found: list[str] = []
    for run in baseline:
        shared = [k for k in candidate.benchmarks if k in run.benchmarks]
        for difference in environment.differences(run, candidate, shared):
            if difference not in found:
                found.append(difference)
    return found


# --- per-metric verdicts ---------------------------------------------------------------------

HIGHER_IS_WORSE = {"time": True, "memory": True, "skipped_steps": True, "speedup": False,
                   "accuracy": False}
# Metrics whose change and threshold are fractions of the baseline; the others are differences.
RELATIVE = frozenset({"time", "speedup", "memory"})


def _worse_side(metric: str, change: float) -> bool:
    return change > 0 if HIGHER_IS_WORSE[metric] else change < 0


def decide(metric: str, change: float, threshold: float, worse_significant: bool = True,
           better_significant: bool = True) -> str:
    """Regression: worse by more than ``threshold`` and (when tested) significant."""
    sign = 1 if HIGHER_IS_WORSE[metric] else -1
    if sign * change > threshold and worse_significant:
        return REGRESSION
    if -sign * change > threshold and better_significant:
        return IMPROVEMENT
    return OK


def time_verdict(baseline: Sequence[Benchmark], candidate: Benchmark, thresholds: Thresholds,
                 time_ci: bool = True) -> MetricVerdict:
    """Slower only when a one-sided Mann-Whitney U test on the raw rounds is significant at
    ``alpha`` (after adjustment over the gate's tests, see ``compare_runs``) AND the median grew
    by more than ``time``; threshold only when a run saved no rounds."""
    base_rounds = [b.rounds for b in baseline]
    if candidate.rounds is not None and all(r is not None for r in base_rounds):
        pooled = np.concatenate([np.asarray(r) for r in base_rounds])
        base_median = float(np.median(pooled))
        cand_median = stats.median(candidate.rounds)
        change = stats.relative_change(base_median, cand_median)
        # "less": baseline rounds tend to be shorter, i.e. the candidate is slower
        p_worse = stats.mann_whitney(pooled, candidate.rounds, alternative="less")
        p_better = stats.mann_whitney(pooled, candidate.rounds, alternative="greater")
        ci = None
        if time_ci:  # for the reader only: the decision rests on the test and the threshold
            # CI of candidate/baseline median time: invert the speedup interval.
            _, low, high = stats.bootstrap_speedup_ci(pooled, candidate.rounds)
            ci = (1 / high, 1 / low) if high > 0 and low > 0 else None  # NaN compares False
        status = decide("time", change, thresholds.time, p_worse < thresholds.alpha,
                        p_better < thresholds.alpha)
        return MetricVerdict("time", status, TESTED, base_median, cand_median, change,
                             thresholds.time, p_worse, p_better, ci=ci,
                             ci_level=0.95 if ci else None,
                             note=f"n={len(pooled)} vs {len(candidate.rounds)} rounds",
                             in_family=True)
    base_median = float(np.median([b.median for b in baseline]))
    change = stats.relative_change(base_median, candidate.median)
    return MetricVerdict("time", decide("time", change, thresholds.time), THRESHOLD_ONLY,
                         base_median, candidate.median, change, thresholds.time,
                         note="no significance test: a run saved no stats.data")


@dataclass(frozen=True)
class RunSpeedup:
    value: float
    source: str  # "rounds", "extra_info" or "stored medians"
    fp32_rounds: tuple[float, ...] | None = None
    amp_rounds: tuple[float, ...] | None = None


def fp32_counterpart(run: Run, bench: Benchmark) -> Benchmark | None:
    """The fp32 benchmark of the same workload in the same run."""
    key = bench.counterpart_key("fp32")
    if key is not None and key in run.benchmarks:
        return run.benchmarks[key]
    matches = [b for b in run.benchmarks.values()
               if b.precision == "fp32" and b.workload == bench.workload and bench.workload
               and b.key.split("[")[0] == bench.key.split("[")[0]]
    return matches[0] if len(matches) == 1 else None


def run_speedup(run: Run, bench: Benchmark) -> RunSpeedup | None:
    """AMP speedup over fp32 measured within ``run``: median(fp32 rounds)/median(rounds)."""
    if bench.precision in (None, "fp32"):
        return None
    fp32 = fp32_counterpart(run, bench)
    if fp32 is not None and fp32.rounds is not None and bench.rounds is not None:
        value = stats.median(fp32.rounds) / stats.median(bench.rounds)
        return RunSpeedup(value, "rounds", fp32.rounds, bench.rounds)
    stored = stats_number(bench.extra("speedup_vs_fp32"))
    if stored is not None:
        return RunSpeedup(stored, "extra_info")
    if fp32 is not None:
        return RunSpeedup(fp32.median / bench.median, "stored medians")
    return None


def stats_number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)


def speedup_verdict(baseline_runs: Sequence[Run], candidate_run: Run, key: str,
                    thresholds: Thresholds) -> MetricVerdict:
    """A drop of the within-run AMP speedup by more than ``speedup`` (relative). When every run
    has rounds, the drop must also be significant: a bootstrap over all four samples of
    candidate speedup / baseline speedup gives the one-sided p-values."""
    cand = run_speedup(candidate_run, candidate_run.benchmarks[key])
    base = [s for run in baseline_runs if key in run.benchmarks
            for s in [run_speedup(run, run.benchmarks[key])] if s is not None]
    if cand is None or not base:
        missing = "candidate" if cand is None else "baseline"
        return MetricVerdict("speedup", NOT_AVAILABLE, "", note=f"no fp32 run of this workload "
                             f"nor speedup_vs_fp32 in the {missing}")
    note = f"within-run median(fp32)/median(amp); baseline: {len(base)} run(s)"
    if cand.source == "rounds" and all(s.source == "rounds" for s in base):
        base_fp32 = np.concatenate([s.fp32_rounds for s in base])
        base_amp = np.concatenate([s.amp_rounds for s in base])
        base_value = stats.median(base_fp32) / stats.median(base_amp)
        change = stats.relative_change(base_value, cand.value)
        method = "bootstrap test of the speedup change + threshold"
        if abs(change) <= thresholds.speedup:
            # Within the threshold the verdict is "ok" whatever the test says: skip the
            # bootstrap (the costly part of a gate); ``adjust`` counts it as p = 1.
            return MetricVerdict("speedup", OK, method, base_value, cand.value, change,
                                 thresholds.speedup, note=note + "; within threshold, not tested",
                                 in_family=True)
        result = stats.bootstrap_speedup_change(base_fp32, base_amp, cand.fp32_rounds,
                                                cand.amp_rounds, confidence=1 - thresholds.alpha)
        if math.isfinite(result.p_drop):
            status = decide("speedup", change, thresholds.speedup,
                            result.p_drop < thresholds.alpha, result.p_gain < thresholds.alpha)
            return MetricVerdict("speedup", status, method, base_value, cand.value, change,
                                 thresholds.speedup, result.p_drop, result.p_gain,
                                 ci=(result.low, result.high), ci_level=1 - thresholds.alpha,
                                 note=note, in_family=True)
    base_value = float(np.median([s.value for s in base]))
    change = stats.relative_change(base_value, cand.value)
    source = cand.source if cand.source != "rounds" else "too few rounds"
    return MetricVerdict("speedup", decide("speedup", change, thresholds.speedup),
                         f"THRESHOLD ONLY (speedup from {source})", base_value, cand.value,
                         change, thresholds.speedup, note=note)


def _extra_values(baseline: Sequence[Benchmark], candidate: Benchmark,
                  name: str) -> tuple[list[float], float | None]:
    return ([v for b in baseline if (v := stats_number(b.extra(name))) is not None],
            stats_number(candidate.extra(name)))


def accuracy_verdict(baseline: Sequence[Benchmark], candidate: Benchmark,
                     thresholds: Thresholds) -> MetricVerdict:
    if any(b.extra("accuracy_meaningful") is False for b in [*baseline, candidate]):
        return MetricVerdict("accuracy", NOT_AVAILABLE, "",
                             note="accuracy_meaningful is false (e.g. random initial weights)")
    return _threshold_verdict("accuracy", "final_accuracy", baseline, candidate,
                              thresholds.accuracy, method="absolute tolerance")


def memory_verdict(baseline: Sequence[Benchmark], candidate: Benchmark,
                   thresholds: Thresholds) -> MetricVerdict:
    return _threshold_verdict("memory", "peak_memory_bytes", baseline, candidate,
                              thresholds.memory, method="relative threshold",
                              missing="peak_memory_bytes not recorded (None on a CPU)")


def skipped_steps_verdict(baseline: Sequence[Benchmark], candidate: Benchmark,
                          thresholds: Thresholds) -> MetricVerdict:
    return _threshold_verdict("skipped_steps", "skipped_steps", baseline, candidate,
                              thresholds.skipped_steps, method="absolute threshold")


def _threshold_verdict(metric: str, key: str, baseline: Sequence[Benchmark],
                       candidate: Benchmark, threshold: float, method: str,
                       missing: str | None = None) -> MetricVerdict:
    """A metric from ``extra_info`` against the baseline median: an absolute or relative
    change compared with the metric's threshold."""
    base, cand = _extra_values(baseline, candidate, key)
    if cand is None or not base:
        return MetricVerdict(metric, NOT_AVAILABLE, "", note=missing or f"extra_info['{key}'] missing")
    base_value = float(np.median(base))
    change = stats.relative_change(base_value, cand) if metric in RELATIVE else cand - base_value
    return MetricVerdict(metric, decide(metric, change, threshold), method, base_value, cand,
                         change, threshold)


# --- a whole comparison ----------------------------------------------------------------------

def compare_benchmark(baseline_runs: Sequence[Run], candidate_run: Run, key: str,
                      config: GateConfig, time_ci: bool = True) -> BenchmarkVerdict:
    candidate = candidate_run.benchmarks[key]
    baseline = [run.benchmarks[key] for run in baseline_runs if key in run.benchmarks]
    thresholds = config.for_benchmark(key, candidate.name)
    metrics = [time_verdict(baseline, candidate, thresholds, time_ci)]
    if candidate.precision != "fp32":  # fp32 is the reference a speedup is measured against
        metrics.append(speedup_verdict(baseline_runs, candidate_run, key, thresholds))
    metrics += [accuracy_verdict(baseline, candidate, thresholds),
                memory_verdict(baseline, candidate, thresholds),
                skipped_steps_verdict(baseline, candidate, thresholds)]
    return BenchmarkVerdict(key, candidate.name, tuple(metrics), thresholds)


def adjust(verdicts: Sequence[BenchmarkVerdict]) -> list[BenchmarkVerdict]:
    """Decide the tested metrics on Benjamini-Hochberg adjusted p-values over all the gate's
    tests of one direction: with many benchmarks, some A/A pair would otherwise reach alpha by
    chance (measured in docs/HISTORY.md). A test skipped because its change was within the
    threshold counts as p = 1, which can only make the others' adjusted p-values larger."""
    family = [(i, j) for i, v in enumerate(verdicts) for j, m in enumerate(v.metrics)
              if m.in_family]
    def p_values(attribute: str) -> list[float]:
        values = [getattr(verdicts[i].metrics[j], attribute) for i, j in family]
        return stats.adjust_p_values([1.0 if p is None else p for p in values])
    metrics = [list(v.metrics) for v in verdicts]
    for (i, j), qw, qb in zip(family, p_values("p_worse"), p_values("p_better")):
        m, alpha = metrics[i][j], verdicts[i].thresholds.alpha
        if not m.tested:
            continue
        status = decide(m.metric, m.change, m.threshold, qw < alpha, qb < alpha)
        metrics[i][j] = replace(m, status=status,
                                q_value=qw if _worse_side(m.metric, m.change) else qb)
    return [replace(v, metrics=tuple(ms)) for v, ms in zip(verdicts, metrics)]


def compare_runs(baseline_runs: Sequence[Run], candidate_run: Run, config: GateConfig,
                 time_ci: bool = True) -> list[BenchmarkVerdict]:
    """A verdict for every benchmark the candidate shares with at least one baseline run."""
    shared = [k for k in candidate_run.benchmarks if any(k in r.benchmarks for r in baseline_runs)]
    return adjust([compare_benchmark(baseline_runs, candidate_run, k, config, time_ci)
                   for k in shared])


def compare(baseline_runs: Sequence[Run], candidate_run: Run, config: GateConfig,
            allow_env_mismatch: bool = False, problems: Sequence[Problem] = (),
            notes: Sequence[str] = (), time_ci: bool = True) -> Comparison:
    """Everything ``ampcore compare`` reports. With differing environments and no permission,
    the comparison carries the differences and no verdicts."""
    differences = environment_differences(baseline_runs, candidate_run)
    in_baseline = {k for r in baseline_runs for k in r.benchmarks}
    only_baseline = tuple(sorted(in_baseline - set(candidate_run.benchmarks)))
    only_candidate = tuple(k for k in candidate_run.benchmarks if k not in in_baseline)
    verdicts: list[BenchmarkVerdict] = []
    if not differences or allow_env_mismatch:
        verdicts = compare_runs(baseline_runs, candidate_run, config, time_ci)
    return Comparison(tuple(baseline_runs), candidate_run, tuple(verdicts), only_baseline,
                      only_candidate, tuple(differences), allow_env_mismatch, tuple(problems),
                      tuple(notes), str(config.source) if config.source else None)

