"""Change points in a per-run series (median time, speedup...) with ruptures (Pelt, l2 cost)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ampcore.measure import stats

MIN_POINTS = 6
MIN_SIZE = 2  # runs per segment: one odd run is an outlier, not a change
# Penalty per log(n) on the noise-scaled series. Measured on simulated series (n = 30..200,
# 2 % noise): 6 marks 1 of 200 flat series and places a 4-sigma step exactly in 200 of 200,
# a 2.5-sigma step in 186 of 200; 3 marked 7 of 200 flat series.
PENALTY_PER_LOG_N = 6.0
NOISE_FLOOR = 0.005  # relative; perfectly stable synthetic series must not divide by ~0


@dataclass(frozen=True)
class ChangePoint:
    index: int  # position in the series where the new level starts
    before: float  # median of the segment before
    after: float  # median of the segment after

    @property
    def change(self) -> float:
        return stats.relative_change(self.before, self.after)


def detect(values: Sequence[float], min_shift: float = 0.02) -> list[ChangePoint]:
    """Level shifts in ``values`` (NaN-free, in run order) of at least ``min_shift`` relative.

    The series is scaled by its median and by a robust estimate of its run-to-run noise (MAD
    of successive differences), so one penalty works for every metric; Pelt with an l2 cost
    then finds the segmentation."""
    import ruptures

    y = np.asarray(values, dtype=float)
    if y.size < MIN_POINTS or not np.all(np.isfinite(y)):
        return []
    level = float(np.median(np.abs(y))) or 1.0
    scaled = y / level
    noise = stats.robust_sigma(np.diff(scaled)) / math.sqrt(2)
    signal = scaled / max(noise, NOISE_FLOOR)
    # KernelCPD with a linear kernel is Pelt with the l2 cost, in C (the pure-Python Pelt
    # takes ~1 s on 200 runs).
    algo = ruptures.KernelCPD(kernel="linear", min_size=MIN_SIZE).fit(signal.reshape(-1, 1))
    ends = algo.predict(pen=PENALTY_PER_LOG_N * math.log(y.size))
    bounds = [0, *ends]
    found = []
    for start, middle, stop in zip(bounds, bounds[1:], bounds[2:]):
        point = ChangePoint(int(middle), float(np.median(y[start:middle])),
                            float(np.median(y[middle:stop])))
        if abs(point.change) >= min_shift:
            found.append(point)
    return found
