"""Runs left out of calibrate's A/A changes: a run whose benchmark is unstable under the
stability limits in force (round CV or probe spread above them; ``noise.run_stability``, as
``compare`` judges it) would make every pair it is in "unreliable" for the time-like metrics
(``verdicts.TIME_LIKE``), so it is left out of that benchmark's time-like changes and named."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ampcore.history import matching
from ampcore.history.compare import step_mode
from ampcore.history.config import GateConfig
from ampcore.history.noise import StabilityMemo
from ampcore.history.storage import Run
from ampcore.history.verdicts import TIME_LIKE
from ampcore.judge.stability import Stability


@dataclass(frozen=True)
class UnstableRun:
    """A run with benchmarks unstable under the limits in force: left out of their time-like
    changes. ``benchmarks``: benchmark name -> its stability (``Stability.describe``)."""

    file: str
    benchmarks: dict[str, str]


def unstable_benchmarks(runs: Sequence[Run], config: GateConfig) -> list[dict[str, Stability]]:
    """For each run (in order), its benchmarks unstable under the stability limits in force for
    their step mode (``GateConfig.stability_limits``), judged as ``compare`` judges them."""
    memo = StabilityMemo()
    return [{key: judged for key in run.benchmarks
             for judged in [memo(run, key, config.stability_limits(step_mode(run, key)))]
             if judged.unstable} for run in runs]


def unstable_runs(runs: Sequence[Run], unstable: Sequence[dict[str, Stability]]
                  ) -> list[UnstableRun]:
    """The runs with an unstable benchmark, each with why."""
    return [UnstableRun(run.file_name, {run.benchmarks[k].name: s.describe()
                                        for k, s in sorted(bad.items())})
            for run, bad in zip(runs, unstable) if bad]


def left_out(runs: Sequence[Run], unstable: Sequence[dict[str, Stability]],
              key: str) -> tuple[dict[int, str], dict[int, str]]:
    """The runs (by index) left out of ``key``'s time-like changes, with why: those in which it
    was unstable, and for the speedup also those whose fp32 reference was."""
    own: dict[int, str] = {}
    speedup: dict[int, str] = {}
    for i, (run, bad) in enumerate(zip(runs, unstable)):
        bench = run.benchmarks.get(key)
        if bench is None:
            continue
        if key in bad:
            own[i] = speedup[i] = bad[key].describe()
            continue
        reference = matching.reference_benchmark(run, bench) if bad else None
        if reference is not None and reference.key in bad:
            speedup[i] = f"fp32 {reference.name}: {bad[reference.key].describe()}"
    return own, speedup


def left_out_note(left_out: Sequence[UnstableRun], what: str = "changes") -> str:
    """How many runs were left out of the time-like ``what`` (calibrate's changes, the written
    limits), which files and why."""
    named = "; ".join(f"{r.file} (" + ", ".join(f"{name}: {why}" for name, why in
                                                 r.benchmarks.items()) + ")" for r in left_out)
    return (f"{len(left_out)} run(s) left out of the time-like {what} ({', '.join(TIME_LIKE)}) "
            "of their unstable benchmarks: above the stability limits in force, so compare "
            f"would call their pairs unreliable: {named}")
