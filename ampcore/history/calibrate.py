"""``ampcore calibrate``: how noisy is each benchmark from run to run, and which thresholds
would keep the gate quiet on unchanged code (A/A) while still catching real slowdowns.

Two measurements:

- A/A pairs of saved runs (same environment; same commit with ``same_commit``): the change
  of every gated metric between consecutive runs. A threshold is suggested at 1.5x the 99th
  percentile of those changes.
- Resampling trials on the raw rounds of the runs on the newest run's environment: two runs
  drawn with replacement from one run's rounds are an A/A pair with no runner drift; the same
  with every round multiplied by ``1 + slowdown`` is a known regression. The shares of gates
  that raise an alarm are the false-alarm and detection rates for this round noise; a gate
  that says "unreliable" (an unstable run) is neither, counted apart and left out of both.

Runs whose benchmark was unstable are left out of its time-like changes (``unstable``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ampcore.measure import stats
from ampcore.history import environments, matching
from ampcore.history.config import GateConfig, Thresholds
from ampcore.history.speedup import run_speedup
from ampcore.history.storage import Run
from ampcore.history.trials import AA, SLOWDOWN, resampling_trials
from ampcore.history.unstable import (UnstableRun, left_out, left_out_note, unstable_benchmarks,
                                      unstable_runs)
from ampcore.history.verdicts import TIME_LIKE
from ampcore.judge.metrics import METRICS, get_metric
from ampcore.judge.stability import Stability

MARGIN = 1.5
QUANTILE = 0.99


@dataclass
class BenchmarkNoise:
    key: str
    name: str
    changes: dict[str, list[float]] = field(default_factory=dict)  # metric -> A/A changes
    p_values: list[float] = field(default_factory=list)  # Mann-Whitney U per A/A pair
    round_cv: list[float] = field(default_factory=list)  # within-run noise, per run
    suggested: dict[str, float] = field(default_factory=dict)
    false_alarms: int | None = None  # resampling trials flagged with nothing changed
    detections: int | None = None  # resampling trials flagged with the injected slowdown
    unreliable: tuple[int, int] | None = None  # (A/A, slowdown) trials it was unstable in
    # runs left out of its time-like changes (TIME_LIKE): file name -> why (its own or, for
    # the speedup alone, its fp32 reference's instability)
    left_out: dict[str, str] = field(default_factory=dict)


@dataclass
class Calibration:
    runs: int
    pairs: int
    pairing: str
    thresholds: Thresholds  # the defaults in force, for contrast
    benchmarks: list[BenchmarkNoise]
    trials: int = 0
    slowdown: float = 0.0
    trial_run: str | None = None
    gate_false_alarms: int | None = None  # trials where any benchmark was flagged (A/A)
    gate_detections: int | None = None  # trials where any benchmark was flagged (slowdown)
    gate_unreliable: tuple[int, int] | None = None  # (A/A, slowdown) gates said unreliable
    notes: list[str] = field(default_factory=list)
    thresholds_source: str = ""  # GateConfig.describe(): the file in force and how it was found
    left_out: list[UnstableRun] = field(default_factory=list)  # unstable runs, by file


# --- A/A pairs of saved runs -------------------------------------------------------------------

def aa_pairs(runs: Sequence[Run], same_commit: bool = False) -> list[tuple[Run, Run]]:
    """Consecutive runs on the same environment (and commit, if asked): presumed A/A."""
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        key = (repr(environments.fingerprint(run)), run.commit if same_commit else None)
        groups.setdefault(key, []).append(run)
    return [(a, b) for group in groups.values() for a, b in zip(group, group[1:])]


def pair_changes(a: Run, b: Run, key: str) -> tuple[dict[str, float], float | None]:
    """The change of every METRICS row from run ``a`` to run ``b`` (each row's own relative
    or absolute change), and the Mann-Whitney U p-value of their rounds."""
    first, second = a.benchmarks[key], b.benchmarks[key]
    changes: dict[str, float] = {}
    time = METRICS["time"]
    if first.rounds and second.rounds:
        changes[time.name] = time.change(stats.median(first.rounds), stats.median(second.rounds))
        p_value = stats.mann_whitney(first.rounds, second.rounds)
    else:
        changes[time.name] = time.change(first.median, second.median)
        p_value = None
    s1, s2 = run_speedup(a, first), run_speedup(b, second)
    if s1 is not None and s2 is not None:
        changes["speedup"] = METRICS["speedup"].change(s1.value, s2.value)
    records = (first.record, second.record)
    for metric in METRICS.values():
        if metric.field is None or None in records or any(
                metric.requires and getattr(r, metric.requires) is False for r in records):
            continue
        x, y = (metric.value(r) for r in records)
        if x is not None and y is not None:
            changes[metric.name] = metric.change(x, y)
    # a relative change from a zero baseline is NaN: no evidence of noise either way
    return {m: c for m, c in changes.items() if math.isfinite(c)}, p_value


def round_up_limit(values: Sequence[float], step: float) -> float:
    """MARGIN x the QUANTILE of ``values`` (non-negative), rounded up to ``step``; at least
    one step."""
    worst = MARGIN * float(np.quantile(values, QUANTILE))
    return max(step, math.ceil(worst / step - 1e-9) * step)


def suggest(changes: Sequence[float], metric: str) -> float:
    """1.5x the 99th percentile of the absolute A/A changes, rounded up to the row's step;
    0 for a counter that never changed (it is exact: any rise is real)."""
    row = get_metric(metric)
    if row.counter and float(np.quantile(np.abs(changes), QUANTILE)) == 0:
        return 0.0
    return round_up_limit(np.abs(changes), row.calibration_step)


# --- the whole calibration ---------------------------------------------------------------------

def _noise(runs: Sequence[Run], pairs: Sequence[tuple[Run, Run]],
           unstable: Sequence[dict[str, Stability]] | None = None,
           same_commit: bool = False) -> dict[str, BenchmarkNoise]:
    """Within-run round CV and the A/A changes of every benchmark. A pair in which a benchmark
    measured other work (``matching.measured_key``) is no A/A pair for it. A run in which a
    benchmark was unstable (``unstable``) is left out of its time-like changes and MWU
    p-values: ``pairs`` are made again without it (``aa_pairs``), its neighbours paired."""
    unstable = unstable if unstable is not None else [{} for _ in runs]
    noise: dict[str, BenchmarkNoise] = {}
    for run in runs:
        for key, bench in run.benchmarks.items():
            entry = noise.setdefault(key, BenchmarkNoise(key, bench.name))
            sizes = bench.record.samples_per_round if bench.record else ()
            cv = stats.round_cv(bench.rounds or (), sizes)
            if cv is not None:
                entry.round_cv.append(cv)
    index = {id(run): i for i, run in enumerate(runs)}

    def pairs_without(out: dict[int, str]) -> list[tuple[Run, Run]]:
        if not out:
            return list(pairs)
        return aa_pairs([r for i, r in enumerate(runs) if i not in out], same_commit)

    for key, entry in noise.items():
        own, speedup_out = left_out(runs, unstable, key)
        entry.left_out = {runs[i].file_name: why for i, why in sorted(speedup_out.items())}
        # which pairs feed which metrics: all of them, those without the unstable runs
        # (time-like), and those also without unstable fp32 references (the speedup)
        kinds = {"other": pairs, "time": pairs_without(own), "speedup": pairs_without(speedup_out)}
        chosen = {kind: {(index[id(a)], index[id(b)]) for a, b in found}
                  for kind, found in kinds.items()}
        ordered = dict.fromkeys((index[id(a)], index[id(b)])
                                for found in kinds.values() for a, b in found)
        for i, j in ordered:  # in pairing order: the saved changes read as before
            a, b = runs[i], runs[j]
            if key not in a.benchmarks or key not in b.benchmarks or matching.key_differences(
                    a.benchmarks[key].record, b.benchmarks[key].record):
                continue
            changes, p_value = pair_changes(a, b, key)
            for metric, value in changes.items():
                kind = ("speedup" if metric == "speedup" else
                        "time" if metric in TIME_LIKE else "other")
                if (i, j) in chosen[kind]:
                    entry.changes.setdefault(metric, []).append(value)
            if p_value is not None and (i, j) in chosen["time"]:
                entry.p_values.append(p_value)
    for entry in noise.values():
        entry.suggested = {m: suggest(v, m) for m, v in entry.changes.items() if v}
    return noise


def _add_trials(result: Calibration, noise: dict[str, BenchmarkNoise], runs: Sequence[Run],
                config: GateConfig, trials: int, slowdown: float, seed: int,
                progress: bool = False) -> None:
    """Resample the runs that share the newest run's environment (and saved raw rounds)."""
    with_rounds = [r for r in runs if any(b.rounds for b in r.benchmarks.values())]
    if not with_rounds:
        result.notes.append("no run saved raw rounds (stats.data): resampling trials skipped")
        return
    newest = with_rounds[-1]
    chosen = [r for r in with_rounds if environments.same_environment(r, newest)]
    counts = resampling_trials(chosen, config, trials, slowdown, seed, progress)
    result.trials, result.slowdown = trials, slowdown
    result.trial_run = (newest.path.name if len(chosen) == 1 else
                        f"{len(chosen)} runs ({chosen[0].path.name} .. {newest.path.name})")
    result.gate_false_alarms, result.gate_detections = counts.false_alarms, counts.detections
    result.gate_unreliable = counts.unreliable
    for key, tally in counts.per_benchmark.items():
        noise[key].false_alarms, noise[key].detections = tally.flagged
        noise[key].unreliable = tuple(tally.unreliable)
    if any(counts.unreliable):
        result.notes.append(
            f"{counts.unreliable[AA]} A/A and {counts.unreliable[SLOWDOWN]} slowdown gates were "
            "unreliable (a run's round CV or probe spread above its stability limit): neither "
            "alarm nor pass, left out of the rates")


def calibrate(runs: Sequence[Run], config: GateConfig, same_commit: bool = False,
              trials: int = 100, slowdown: float = 0.10, seed: int = 0,
              progress: bool = False) -> Calibration:
    """A/A noise of every benchmark and, with ``trials``, the gate's resampled rates; a
    progress bar over the trials when ``progress``."""
    pairs = aa_pairs(runs, same_commit)
    unstable = unstable_benchmarks(runs, config)
    noise = _noise(runs, pairs, unstable, same_commit)
    pairing = ("consecutive runs of the same commit and environment" if same_commit else
               "consecutive runs on the same environment (assumes no real change between them; "
               "use --same-commit for true repeats)")
    result = Calibration(len(runs), len(pairs), pairing, config.defaults,
                         sorted(noise.values(), key=lambda n: n.key),
                         thresholds_source=config.describe(),
                         left_out=unstable_runs(runs, unstable))
    if result.left_out:
        result.notes.append(left_out_note(result.left_out))
    if len(pairs) < 10:
        result.notes.append(f"only {len(pairs)} A/A pair(s): suggestions are rough; save more "
                            "repeated runs of one commit")
    if trials:
        _add_trials(result, noise, runs, config, trials, slowdown, seed, progress)
    return result
