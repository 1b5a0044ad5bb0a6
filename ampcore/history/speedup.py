"""The speedup over the reference precision measured within one saved run."""

from __future__ import annotations

from dataclasses import dataclass

from ampcore.judge.speedup import speedup_ratio
from ampcore.history.matching import reference_benchmark
from ampcore.history.storage import Benchmark, Run
from ampcore.core.registry import REFERENCE_PRECISION

FROM_ROUNDS = "rounds"


@dataclass(frozen=True)
class RunSpeedup:
    value: float
    source: str  # FROM_ROUNDS, "recorded speedup_vs_fp32" or "stored medians"
    fp32_rounds: tuple[float, ...] | None = None
    amp_rounds: tuple[float, ...] | None = None


def run_speedup(run: Run, bench: Benchmark) -> RunSpeedup | None:
    """The median-round speedup within ``run``: the fp32 and AMP runs of one session share
    the runner's state, so their ratio is robust to runner-wide drift. Falls back to the
    recorded speedup, then to the stored medians, when rounds were not saved."""
    if bench.precision in (None, REFERENCE_PRECISION):
        return None
    reference = reference_benchmark(run, bench)
    if reference is not None and reference.rounds is not None and bench.rounds is not None:
        value = speedup_ratio(reference.rounds, bench.rounds)
        return RunSpeedup(value, FROM_ROUNDS, reference.rounds, bench.rounds)
    if bench.record is not None and bench.record.speedup_vs_fp32 is not None:
        return RunSpeedup(bench.record.speedup_vs_fp32, "recorded speedup_vs_fp32")
    if reference is not None:
        # A stored median is the median of a one-value sample: the same ratio, less data.
        value = speedup_ratio((reference.median,), (bench.median,))
        return RunSpeedup(value, "stored medians")
    return None
