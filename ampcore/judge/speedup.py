"""How much faster one run is than another, defined once for the gates, the tables, the
records and the history tools.

The speedup over the reference precision is a ratio of round times, reference over candidate,
on one of two bases: the median round (what the suite gates and saves: robust to a slow round,
and the ratio of throughputs when both runs follow the same round plan) or the total training
time (what ``ampcore run`` shows). The scaling efficiency compares a DDP run with the same
precision on one process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ampcore.core.errors import UsageError
from ampcore.measure import stats

if TYPE_CHECKING:
    from ampcore.train.result import RunResult

MEDIAN_ROUND = "median round"
TRAINING_TIME = "training time"
_STATISTIC = {MEDIAN_ROUND: stats.median, TRAINING_TIME: sum}


def speedup_ratio(reference_rounds: Sequence[float], rounds: Sequence[float],
                  basis: str = MEDIAN_ROUND) -> float:
    """How many times faster ``rounds`` ran than ``reference_rounds`` on ``basis``
    (``MEDIAN_ROUND`` or ``TRAINING_TIME``)."""
    statistic = _STATISTIC[basis]
    return statistic(reference_rounds) / statistic(rounds)


@dataclass(frozen=True)
class Speedup:
    ratio: float  # median reference round time / median candidate round time
    low: float
    high: float


def speedup(reference: RunResult, candidate: RunResult, confidence: float = 0.95) -> Speedup:
    """Speedup of ``candidate`` over ``reference`` on the median round, with a bootstrap
    interval over the rounds of both runs.

    Both runs must follow the same round plan (same workload and profile): only then is the
    ratio of median round times the ratio of throughputs."""
    if reference.samples_per_round != candidate.samples_per_round:
        raise ValueError(f"{reference.name} and {candidate.name} have different round plans")
    _, low, high = stats.bootstrap_speedup_ci(reference.round_times_s, candidate.round_times_s,
                                              confidence=confidence)
    return Speedup(speedup_ratio(reference.round_times_s, candidate.round_times_s), low, high)


def scaling_efficiency(result: RunResult, single: RunResult) -> float:
    """A merged DDP run's throughput as a fraction of its world size x the throughput of
    ``single``, the same precision on one process (1.0 is linear scaling)."""
    n, single_rate = result.world_size, single.samples_per_s
    if n < 1:
        raise UsageError(f"scaling efficiency needs at least 1 process; got n={n}")
    if not single_rate > 0:
        raise UsageError(f"single-process throughput must be positive; got {single_rate}")
    return result.samples_per_s / (n * single_rate)
