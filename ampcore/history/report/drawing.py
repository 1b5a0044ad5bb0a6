"""Drawing one report chart as a PNG, with matplotlib's object API on the Agg canvas (no pyplot:
no global figure state, no display).

Readable by construction: series that lie on top of each other (fp32 and AMP at the same
accuracy) differ by marker and line style and are nudged apart on the x axis; change points are
coloured by direction (green better, red worse, from the metric's row) and labelled in the
metric's own unit (points of accuracy, not %); the x axis shows at most ``MAX_TICKS`` distinct
labels; the latest run's verdict is named in the legend, which sits under the axes."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ampcore.history.storage import Run

if TYPE_CHECKING:
    from ampcore.history.report.charts import Chart, Series

MAX_TICKS = 8  # run labels on the x axis; text is most of a chart's drawing time
BETTER, WORSE = "#1a7f37", "#b00020"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", (0, (1, 1)))
NUDGE = 0.08  # x offset between series, in runs
PLOT_HEIGHT, LEGEND_ROW = 3.8, 0.16  # inches


def tick_labels(runs: Sequence[Run], indices: Sequence[int]) -> list[str]:
    """Date and commit of each run; the year when the runs span more than one; a run number
    where two labels would otherwise read alike."""
    dates = [r.datetime for r in runs if r.datetime]
    long = bool(dates) and (max(dates) - min(dates)).days > 300
    labels = []
    for index in indices:
        run = runs[index]
        when = run.datetime.strftime("%Y-%m-%d" if long else "%m-%d %H:%M") if run.datetime else "?"
        labels.append(f"{when}\n{(run.commit or '?')[:7]}")
    repeated = {label for label in labels if labels.count(label) > 1}
    return [f"#{i} {label}" if label in repeated else label for i, label in zip(indices, labels)]


def _ticks(chart: Chart) -> list[int]:
    used = sorted({x for s in chart.series for x in s.x})
    step = max(1, -(-len(used) // MAX_TICKS))
    return used[::step]


def _legend_label(series: Series) -> str:
    verdict = series.verdict
    if verdict is None:
        return series.label
    change = f" {series.metric.format_change(verdict.change)}" if series.metric else ""
    return f"{series.label}; latest run: {verdict.status}{change}"


def _draw_series(axes, series: Series, position: int, offset: float) -> str:
    """One series: its line, band and whiskers; returns its colour."""
    x = np.asarray(series.x, dtype=float) + offset
    line = axes.plot(x, series.y, marker=MARKERS[position % len(MARKERS)], markersize=4,
                     linestyle=LINESTYLES[position % len(LINESTYLES)], linewidth=1.2,
                     fillstyle="full" if position % 2 == 0 else "none",
                     label=_legend_label(series))[0]
    colour = line.get_color()
    # The band and whiskers mean the same for every series: named once, by the first.
    first = position == 0
    if series.band:
        low, high = np.asarray(series.band).T
        axes.fill_between(x, low, high, alpha=0.25, color=colour, linewidth=0,
                          label="IQR of the rounds (band)" if first else "_")
    if series.whiskers:
        low, high = np.asarray(series.whiskers).T
        axes.plot(x, low, linestyle=":", linewidth=0.8, color=colour,
                  label="min/max of the rounds (dotted)" if first else "_")
        axes.plot(x, high, linestyle=":", linewidth=0.8, color=colour)
    if series.verdict is not None and series.verdict.status in ("regression", "improvement"):
        axes.plot(x[-1:], series.y[-1:], marker="o", markersize=11, fillstyle="none",
                  color=WORSE if series.verdict.status == "regression" else BETTER)
    return colour


def _draw_changes(axes, chart: Chart, series: Series) -> None:
    for change in series.changes:
        at = series.x[change.index] - 0.5
        worse = series.change_is_worse(change)
        colour = "#555555" if worse is None else (WORSE if worse else BETTER)
        name = f"{series.label} " if len(chart.series) > 1 else ""
        word = "" if worse is None else ("worse " if worse else "better ")
        axes.axvline(at, color=colour, linestyle="--", linewidth=1.2)
        axes.annotate(f"{word}{name}{series.change_text(change)}", (at, 1),
                      xycoords=("data", "axes fraction"), xytext=(3, -12 - 10 * chart.series.index(series)),
                      textcoords="offset points", color=colour, fontsize=8)


def draw(chart: Chart, runs: Sequence[Run]) -> bytes:
    """The chart as PNG bytes."""
    from matplotlib.figure import Figure

    # The legend goes under the axes, never over the data: one row per entry.
    entries = len(chart.series) + sum(bool(chart.series and x) for x in (
        chart.series[0].band if chart.series else None,
        chart.series[0].whiskers if chart.series else None))
    legend_height = LEGEND_ROW * entries
    height = PLOT_HEIGHT + legend_height
    figure = Figure(figsize=(9, height), dpi=100)
    # fixed margins (in inches): a layout engine would draw every figure twice
    figure.subplots_adjust(left=0.08, right=0.98, top=1 - 0.34 / height,
                           bottom=(0.8 + legend_height) / height)
    axes = figure.add_subplot()
    count = len(chart.series)
    for position, series in enumerate(chart.series):
        _draw_series(axes, series, position, (position - (count - 1) / 2) * NUDGE)
        _draw_changes(axes, chart, series)
    ticks = _ticks(chart)
    axes.set_xticks(ticks, tick_labels(runs, ticks), fontsize=7)
    axes.set_title(chart.title, fontsize=10)
    axes.set_ylabel(chart.ylabel, fontsize=8)
    axes.set_xlabel("run (date, commit)", fontsize=8)
    axes.grid(alpha=0.3)
    handles, labels = axes.get_legend_handles_labels()
    if handles:
        figure.legend(handles, labels, loc="lower left", bbox_to_anchor=(0.08, 0.01),
                      fontsize=7, frameon=False, borderaxespad=0)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
