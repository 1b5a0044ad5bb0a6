"""The step modes limits differ by, and what a calibration recorded about their noise
(``[tool.ampcore.calibration.<mode>]``, written by ``ampcore calibrate --write``): the checks
``ampcore compare`` makes against it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ampcore.history.errors import UnusableInputError
from ampcore.judge import stability as judge
from ampcore.judge.metrics import get_metric

if TYPE_CHECKING:
    from ampcore.history.storage import Run

# How a run's steps ran: on a GPU, eagerly or captured in CUDA graphs; or on a CPU.
EAGER, CAPTURED, CPU = "eager", "captured", "cpu"
GPU_MODES = (EAGER, CAPTURED)  # each has a [tool.ampcore.compare.<mode>] table of limits


def run_step_mode(run: Run) -> str | None:
    """The session's step mode (None: saved before it was recorded)."""
    env = run.environment or {}
    if env.get("device_type") == "cpu":
        return CPU
    if env.get("device_type") == "cuda" and isinstance(env.get("cuda_graphs"), bool):
        return CAPTURED if env["cuda_graphs"] else EAGER
    return None


def limits_table(compare: dict, mode: str) -> dict:
    """The table a mode's limits are set in: its own on a GPU, the general one on a CPU."""
    table = compare if mode == CPU else compare.get(mode, {})
    return table if isinstance(table, dict) else {}


def check_limits(calibration: dict, compare: dict, where: str) -> None:
    """Refuse a limit set below the noise calibrated for its mode, naming both figures."""
    for mode, record in calibration.items():
        noise = record.get("noise", {}) if isinstance(record, dict) else {}
        table = limits_table(compare, mode)
        for metric, measured in (noise.items() if isinstance(noise, dict) else ()):
            limit = table.get(metric)
            if _number(limit) and _number(measured) and limit < measured:
                section = "" if mode == CPU else f".{mode}"
                raise UnusableInputError(
                    f"{where}: [tool.ampcore.compare{section}] {metric} = {limit:g} is below "
                    f"the A/A noise measured for it, {measured:g} (99th percentile over "
                    f"{record.get('pairs')} pairs, [tool.ampcore.calibration.{mode}]): it would "
                    "flag unchanged code")


def gpu_mismatch(calibration: dict, runs: Sequence[Run]) -> list[str]:
    """A line for each run whose step mode's limits were calibrated on another GPU."""
    lines = []
    for run in runs:
        mode, gpu = run_step_mode(run), (run.environment or {}).get("gpu")
        record = calibration.get(mode) if mode else None
        calibrated = record.get("gpu") if isinstance(record, dict) else None
        if calibrated and gpu and calibrated != gpu:
            lines.append(f"{run.file_name}: the {mode} limits were calibrated on {calibrated}, this run "
                         f"ran on {gpu}; calibrate on this GPU's runs (ampcore calibrate --write)")
    return list(dict.fromkeys(lines))


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class RunStability:
    """One run's timing stability for one benchmark: ``side`` baseline or candidate."""

    side: str
    run: str  # the saved file's name
    stability: judge.Stability

    def line(self, name: str) -> str:
        """"bench candidate round CV 26 % > limit 3 %: time verdicts unreliable"."""
        where = f"{self.side} ({self.run})" if self.side == "baseline" else self.side
        return f"{name} {where} {self.stability.describe()}: time verdicts unreliable"

    def as_json(self) -> dict:
        s = self.stability
        return {"side": self.side, "run": self.run, "status": s.status, "measure": s.what,
                "cv": s.cv, "limit": s.limit, "source": s.source}


def run_stability(run: Run, key: str, limits: judge.StabilityLimits) -> judge.Stability:
    """A benchmark's round CV (raw rounds, else the record's, else the stored quartiles) and
    the probe's host-step spread, against ``limits``."""
    bench = run.benchmarks[key]
    record = bench.record
    cv, source = judge.round_cv(bench.rounds, record.samples_per_round if record else (),
                                record.round_cv if record else None, bench.q1, bench.q3,
                                bench.median)
    probe = get_metric("host_time").samples_of(record)
    return judge.judge_stability(cv, source, probe, limits)


class StabilityMemo:
    """``run_stability`` judged once per run, benchmark and limits for one comparison: an
    fp32 benchmark is read for its own verdicts and again for each speedup taken over it."""

    def __init__(self) -> None:
        self._judged: dict[tuple[int, str, judge.StabilityLimits], judge.Stability] = {}

    def __call__(self, run: Run, key: str, limits: judge.StabilityLimits) -> judge.Stability:
        memo = (id(run), key, limits)  # by identity: a comparison keeps its runs alive
        if memo not in self._judged:
            self._judged[memo] = run_stability(run, key, limits)
        return self._judged[memo]


def stabilities(baseline: Sequence[Run], candidate: Run, key: str,
                limits: judge.StabilityLimits, memo: StabilityMemo) -> tuple[RunStability, ...]:
    """The candidate's stability, then that of every baseline run holding the benchmark."""
    return (RunStability("candidate", candidate.file_name, memo(candidate, key, limits)),
            *(RunStability("baseline", r.file_name, memo(r, key, limits))
              for r in baseline if key in r.benchmarks))


def reference_stabilities(baseline: Sequence[Run], candidate: Run, key: str,
                          limits: judge.StabilityLimits,
                          memo: StabilityMemo) -> tuple[RunStability, ...]:
    """The stability of the fp32 benchmark each run's speedup of ``key`` is taken over (its
    ``matching.reference_benchmark``), candidate first: an unstable fp32 run makes the
    speedup as unreliable as an unstable AMP run does."""
    from ampcore.history.matching import reference_benchmark

    found = []
    for side, run in (("candidate", candidate), *(("baseline", r) for r in baseline)):
        bench = run.benchmarks.get(key)
        reference = reference_benchmark(run, bench) if bench is not None else None
        if reference is not None:
            found.append(RunStability(f"{side} fp32", run.file_name,
                                      memo(run, reference.key, limits)))
    return tuple(found)
