"""``ampcore report``: PNG charts of a saved history and one self-contained HTML page.

Figures are drawn with matplotlib's object API on the Agg canvas (no pyplot, so no global
figure state and no display needed); the page embeds every PNG as a data URI, so it opens
from disk with no server and no network, and the PNGs are also written beside it."""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ampcore.history import changepoints
from ampcore.history.compare import run_speedup, stats_number
from ampcore.history.storage import Problem, Run

MAX_TICKS = 8  # run labels on the x axis; text is most of a chart's drawing time
MIB = 2**20


@dataclass
class Series:
    label: str
    x: list[int] = field(default_factory=list)  # run positions in the history
    y: list[float] = field(default_factory=list)
    band: list[tuple[float, float]] | None = None  # IQR per point
    whiskers: list[tuple[float, float]] | None = None  # min/max per point
    changes: list[changepoints.ChangePoint] = field(default_factory=list)


@dataclass
class Chart:
    slug: str
    title: str
    ylabel: str
    series: list[Series]
    caption: str = ""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower() or "chart"


def _workload(run_bench) -> str:
    return run_bench.workload or run_bench.group or run_bench.key.split("[")[0]


def _benchmark_order(runs: Sequence[Run]) -> list[str]:
    return list(dict.fromkeys(k for run in runs for k in run.benchmarks))


def collect_charts(runs: Sequence[Run]) -> list[Chart]:
    """Every chart the report draws, with its series and detected change points."""
    keys = _benchmark_order(runs)
    charts: list[Chart] = []
    for key in keys:
        series = Series("median", band=[], whiskers=[])
        name = key
        for index, run in enumerate(runs):
            bench = run.benchmarks.get(key)
            if bench is None:
                continue
            name = bench.name
            series.x.append(index)
            series.y.append(bench.median)
            series.band.append((bench.q1 if bench.q1 is not None else bench.median,
                                bench.q3 if bench.q3 is not None else bench.median))
            series.whiskers.append((bench.min if bench.min is not None else bench.median,
                                    bench.max if bench.max is not None else bench.median))
        charts.append(Chart(f"time-{_slug(name)}", f"{name}: median round time", "seconds",
                            [series], "band: interquartile range of the rounds; dotted: min/max"))

    workloads: dict[str, list[str]] = {}
    for key in keys:
        bench = next(run.benchmarks[key] for run in runs if key in run.benchmarks)
        workloads.setdefault(_workload(bench), []).append(key)

    for workload, members in workloads.items():
        per_metric: dict[str, list[Series]] = {"speedup": [], "accuracy": [], "memory": []}
        for key in members:
            speed, acc, mem = Series(key), Series(key), Series(key)
            for index, run in enumerate(runs):
                bench = run.benchmarks.get(key)
                if bench is None:
                    continue
                speed.label = acc.label = mem.label = bench.precision or bench.name
                speedup = run_speedup(run, bench)
                if speedup is not None:
                    speed.x.append(index)
                    speed.y.append(speedup.value)
                if (value := stats_number(bench.extra("final_accuracy"))) is not None:
                    acc.x.append(index)
                    acc.y.append(value)
                if (value := stats_number(bench.extra("peak_memory_bytes"))) is not None:
                    mem.x.append(index)
                    mem.y.append(value / MIB)
            per_metric["speedup"].append(speed)
            per_metric["accuracy"].append(acc)
            per_metric["memory"].append(mem)
        specs = {"speedup": ("speedup over fp32", "median(fp32) / median(precision)",
                             "measured within each run: ratio of the median round times"),
                 "accuracy": ("final test accuracy", "accuracy", ""),
                 "memory": ("peak device memory", "MiB", "")}
        for metric, series_list in per_metric.items():
            drawn = [s for s in series_list if s.y]
            if drawn:
                title, ylabel, caption = specs[metric]
                charts.append(Chart(f"{metric}-{_slug(workload)}", f"{workload}: {title}",
                                    ylabel, drawn, caption))

    for chart in charts:
        for series in chart.series:
            # accuracy moves in absolute points; a 2 % relative floor suits the rest
            series.changes = changepoints.detect(series.y, min_shift=0.01 if "accuracy" in
                                                 chart.slug else 0.02)
    return charts


def _tick_label(run: Run) -> str:
    when = run.datetime.strftime("%m-%d %H:%M") if run.datetime else "?"
    return f"{when}\n{(run.commit or '?')[:7]}"


def draw(chart: Chart, runs: Sequence[Run]) -> bytes:
    """The chart as PNG bytes."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 3.6), dpi=100)
    # fixed margins: a layout engine would draw every figure twice
    figure.subplots_adjust(left=0.08, right=0.98, top=0.91, bottom=0.2)
    axes = figure.add_subplot()
    for series in chart.series:
        x = np.asarray(series.x)
        line = axes.plot(x, series.y, marker="o", markersize=3, linewidth=1.2,
                         label=series.label)[0]
        if series.band:
            low, high = np.asarray(series.band).T
            axes.fill_between(x, low, high, alpha=0.25, color=line.get_color(), linewidth=0,
                              label="IQR")
        if series.whiskers:
            low, high = np.asarray(series.whiskers).T
            axes.plot(x, low, linestyle=":", linewidth=0.8, color=line.get_color(), label="min/max")
            axes.plot(x, high, linestyle=":", linewidth=0.8, color=line.get_color())
        for change in series.changes:
            at = series.x[change.index] - 0.5
            # in the series' colour, named when the chart has several
            label = f"{series.label} " if len(chart.series) > 1 else ""
            axes.axvline(at, color=line.get_color(), linestyle="--", linewidth=1.2)
            axes.annotate(f"change: {label}{change.change * 100:+.1f} %", (at, 1),
                          xycoords=("data", "axes fraction"), xytext=(3, -12),
                          textcoords="offset points", color=line.get_color(), fontsize=8)
    used = sorted({x for s in chart.series for x in s.x})
    step = max(1, -(-len(used) // MAX_TICKS))
    ticks = used[::step]
    axes.set_xticks(ticks, [_tick_label(runs[i]) for i in ticks], fontsize=7)
    axes.set_title(chart.title, fontsize=10)
    axes.set_ylabel(chart.ylabel, fontsize=8)
    axes.set_xlabel("run (date, commit)", fontsize=8)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="best")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1000px;color:#222}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ccc;
padding:.2em .5em;text-align:left}th{background:#f3f3f3}img{max-width:100%;border:1px solid #ddd}
.bad{color:#b00020}.note{color:#555;font-size:.85em}code{font-size:.9em}"""


def _fmt(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:.4g}{unit}"


def _latest_table(runs: Sequence[Run]) -> list[str]:
    latest = runs[-1]
    lines = ["<table><tr><th>benchmark</th><th>median time</th><th>rounds</th>"
             "<th>speedup over fp32</th><th>accuracy</th><th>peak memory</th>"
             "<th>skipped steps</th></tr>"]
    for bench in latest.benchmarks.values():
        speedup = run_speedup(latest, bench)
        memory = stats_number(bench.extra("peak_memory_bytes"))
        lines.append(
            f"<tr><td>{html.escape(bench.name)}</td><td>{_fmt(bench.median, ' s')}</td>"
            f"<td>{len(bench.rounds) if bench.rounds else 'not saved'}</td>"
            f"<td>{_fmt(speedup.value if speedup else None, 'x')}</td>"
            f"<td>{_fmt(stats_number(bench.extra('final_accuracy')))}</td>"
            f"<td>{_fmt(memory / MIB if memory is not None else None, ' MiB')}</td>"
            f"<td>{_fmt(stats_number(bench.extra('skipped_steps')))}</td></tr>")
    lines.append("</table>")
    return lines


def render_html(runs: Sequence[Run], charts: Sequence[Chart], images: dict[str, bytes],
                problems: Sequence[Problem], title: str) -> str:
    first, last = runs[0], runs[-1]
    out = ["<!DOCTYPE html>", "<html lang=\"en\"><head><meta charset=\"utf-8\">",
           f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>",
           f"<h1>{html.escape(title)}</h1>",
           f"<p>{len(runs)} saved runs, from {html.escape(first.label)} to "
           f"{html.escape(last.label)}. Generated {datetime.now(timezone.utc):%Y-%m-%d %H:%M} "
           "UTC by <code>ampcore report</code>.</p>"]
    if problems:
        out.append("<h2 class=\"bad\">Files with problems</h2><ul>")
        out += [f"<li class=\"bad\">{html.escape(str(p))}</li>" for p in problems]
        out.append("</ul>")
    out.append(f"<h2>Latest run: {html.escape(last.path.name)}</h2>")
    out += _latest_table(runs)

    out.append("<h2>Change points</h2>")
    rows = [(chart, series, change) for chart in charts for series in chart.series
            for change in series.changes]
    if rows:
        out.append("<table><tr><th>chart</th><th>series</th><th>first run of the new level</th>"
                   "<th>before</th><th>after</th><th>change</th></tr>")
        for chart, series, change in rows:
            run = runs[series.x[change.index]]
            out.append(f"<tr><td><a href=\"#{chart.slug}\">{html.escape(chart.title)}</a></td>"
                       f"<td>{html.escape(series.label)}</td><td>{html.escape(run.label)} "
                       f"<span class=\"note\">{html.escape(run.path.name)}</span></td>"
                       f"<td>{change.before:.4g}</td><td>{change.after:.4g}</td>"
                       f"<td>{change.change * 100:+.1f} %</td></tr>")
        out.append("</table>")
    else:
        out.append("<p>None detected.</p>")
    out.append("<p class=\"note\">Detected with ruptures (Pelt, l2 cost) on each series scaled "
               "by its robust run-to-run noise; shifts under 2 % (1 % for accuracy) are not "
               "marked.</p>")

    out.append("<h2>Charts</h2>")
    for chart in charts:
        data = base64.b64encode(images[chart.slug]).decode("ascii")
        out.append(f"<h3 id=\"{chart.slug}\">{html.escape(chart.title)}</h3>")
        out.append(f"<img alt=\"{html.escape(chart.title)}\" src=\"data:image/png;base64,{data}\">")
        note = f"{chart.caption}; " if chart.caption else ""
        out.append(f"<p class=\"note\">{html.escape(note)}file: <a href=\"{chart.slug}.png\">"
                   f"{chart.slug}.png</a></p>")

    out.append("<h2>Runs</h2><details><summary>all saved runs read</summary><table>"
               "<tr><th>#</th><th>date</th><th>commit</th><th>file</th></tr>")
    out += [f"<tr><td>{i}</td><td>{html.escape(r.label)}</td><td>{html.escape(r.commit or '-')}"
            f"</td><td>{html.escape(str(r.path))}</td></tr>" for i, r in enumerate(runs)]
    out.append("</table></details></body></html>")
    return "\n".join(out) + "\n"


def build_report(runs: Sequence[Run], out: Path, problems: Sequence[Problem] = (),
                 title: str = "ampcore benchmark history") -> Path:
    """Write ``index.html`` and one PNG per chart into ``out``; returns the page's path.
    Every file is created new ("x" mode): an existing one is never replaced."""
    charts = collect_charts(runs)
    seen: dict[str, int] = {}
    for chart in charts:  # two benchmarks may slug alike
        count = seen.get(chart.slug, 0)
        seen[chart.slug] = count + 1
        chart.slug = chart.slug if count == 0 else f"{chart.slug}-{count + 1}"
    out.mkdir(parents=True, exist_ok=True)
    images = {}
    for chart in charts:
        images[chart.slug] = draw(chart, runs)
        with (out / f"{chart.slug}.png").open("xb") as handle:
            handle.write(images[chart.slug])
    page = out / "index.html"
    with page.open("x", encoding="utf-8") as handle:
        handle.write(render_html(runs, charts, images, problems, title))
    return page
