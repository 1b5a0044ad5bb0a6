"""``ampcore report``: PNG charts of a saved history and one self-contained HTML page.

Figures are drawn by ``ampcore.history.report.drawing``; the page (``ampcore.history.report.page``) embeds
every PNG as a data URI, so it opens from disk with no server and no network, and the PNGs
are also written beside it. The latest run is judged against its baseline as ``ampcore
compare`` would, and each series carries that verdict."""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

from ampcore.history import changepoints, matching
from ampcore.history.compare import Comparison, compare
from ampcore.history.config import GateConfig
from ampcore.history.report.charts import MIN_SHIFT_ABSOLUTE, Chart, Series
from ampcore.history.report.drawing import draw
from ampcore.core.files import is_stdout, write_new_directory
from ampcore.history.report.page import render_html
from ampcore.history.report.progress import track
from ampcore.history.speedup import run_speedup
from ampcore.history.storage import Benchmark, Problem, Run
from ampcore.judge.metrics import METRICS, Metric

__all__ = ["Chart", "Series", "build_report", "collect_charts", "draw", "latest_comparison",
           "render_report"]

def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "chart"


def _workload(bench: Benchmark) -> str:
    return bench.workload or bench.group or matching.function_name(bench)


def _benchmark_order(runs: Sequence[Run]) -> list[str]:
    return list(dict.fromkeys(k for run in runs for k in run.benchmarks))


# A benchmark's points, split by the comparison key (``matching.series_key``: what was measured
# and where): a series never joins runs compare would refuse, so a model, batch-size, GPU or
# step-mode change is no "change point".
Points = dict[tuple | None, list[tuple[int, Benchmark]]]


def _points(runs: Sequence[Run], key: str) -> Points:
    points: Points = {}
    for index, run in enumerate(runs):
        bench = run.benchmarks.get(key)
        if bench is not None:
            points.setdefault(matching.hashable(matching.series_key(run, bench)),
                              []).append((index, bench))
    return points


def _labels(keys: Sequence[tuple | None]) -> dict[tuple | None, str]:
    """Each measured key named by the fields in which it differs from the others."""
    as_dicts = [dict(k) if k is not None else None for k in keys]
    return {k: matching.series_label(d, as_dicts) for k, d in zip(keys, as_dicts)}


def _named(base: str, detail: str) -> str:
    return f"{base} ({detail})" if detail else base


def time_chart(runs: Sequence[Run], key: str) -> Chart:
    """Median round time of one benchmark over the runs, IQR as a band, min/max dotted."""
    points = _points(runs, key)
    labels = _labels(list(points))
    series = []
    for measured, members in points.items():
        line = Series(_named("median", labels[measured]), band=[], whiskers=[], key=key,
                      metric=METRICS.get("time"))
        for index, bench in members:
            line.x.append(index)
            line.y.append(bench.median)
            line.band.append((_or(bench.q1, bench.median), _or(bench.q3, bench.median)))
            line.whiskers.append((_or(bench.min, bench.median), _or(bench.max, bench.median)))
        series.append(line)
    name = next(run.benchmarks[key].name for run in reversed(runs) if key in run.benchmarks)
    return Chart(f"time-{_slug(name)}", f"{name}: median round time", "seconds", series,
                 "band: interquartile range of the rounds; dotted: min/max")


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _value(metric: Metric | None, run: Run, bench: Benchmark) -> float | None:
    """One point of a per-workload chart: the within-run speedup (``metric`` None) or the
    row's record field in its display unit."""
    if metric is None:
        speedup = run_speedup(run, bench)
        return speedup.value if speedup else None
    value = metric.value(bench.record)
    return None if value is None else value / metric.scale


def workload_chart(runs: Sequence[Run], workload: str, members: Sequence[str],
                   metric: Metric | None) -> Chart | None:
    """One series per benchmark and measured work of ``workload``: the speedup over fp32
    (``metric`` None) or a METRICS row; None when no run recorded it. Series of one
    precision are named by what they measured differently."""
    groups = [(group[0][1].precision or group[0][1].name, measured, group, key)
              for key in members for measured, group in _points(runs, key).items()]
    alike: dict[str, list[tuple | None]] = {}
    for base, measured, _, _ in groups:
        alike.setdefault(base, []).append(measured)
    labels = {base: _labels(keys) for base, keys in alike.items()}
    series = []
    for base, measured, group, key in groups:
        line = Series(_named(base, labels[base][measured]), key=key,
                      metric=metric if metric is not None else METRICS.get("speedup"))
        if metric is not None and not metric.relative:
            line.min_shift = MIN_SHIFT_ABSOLUTE
        for index, bench in group:
            value = _value(metric, runs[index], bench)
            if value is not None:
                line.x.append(index)
                line.y.append(value)
        if line.y:
            series.append(line)
    if not series:
        return None
    if metric is None:
        return Chart(f"speedup-{_slug(workload)}", f"{workload}: speedup over fp32",
                     "median(fp32) / median(precision)", series,
                     "measured within each run: ratio of the median round times")
    return Chart(f"{metric.name}-{_slug(workload)}", f"{workload}: {metric.label}",
                 metric.unit or metric.label, series)


def latest_comparison(runs: Sequence[Run], config: GateConfig | None = None) -> Comparison | None:
    """The newest run against its baseline, chosen and judged as ``ampcore compare`` does
    (None with fewer than two runs)."""
    if len(runs) < 2:
        return None
    baseline, notes = matching.choose_baseline(runs[:-1], runs[-1])
    return compare(baseline, runs[-1], config or GateConfig(), notes=notes, time_ci=False)


def _attach_verdicts(charts: Sequence[Chart], comparison: Comparison | None,
                     latest: int) -> None:
    """Give each series whose last point is the latest run that run's verdict on its row."""
    if comparison is None:
        return
    found = {(v.key, m.metric): m for v in comparison.verdicts for m in v.metrics}
    for chart in charts:
        for series in chart.series:
            if series.x and series.x[-1] == latest and series.metric is not None:
                series.verdict = found.get((series.key, series.metric.name))


def collect_charts(runs: Sequence[Run], comparison: Comparison | None = None) -> list[Chart]:
    """Every chart the report draws, with its series and detected change points: the time
    of each benchmark; per workload the speedup and every charted METRICS row with a field.
    With ``comparison`` (``latest_comparison``), series carry the latest run's verdicts."""
    keys = _benchmark_order(runs)
    charts = [time_chart(runs, key) for key in keys]
    workloads: dict[str, list[str]] = {}
    for key in keys:
        bench = next(run.benchmarks[key] for run in runs if key in run.benchmarks)
        workloads.setdefault(_workload(bench), []).append(key)
    rows = [None, *(m for m in METRICS.values() if m.chart and m.field is not None)]
    for workload, members in workloads.items():
        charts += [c for metric in rows
                   if (c := workload_chart(runs, workload, members, metric)) is not None]
    for chart in charts:
        for series in chart.series:
            series.changes = changepoints.detect(series.y, min_shift=series.min_shift)
    _attach_verdicts(charts, comparison, len(runs) - 1)
    return charts


def _unique_slugs(charts: Sequence[Chart]) -> None:
    seen: dict[str, int] = {}
    for chart in charts:  # two benchmarks may slug alike
        count = seen.get(chart.slug, 0)
        seen[chart.slug] = count + 1
        chart.slug = chart.slug if count == 0 else f"{chart.slug}-{count + 1}"


def render_report(runs: Sequence[Run], problems: Sequence[Problem] = (),
                  title: str = "ampcore benchmark history", progress: bool = False,
                  config: GateConfig | None = None) -> tuple[str, dict[str, bytes]]:
    """The page and its charts (slug -> PNG bytes); a progress bar over the charts drawn."""
    comparison = latest_comparison(runs, config)
    charts = collect_charts(runs, comparison)
    _unique_slugs(charts)
    images = {chart.slug: draw(chart, runs)
              for chart in track(charts, "report: charts", progress)}
    return render_html(runs, charts, images, problems, title, comparison), images


def build_report(runs: Sequence[Run], out: Path, problems: Sequence[Problem] = (),
                 title: str = "ampcore benchmark history", progress: bool = False,
                 config: GateConfig | None = None) -> Path:
    """Write ``index.html`` and one PNG per chart into the new directory ``out``, all at once
    (built beside it, then renamed: never over existing files); ``-`` writes the page alone,
    which embeds every chart, to stdout. Returns the page's path."""
    page, images = render_report(runs, problems, title, progress, config)
    if is_stdout(out):
        sys.stdout.write(page)
        return out
    files = {f"{slug}.png": png for slug, png in images.items()}
    files["index.html"] = page.encode("utf-8")
    write_new_directory(out, files)
    return out / "index.html"
