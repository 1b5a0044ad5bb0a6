"""Verdicts: is a candidate run worse than its baseline, metric by metric, and by how much;
and the comparison as a whole (which benchmarks were judged, which are missing, the exit status).

Every metric is a row of ``ampcore.judge.metrics.METRICS``: its direction, whether its change is
relative, its threshold's default and the method the output names come from the row; the
per-metric rules are in ``ampcore.history.verdicts``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from ampcore.measure import stats
from ampcore.history import environments, matching
from ampcore.history.config import GateConfig, Thresholds, storage_config
from ampcore.history.noise import (CAPTURED, EAGER, RunStability, StabilityMemo, gpu_mismatch,
                                   reference_stabilities, stabilities)
from ampcore.history.errors import (EXIT_MISMATCH, EXIT_OK, EXIT_REGRESSION, EXIT_UNRELIABLE,
                                     EXIT_UNUSABLE)
from ampcore.history.settings import settings_verdict
from ampcore.history.storage import Problem, Run
from ampcore.history.verdicts import (IMPROVEMENT, NOT_AVAILABLE, OK, REGRESSION, THRESHOLD_ONLY,
                                      UNSTABLE, MetricVerdict, decide, field_verdict,
                                      mark_unstable, speedup_change_verdict, time_verdict)
from ampcore.judge.metrics import METRICS, get_metric
from ampcore.core.registry import REFERENCE_PRECISION

__all__ = ["EXIT_UNRELIABLE", "IMPROVEMENT", "NOT_AVAILABLE", "OK", "REGRESSION",
           "THRESHOLD_ONLY", "UNSTABLE",
           "BenchmarkVerdict", "Comparison", "MetricVerdict", "adjust", "compare",
           "compare_benchmark", "compare_runs", "comparable_baselines", "decide",
           "field_verdict", "speedup_change_verdict", "time_verdict"]


@dataclass(frozen=True)
class BenchmarkVerdict:
    key: str
    name: str
    metrics: tuple[MetricVerdict, ...]
    thresholds: Thresholds
    # each side's timing stability: the candidate, then every baseline run
    stability: tuple[RunStability, ...] = ()
    # that of the fp32 runs the speedup is taken over (AMP benchmarks only)
    reference_stability: tuple[RunStability, ...] = ()

    @property
    def unstable(self) -> tuple[RunStability, ...]:
        """The runs whose timing was unstable, when that made a time verdict unreliable."""
        marked = {m.metric for m in self.metrics if m.status == UNSTABLE}
        if not marked:
            return ()
        runs = self.stability + (self.reference_stability if "speedup" in marked else ())
        return tuple(s for s in runs if s.stability.unstable)

    @property
    def status(self) -> str:
        """A real regression (of any metric) first; then unstable: time verdicts unreliable."""
        statuses = {m.status for m in self.metrics}
        for status in (REGRESSION, UNSTABLE, IMPROVEMENT, OK):
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
    # benchmarks, or baseline runs of one, left out because they measured other work
    measured_differences: tuple[str, ...] = ()
    problems: tuple[Problem, ...] = ()
    notes: tuple[str, ...] = ()
    config_source: str | None = None  # the pyproject.toml in force; None: built-in defaults
    allow_missing: bool = False  # benchmarks missing from the candidate do not fail the gate
    library_changes: tuple[str, ...] = ()  # "transformers 4.57.1 -> 5.17.0": shown, not judged
    method_changes: tuple[str, ...] = ()  # "bert-fp32: fresh processes 1 -> 3": shown, not judged
    config_origin: str | None = None  # how config_source was found (GateConfig.origin)
    # "bert-amp-bf16: gpu-work:1020": candidate benchmarks trained with injected regressions
    injected: tuple[str, ...] = ()
    # "torch 2.11.0 -> 2.12.0": the software the candidate upgraded; compared, shown first
    upgrades: tuple[str, ...] = ()

    @property
    def regressions(self) -> list[BenchmarkVerdict]:
        return [v for v in self.verdicts if v.status == REGRESSION]

    @property
    def unstable(self) -> list[BenchmarkVerdict]:
        """Benchmarks with a time verdict made unreliable by an unstable run."""
        return [v for v in self.verdicts if v.unstable]

    @property
    def refused(self) -> bool:
        """Not compared: the hardware or step settings differ and no one allowed it (a
        software upgrade is compared)."""
        return bool(self.env_differences) and not self.env_mismatch_allowed

    @property
    def missing(self) -> tuple[str, ...]:
        """Baseline benchmarks the candidate lacks, when they fail the gate."""
        return () if self.allow_missing else self.only_in_baseline

    @property
    def outcome(self) -> str:
        """refused (environment or measured work differ), no baseline (nothing shared),
        regression, missing (benchmarks missing from the candidate), unreliable (an unstable
        run made a time verdict unreliable; nothing else failed) or ok."""
        if self.refused or (not self.verdicts and self.measured_differences):
            return "refused"
        if not self.verdicts:
            return "no baseline"
        if self.regressions:
            return "regression"
        if self.missing:
            return "missing"
        return "unreliable" if self.unstable else "ok"

    @property
    def exit_status(self) -> int:
        return {"refused": EXIT_MISMATCH, "no baseline": EXIT_UNUSABLE,
                "regression": EXIT_REGRESSION, "missing": EXIT_REGRESSION,
                "unreliable": EXIT_UNRELIABLE}.get(self.outcome, EXIT_OK)


# --- a whole comparison ----------------------------------------------------------------------

def step_mode(run: Run, key: str) -> str | None:
    """How a benchmark's steps ran on a GPU: eager (rounds follow the host, whose speed
    drifts between processes) or captured (rounds time the GPU's work); None on a CPU or for
    runs saved before the step mode was. A run whose capture fell back to eager steps records
    that in its own config, which wins over the session's mode."""
    env = run.environment or {}
    if env.get("device_type") != "cuda":
        return None
    record = run.benchmarks[key].record
    graphs = record.run_config.cuda_graphs if record is not None else None
    graphs = env.get("cuda_graphs") if graphs is None else graphs
    return None if graphs is None else (CAPTURED if graphs else EAGER)


def compare_benchmark(baseline_runs: Sequence[Run], candidate_run: Run, key: str,
                      config: GateConfig, time_ci: bool = True,
                      memo: StabilityMemo | None = None) -> BenchmarkVerdict:
    """One verdict per METRICS row that applies to the benchmark; the runs' stabilities
    from ``memo``, shared by the benchmarks of one comparison."""
    candidate = candidate_run.benchmarks[key]
    baseline = [run.benchmarks[key] for run in baseline_runs if key in run.benchmarks]
    mode = step_mode(candidate_run, key)
    thresholds = config.for_benchmark(key, candidate.name, mode)
    verdicts = []
    for metric in METRICS.values():
        if metric.field is not None:
            verdicts.append(field_verdict(metric, baseline, candidate, thresholds[metric.name],
                                          thresholds.alpha))
        elif metric.settings:
            verdicts.append(settings_verdict(metric, baseline, candidate,
                                             thresholds[metric.name]))
        elif metric.name == "time":
            verdicts.append(time_verdict(metric, baseline, candidate, thresholds, time_ci))
        elif metric.name == "speedup" and candidate.precision != REFERENCE_PRECISION:
            verdicts.append(speedup_change_verdict(metric, baseline_runs, candidate_run, key,
                                                   thresholds))
    limits = config.stability_limits(mode)
    memo = StabilityMemo() if memo is None else memo
    return BenchmarkVerdict(key, candidate.name, tuple(verdicts), thresholds,
                            stabilities(baseline_runs, candidate_run, key, limits, memo),
                            reference_stabilities(baseline_runs, candidate_run, key, limits,
                                                  memo))


def adjust(verdicts: Sequence[BenchmarkVerdict]) -> list[BenchmarkVerdict]:
    """Decide the tested metrics on Benjamini-Hochberg adjusted p-values over all the gate's
    tests of one direction: with many benchmarks, some pair of unchanged runs would otherwise
    reach alpha by chance. A test skipped because its change was within the
    threshold counts as p = 1, which can only make the others' adjusted p-values larger."""
    family = [(i, j) for i, v in enumerate(verdicts) for j, m in enumerate(v.metrics)
              if m.in_family]

    def adjusted(attribute: str) -> list[float]:
        values = [getattr(verdicts[i].metrics[j], attribute) for i, j in family]
        return stats.adjust_p_values([1.0 if p is None else p for p in values])

    metrics = [list(v.metrics) for v in verdicts]
    for (i, j), qw, qb in zip(family, adjusted("p_worse"), adjusted("p_better")):
        m, alpha = metrics[i][j], verdicts[i].thresholds.alpha
        if not m.tested:
            continue
        row = get_metric(m.metric)
        status = decide(row, m.change, m.threshold, qw < alpha, qb < alpha)
        metrics[i][j] = replace(m, status=status, q_value=qw if row.is_worse(m.change) else qb)
    return [replace(v, metrics=tuple(ms)) for v, ms in zip(verdicts, metrics)]


def comparable_baselines(baseline_runs: Sequence[Run],
                         candidate_run: Run) -> tuple[dict[str, list[Run]], list[str]]:
    """For every benchmark the candidate shares with the baseline, the baseline runs whose
    record measured the same work (``matching.measured_key``); and one line per baseline
    run left out, naming the fields that differ."""
    pools: dict[str, list[Run]] = {}
    refused: list[str] = []
    for key, bench in candidate_run.benchmarks.items():
        runs = []
        for run in baseline_runs:
            if key not in run.benchmarks:
                continue
            differing = matching.key_differences(run.benchmarks[key].record, bench.record)
            if differing:
                refused.append(f"{bench.name} in {run.path.name}: " + "; ".join(differing))
            else:
                runs.append(run)
        if runs:
            pools[key] = runs
    return pools, refused


def compare_runs(baseline_runs: Sequence[Run], candidate_run: Run, config: GateConfig,
                 time_ci: bool = True) -> list[BenchmarkVerdict]:
    """A verdict for every benchmark the candidate shares with a baseline run that measured
    the same work; the time-like verdicts of a benchmark with an unstable run marked so
    (after the adjustment, which would otherwise decide them again)."""
    pools, _ = comparable_baselines(baseline_runs, candidate_run)
    memo = StabilityMemo()
    verdicts = adjust([compare_benchmark(runs, candidate_run, key, config, time_ci, memo)
                       for key, runs in pools.items()])
    return [replace(v, metrics=mark_unstable(v.metrics, v.stability, v.reference_stability))
            for v in verdicts]


def compare(baseline_runs: Sequence[Run], candidate_run: Run, config: GateConfig,
            allow_env_mismatch: bool = False, problems: Sequence[Problem] = (),
            notes: Sequence[str] = (), time_ci: bool = True,
            allow_missing: bool = False) -> Comparison:
    """Everything ``ampcore compare`` reports. With differing hardware or step settings and no
    permission, the comparison carries the differences and no verdicts; a software upgrade
    (torch, CUDA, driver, libraries) is compared and named. With no pyproject.toml found from
    the working directory, the thresholds are those of the nearest one beside or above the
    first storage path (``config.storage_config``)."""
    first = (*baseline_runs, candidate_run)[0].path
    config = storage_config(config, first)
    differences = environments.environment_differences(baseline_runs, candidate_run)
    in_baseline = {k for r in baseline_runs for k in r.benchmarks}
    only_baseline = tuple(sorted(in_baseline - set(candidate_run.benchmarks)))
    only_candidate = tuple(k for k in candidate_run.benchmarks if k not in in_baseline)
    _, refused = comparable_baselines(baseline_runs, candidate_run)
    verdicts: list[BenchmarkVerdict] = []
    if not differences or allow_env_mismatch:
        verdicts = compare_runs(baseline_runs, candidate_run, config, time_ci)
    notes = (*notes, *gpu_mismatch(config.calibration, [*baseline_runs, candidate_run]))
    return Comparison(tuple(baseline_runs), candidate_run, tuple(verdicts), only_baseline,
                      only_candidate, tuple(differences), allow_env_mismatch, tuple(refused),
                      tuple(problems), tuple(notes),
                      str(config.source) if config.source else None, allow_missing,
                      library_changes=tuple(environments.library_changes(baseline_runs,
                                                                     candidate_run)),
                      method_changes=tuple(environments.method_changes(baseline_runs, candidate_run)),
                      config_origin=config.origin, injected=injected_benchmarks(candidate_run),
                      upgrades=tuple(environments.upgrades(baseline_runs, candidate_run)))


def injected_benchmarks(run: Run) -> tuple[str, ...]:
    """"name: kind, kind" for each benchmark of ``run`` trained with injected regressions."""
    return tuple(f"{b.name}: {', '.join(b.record.injections)}" for b in run.benchmarks.values()
                 if b.record is not None and b.record.injections)
