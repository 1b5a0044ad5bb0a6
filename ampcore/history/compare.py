"""Verdicts: is a candidate run worse than its baseline, metric by metric, and by how much."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

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
TESTED = "Mann-Whitney U on rounds + threshold"
THRESHOLD_ONLY = "THRESHOLD ONLY on stored medians (no raw rounds)"


@dataclass(frozen=True)
class MetricVerdict:
    metric: str
    status: str
    method: str
    baseline: float | None = None
    candidate: float | None = None
    change: float | None = None  # relative for time/speedup/memory, absolute otherwise
    threshold: float | None = None
    p_value: float | None = None
    ci: tuple[float, float] | None = None  # see ``describe`` in the output module
    note: str = ""


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

def _direction(change: float, threshold: float, significant: bool, worse_when_positive: bool) -> str:
    worse = change > threshold if worse_when_positive else change < -threshold
    better = change < -threshold if worse_when_positive else change > threshold
    if significant and worse:
        return REGRESSION
    if significant and better:
        return IMPROVEMENT
    return OK


def time_verdict(baseline: Sequence[Benchmark], candidate: Benchmark, thresholds: Thresholds,
                 time_ci: bool = True) -> MetricVerdict:
    """Slower only when Mann-Whitney U on the raw rounds is significant at ``alpha`` AND the
    median grew by more than ``time``; threshold only when a run saved no rounds."""
    base_rounds = [b.rounds for b in baseline]
    if candidate.rounds is not None and all(r is not None for r in base_rounds):
        pooled = np.concatenate([np.asarray(r) for r in base_rounds])
        base_median = float(np.median(pooled))
        cand_median = stats.median(candidate.rounds)
        change = stats.relative_change(base_median, cand_median)
        p_value = stats.mann_whitney(pooled, candidate.rounds)
        ci = None
        if time_ci:  # for the reader only: the decision rests on the test and the threshold
            # CI of candidate/baseline median time: invert the speedup interval.
            _, low, high = stats.bootstrap_speedup_ci(pooled, candidate.rounds)
            ci = (1 / high, 1 / low) if high > 0 and low > 0 else None
        status = _direction(change, thresholds.time, p_value < thresholds.alpha, True)
        return MetricVerdict("time", status, TESTED, base_median, cand_median, change,
                             thresholds.time, p_value, ci,
                             note=f"n={len(pooled)} vs {len(candidate.rounds)} rounds, "
                             f"alpha={thresholds.alpha:g}")
    base_median = float(np.median([b.median for b in baseline]))
    change = stats.relative_change(base_median, candidate.median)
    status = _direction(change, thresholds.time, True, True)
    return MetricVerdict("time", status, THRESHOLD_ONLY, base_median, candidate.median, change,
                         thresholds.time, note="no significance test: a run saved no stats.data")


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
    """A drop of the within-run AMP speedup by more than ``speedup`` (relative); when the
    candidate has rounds, the drop must also be outside its bootstrap interval."""
    cand = run_speedup(candidate_run, candidate_run.benchmarks[key])
    base = [s for run in baseline_runs if key in run.benchmarks
            for s in [run_speedup(run, run.benchmarks[key])] if s is not None]
    if cand is None or not base:
        missing = "candidate" if cand is None else "baseline"
        return MetricVerdict("speedup", NOT_AVAILABLE, "", note=f"no fp32 run of this workload "
                             f"nor speedup_vs_fp32 in the {missing}")
    base_value = float(np.median([s.value for s in base]))
    change = stats.relative_change(base_value, cand.value)
    ci = None
    if cand.source == "rounds":
        _, low, high = stats.bootstrap_speedup_ci(cand.fp32_rounds, cand.amp_rounds)
        ci = (low, high) if math.isfinite(low) and math.isfinite(high) else None
    if ci is not None:
        significant_drop = ci[1] < base_value
        significant_gain = ci[0] > base_value
        method = "bootstrap CI of the candidate's speedup + threshold"
    else:
        significant_drop = significant_gain = True
        method = f"THRESHOLD ONLY (speedup from {cand.source})"
    if change < -thresholds.speedup and significant_drop:
        status = REGRESSION
    elif change > thresholds.speedup and significant_gain:
        status = IMPROVEMENT
    else:
        status = OK
    return MetricVerdict("speedup", status, method, base_value, cand.value, change,
                         thresholds.speedup, ci=ci,
                         note=f"within-run median(fp32)/median(amp); baseline: median of "
                         f"{len(base)} run(s)")


def _extra_values(baseline: Sequence[Benchmark], candidate: Benchmark,
                  name: str) -> tuple[list[float], float | None]:
    return ([v for b in baseline if (v := stats_number(b.extra(name))) is not None],
            stats_number(candidate.extra(name)))


def accuracy_verdict(baseline: Sequence[Benchmark], candidate: Benchmark,
                     thresholds: Thresholds) -> MetricVerdict:
    if any(b.extra("accuracy_meaningful") is False for b in [*baseline, candidate]):
        return MetricVerdict("accuracy", NOT_AVAILABLE, "",
                             note="accuracy_meaningful is false (e.g. random initial weights)")
    base, cand = _extra_values(baseline, candidate, "final_accuracy")
    if cand is None or not base:
        return MetricVerdict("accuracy", NOT_AVAILABLE, "",
                             note="extra_info['final_accuracy'] missing")
    base_value = float(np.median(base))
    change = cand - base_value
    status = _direction(change, thresholds.accuracy, True, False)
    return MetricVerdict("accuracy", status, "absolute tolerance", base_value, cand, change,
                         thresholds.accuracy)


def memory_verdict(baseline: Sequence[Benchmark], candidate: Benchmark,
                   thresholds: Thresholds) -> MetricVerdict:
    base, cand = _extra_values(baseline, candidate, "peak_memory_bytes")
    if cand is None or not base:
        return MetricVerdict("memory", NOT_AVAILABLE, "", note="peak_memory_bytes not recorded "
                             "(None on a CPU)")
    base_value = float(np.median(base))
    change = stats.relative_change(base_value, cand)
    status = _direction(change, thresholds.memory, True, True)
    return MetricVerdict("memory", status, "relative threshold", base_value, cand, change,
                         thresholds.memory)


def skipped_steps_verdict(baseline: Sequence[Benchmark], candidate: Benchmark,
                          thresholds: Thresholds) -> MetricVerdict:
    base, cand = _extra_values(baseline, candidate, "skipped_steps")
    if cand is None or not base:
        return MetricVerdict("skipped_steps", NOT_AVAILABLE, "",
                             note="extra_info['skipped_steps'] missing")
    base_value = float(np.median(base))
    change = cand - base_value
    status = _direction(change, thresholds.skipped_steps, True, True)
    return MetricVerdict("skipped_steps", status, "absolute threshold", base_value, cand, change,
                         thresholds.skipped_steps)


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


def compare_runs(baseline_runs: Sequence[Run], candidate_run: Run, config: GateConfig,
                 time_ci: bool = True) -> list[BenchmarkVerdict]:
    """A verdict for every benchmark the candidate shares with at least one baseline run."""
    shared = [k for k in candidate_run.benchmarks if any(k in r.benchmarks for r in baseline_runs)]
    return [compare_benchmark(baseline_runs, candidate_run, k, config, time_ci) for k in shared]


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

