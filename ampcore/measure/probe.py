"""The step decomposition: what one eager step costs the host, takes end to end, and asks of the
device, measured on extra warm-up steps that the restore undoes (never in a timed round).

A timed round shows one number: the GPU's work when steps are captured (a replay runs no host
code), or max(host, GPU) when they are eager. The probe puts the parts beside it:

- host CPU time per eager step: ``time.process_time`` over issuing one step (every thread of
  the process: the autograd engine issues the backward from its own thread on CUDA), the
  device drained before it so a full launch queue does not hold the host back;
- eager wall time per step: the same step from drained device to drained device, what a user
  of eager mode waits for;
- deterministic counters (``ampcore.measure.counters``) of one more step.
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields

import torch

from ampcore.measure.counters import StepCounts, count_step
from ampcore.measure.timing import synchronize

PROBE_STEPS = 8  # timed eager steps: medians of 8 per run, compared across runs
# StepCounts' per-step totals (its ``ops`` breakdown is saved apart)
COUNTER_NAMES = tuple(f.name for f in fields(StepCounts) if f.name not in ("ops", "kernel_times"))


@dataclass(frozen=True)
class StepProbe:
    host_s: tuple[float, ...]
    wall_s: tuple[float, ...]
    counts: StepCounts | None  # None where counting does not apply (DDP, torch.compile)

    def summary(self) -> dict:
        """The figures a RunResult carries (names of BenchmarkRecord fields)."""
        counts = self.counts
        figures: dict[str, object] = {
            "host_step_s": list(self.host_s), "eager_step_s": list(self.wall_s),
            "host_step_median_s": statistics.median(self.host_s) if self.host_s else None,
            "eager_step_median_s": statistics.median(self.wall_s) if self.wall_s else None,
        }
        for name in COUNTER_NAMES:
            figures[f"{name}_per_step"] = getattr(counts, name) if counts else None
        figures["ops_per_step"] = dict(counts.ops) if counts else {}
        figures["kernel_time_per_step"] = dict(counts.kernel_times) if counts else {}
        return figures


def probe_steps(step: Callable[[torch.Tensor], object], batches: Sequence[torch.Tensor],
                device: torch.device, count: bool = True) -> StepProbe:
    """Run ``step`` on ``batches`` one at a time, timing each, then once more under the
    counters; the caller undoes what the steps trained."""
    host, wall = [], []
    for batch in batches:
        synchronize(device)
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        step(batch)
        cpu = time.process_time() - start_cpu
        synchronize(device)
        wall.append(time.perf_counter() - start_wall)
        host.append(cpu)
    counts = None
    if count and batches:
        try:
            counts = count_step(lambda: step(batches[0]), device)
        except Exception as exc:  # a counter this torch cannot run: n/a, never a lost run
            warnings.warn(f"step counters could not run ({type(exc).__name__}: {exc}); "
                          "they are recorded as not available", RuntimeWarning, stacklevel=2)
    return StepProbe(tuple(host), tuple(wall), counts)
