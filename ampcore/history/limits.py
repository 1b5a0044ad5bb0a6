"""Limits derived from measured noise: what ``ampcore calibrate --write`` puts in pyproject.toml.

Every pair of saved runs of unchanged code on one environment is an A/A pair. Per step mode
(captured or eager steps on a GPU; a CPU's runs set the general limits), the change of every
gated metric over all such pairs gives the noise (its 99th percentile) and the limit (1.5x
that, rounded up to the row's step: ``calibrate.suggest``). The limits go to
``[tool.ampcore.compare.<mode>]`` (``[tool.ampcore.compare]`` for a CPU), and the data behind
them to ``[tool.ampcore.calibration.<mode>]``: runs, pairs, the GPU, each metric's noise.
``ampcore compare`` then refuses a limit set below that noise and names a GPU other than the
one calibrated on (``ampcore.history.noise``).

The stability limits (``round_cv``, ``probe_cv``: ``ampcore.judge.stability``) come from the
same runs: 1.5x the 99th percentile of every run's round CV (and probe host-step CV), rounded
up to ``CV_STEP``; a run above them is then judged unstable by ``ampcore compare``.

A run with a benchmark unstable under the stability limits in force (``compare`` would call
every pair it is in unreliable for the time-like metrics, ``verdicts.TIME_LIKE``) is left out of
the time-like changes: those come from the pairs of the other runs, and the runs left out are
named (``ModeNoise.left_out``, a note, ``left_out`` in the calibration record). The stability
limits themselves still come from every run's CV.

Too few runs (``MIN_RUNS`` of one environment in a mode, or of its stable runs once the
unstable ones are left out) give no limits, only the reason.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np

from ampcore.history import environments, matching
from ampcore.history.calibrate import QUANTILE, pair_changes, round_up_limit, suggest
from ampcore.history.unstable import (UnstableRun, left_out_note, unstable_benchmarks,
                                      unstable_runs)
from ampcore.history.config import GateConfig, load_config
from ampcore.history.noise import CAPTURED, CPU, EAGER, limits_table, run_step_mode
from ampcore.history.storage import Run
from ampcore.history.verdicts import TIME_LIKE
from ampcore.judge import stability
from ampcore.judge.metrics import get_metric
from ampcore.measure import stats

MIN_RUNS = 10  # 45 pairs: as many sessions as the gate's A/A targets ask for
MODES = (CAPTURED, EAGER, CPU)
# Judged by their own tests on paired or per-sample data, not by a limit learnt here.
NOT_DERIVED = ("accuracy",)
CV_STEP = 0.005  # stability limits are rounded up to half a percent


@dataclass
class ModeNoise:
    """A/A changes of one step mode's benchmarks, pooled over benchmarks and pairs."""

    mode: str
    runs: int = 0
    pairs: int = 0
    gpu: str | None = None
    changes: dict[str, list[float]] = field(default_factory=dict)
    # every run's round CV and probe CV per benchmark, for the stability limits
    cvs: dict[str, list[float]] = field(default_factory=dict)
    # runs left out of the time-like changes (an unstable benchmark), and the pairs of the rest
    left_out: list[UnstableRun] = field(default_factory=list)
    time_pairs: int = 0

    def noise(self) -> dict[str, float]:
        pooled = {**self.changes, **self.cvs}
        return {m: float(np.quantile(np.abs(v), QUANTILE)) for m, v in pooled.items() if v}

    def _derived(self) -> dict[str, tuple[float, float]]:
        """Each limit and its maximum: the metric row's, or ``stability.MAX_LIMIT``."""
        derived = {m: (suggest(v, m), get_metric(m).max_threshold)
                   for m, v in self.changes.items() if v}
        for key, values in self.cvs.items():
            if values:
                derived[key] = (round_up_limit(values, CV_STEP), stability.MAX_LIMIT)
        return derived

    def limits(self) -> dict[str, float]:
        """The derived limits within their rows' range (``max_threshold``): a wider one would
        be refused by compare, so it is left out (``too_noisy``)."""
        return {m: v for m, (v, top) in self._derived().items() if v <= top}

    def too_noisy(self) -> list[str]:
        """Metrics whose derived limit exceeds its row's maximum: not written."""
        return sorted(m for m, (v, top) in self._derived().items() if v > top)


def measure(runs: Sequence[Run], config: GateConfig | None = None
            ) -> tuple[list[ModeNoise], list[str]]:
    """The pooled A/A noise of each step mode that has ``MIN_RUNS`` runs of one environment
    (its largest group) and ``MIN_RUNS`` of them stable under ``config``'s stability limits
    (default: the pyproject.toml ``load_config`` finds), and why each other mode has none."""
    config = load_config() if config is None else config
    measured, notes = [], []
    for mode in MODES:
        groups: dict[str, list[Run]] = {}
        for run in runs:
            if run_step_mode(run) == mode:
                groups.setdefault(repr(environments.fingerprint(run)), []).append(run)
        group = max(groups.values(), key=len, default=[])
        if len(group) < MIN_RUNS:
            if group:
                notes.append(f"{mode}: {len(group)} runs of one environment; limits need at "
                             f"least {MIN_RUNS} (45 A/A pairs): no limits written for it")
            continue
        unstable = unstable_benchmarks(group, config)
        left_out = unstable_runs(group, unstable)
        stable = len(group) - len(left_out)
        if left_out:
            notes.append(f"{mode}: {left_out_note(left_out, 'limits')}")
        if stable < MIN_RUNS:
            notes.append(f"{mode}: {len(group)} runs of one environment, {len(left_out)} of "
                         f"them unstable (above): {stable} stable runs left; time-like limits "
                         f"need at least {MIN_RUNS} (45 A/A pairs): no limits written for it")
            continue
        measured.append(_pooled(mode, group, [not bad for bad in unstable], left_out))
    return measured, notes


def _pooled(mode: str, group: Sequence[Run], stable: Sequence[bool] | None = None,
            left_out: Sequence[UnstableRun] = ()) -> ModeNoise:
    """Every pair of ``group``; the time-like changes only from pairs of two ``stable`` runs."""
    stable = [True] * len(group) if stable is None else stable
    noise = ModeNoise(mode, runs=len(group), gpu=(group[-1].environment or {}).get("gpu"),
                      left_out=list(left_out))
    _add_cvs(noise, group)
    for (i, a), (j, b) in itertools.combinations(enumerate(group), 2):
        noise.pairs += 1
        timed = stable[i] and stable[j]
        noise.time_pairs += timed
        for key in a.benchmarks.keys() & b.benchmarks.keys():
            if matching.key_differences(a.benchmarks[key].record, b.benchmarks[key].record):
                continue
            changes, _ = pair_changes(a, b, key)
            for metric, value in changes.items():
                if metric not in NOT_DERIVED and (timed or metric not in TIME_LIKE):
                    noise.changes.setdefault(metric, []).append(value)
    return noise


def _add_cvs(noise: ModeNoise, group: Sequence[Run]) -> None:
    """Every run's round CV and probe host-step CV of each benchmark."""
    for run in group:
        for bench in run.benchmarks.values():
            record = bench.record
            cv, _ = stability.round_cv(bench.rounds, record.samples_per_round if record else ())
            if cv is not None:
                noise.cvs.setdefault("round_cv", []).append(cv)
            probe = stats.coefficient_of_variation(
                get_metric("host_time").samples_of(record))
            if probe is not None:
                noise.cvs.setdefault("probe_cv", []).append(probe)


def write(pyproject: Path, measured: Sequence[ModeNoise], sources: Sequence[str]) -> None:
    """Set each mode's limits and their data in ``pyproject`` (created if missing), keeping
    everything else in the file as it was (tomlkit edits in place)."""
    import tomlkit

    document = tomlkit.parse(pyproject.read_text(encoding="utf-8")) if pyproject.exists() \
        else tomlkit.document()
    tool = document.setdefault("tool", tomlkit.table())
    ampcore = tool.setdefault("ampcore", tomlkit.table())
    compare = ampcore.setdefault("compare", tomlkit.table())
    calibration = ampcore.setdefault("calibration", tomlkit.table())
    for noise in measured:
        if noise.mode != CPU:
            compare.setdefault(noise.mode, tomlkit.table())
        limits = limits_table(compare, noise.mode)
        for metric, value in sorted(noise.limits().items()):
            limits[metric] = round(value, 6)
        record = tomlkit.table()
        record.update({"runs": noise.runs, "pairs": noise.pairs, "gpu": noise.gpu or "",
                       "date": date.today().isoformat(), "sources": list(sources),
                       "noise": {m: round(v, 6) for m, v in sorted(noise.noise().items())}})
        if noise.left_out:  # the time-like limits rest on the other runs' pairs
            record.update({"time_pairs": noise.time_pairs,
                           "left_out": [r.file for r in noise.left_out]})
        calibration[noise.mode] = record
    # the user's file: replaced whole or not at all
    temporary = pyproject.with_name(f".{pyproject.name}.ampcore-tmp")
    temporary.write_text(tomlkit.dumps(document), encoding="utf-8")
    os.replace(temporary, pyproject)
