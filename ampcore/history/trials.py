"""Resampling trials for ``ampcore calibrate``: the gate run on A/A pairs redrawn from one run's
raw rounds (no runner drift) and on pairs whose candidate is a known slowdown of it. A gate
that says "unreliable" (an unstable run, ``verdicts.mark_unstable``) is neither an alarm nor a
pass: it is counted apart, so the rates rest on the gates that judged."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ampcore.history.compare import REGRESSION, UNSTABLE, compare_runs
from ampcore.history.config import GateConfig
from ampcore.history.report.progress import track
from ampcore.history.storage import Run


def resample_run(run: Run, rng: np.random.Generator, factor: float = 1.0) -> Run:
    """The run with every benchmark's rounds redrawn with replacement (times ``factor``)."""
    benchmarks = {}
    for key, bench in run.benchmarks.items():
        if bench.rounds is None:
            continue
        rounds = rng.choice(np.asarray(bench.rounds), size=len(bench.rounds), replace=True) * factor
        benchmarks[key] = replace(bench, rounds=tuple(float(r) for r in rounds),
                                  median=float(np.median(rounds)))
    return replace(run, benchmarks=benchmarks)


AA, SLOWDOWN = 0, 1  # the two kinds of trial, indices of ``Tally``'s lists


@dataclass
class Tally:
    """Trials of each kind (``AA``, ``SLOWDOWN``) in which the gate flagged a regression, and
    those it called unreliable instead (an unstable run, ``verdicts.mark_unstable``): those
    are neither an alarm nor a pass, so no part of either rate."""

    flagged: list[int] = field(default_factory=lambda: [0, 0])
    unreliable: list[int] = field(default_factory=lambda: [0, 0])

    def add(self, kind: int, status: str | None) -> None:
        if status == REGRESSION:
            self.flagged[kind] += 1
        elif status == UNSTABLE:
            self.unreliable[kind] += 1


@dataclass(frozen=True)
class TrialCounts:
    trials: int
    overall: Tally  # one outcome per gate, as ``Comparison.outcome`` ranks them
    per_benchmark: dict[str, Tally]

    @property
    def false_alarms(self) -> int:
        return self.overall.flagged[AA]

    @property
    def detections(self) -> int:
        return self.overall.flagged[SLOWDOWN]

    @property
    def unreliable(self) -> tuple[int, int]:
        return self.overall.unreliable[AA], self.overall.unreliable[SLOWDOWN]


def _gate_status(statuses: Sequence[str]) -> str | None:
    """A regression anywhere fails the gate; else an unstable benchmark makes it unreliable."""
    return next((s for s in (REGRESSION, UNSTABLE) if s in statuses), None)


def resampling_trials(runs: Sequence[Run], config: GateConfig, trials: int = 100,
                      slowdown: float = 0.10, seed: int = 0,
                      progress: bool = False) -> TrialCounts:
    """Run the gate on ``trials`` resampled A/A pairs and ``trials`` pairs whose candidate is
    ``slowdown`` slower in every round, trial t resampling ``runs[t % len(runs)]``; counts of
    alarms and of unreliable gates, overall and per benchmark."""
    rng = np.random.default_rng(seed)
    per = {k: Tally() for run in runs for k, b in run.benchmarks.items() if b.rounds}
    overall = Tally()
    for trial in track(range(trials), "calibrate: trials", progress):
        run = runs[trial % len(runs)]
        baseline = resample_run(run, rng)
        for kind, candidate in ((AA, resample_run(run, rng)),
                                (SLOWDOWN, resample_run(run, rng, 1 + slowdown))):
            verdicts = compare_runs([baseline], candidate, config, time_ci=False)
            for v in verdicts:
                per[v.key].add(kind, v.status)
            overall.add(kind, _gate_status([v.status for v in verdicts]))
    return TrialCounts(trials, overall, per)
