"""What a report chart holds: series of one metric over the history, with their level shifts
and the latest verdict. Built by ``build``, drawn by ``drawing``, placed by ``page``."""

from __future__ import annotations

from dataclasses import dataclass, field

from ampcore.history import changepoints
from ampcore.history.compare import MetricVerdict
from ampcore.judge.metrics import Metric

# Smallest level shift marked: accuracy moves in absolute points, the rest relative.
MIN_SHIFT_RELATIVE, MIN_SHIFT_ABSOLUTE = 0.02, 0.01


@dataclass
class Series:
    label: str
    x: list[int] = field(default_factory=list)  # run positions in the history
    y: list[float] = field(default_factory=list)  # in the metric's display unit
    band: list[tuple[float, float]] | None = None  # IQR per point
    whiskers: list[tuple[float, float]] | None = None  # min/max per point
    changes: list[changepoints.ChangePoint] = field(default_factory=list)
    min_shift: float = MIN_SHIFT_RELATIVE
    key: str | None = None  # the benchmark it follows
    metric: Metric | None = None  # the METRICS row it shows
    verdict: MetricVerdict | None = None  # the latest run's, when it is this series' last point

    def change_is_worse(self, point: changepoints.ChangePoint) -> bool | None:
        """Whether the level shift made the metric worse (None: no row to tell)."""
        if self.metric is None or point.after == point.before:
            return None
        return self.metric.is_worse(self.metric.change(point.before, point.after))

    def change_text(self, point: changepoints.ChangePoint) -> str:
        """The shift in the row's terms: relative in %, absolute in its unit."""
        if self.metric is None or self.metric.relative:
            return f"{point.change * 100:+.1f} %"
        return self.metric.format_change((point.after - point.before) * self.metric.scale)


@dataclass
class Chart:
    slug: str
    title: str
    ylabel: str
    series: list[Series]
    caption: str = ""
