"""The report's HTML page: one self-contained file that embeds every chart as a data URI, so it
opens from disk (or as a CI artifact) with no server, no script and no network.

Rendered from a Jinja2 template with autoescaping on: every benchmark name, file name, label
and message is data and arrives escaped (``<script>`` in a name is shown, never run). The
template lives here, as a string, so the page needs no package data."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from ampcore.history import output
from ampcore.history.report import summary
from ampcore.history.report.template import FIGURE, STYLE, TEMPLATE
from ampcore.core.units import human
from ampcore.history.speedup import run_speedup
from ampcore.history.storage import Problem, Run
from ampcore.judge.metrics import METRICS
from ampcore.judge.record import describe_loss_scale

if TYPE_CHECKING:
    from ampcore.history.compare import Comparison
    from ampcore.history.report.charts import Chart

def _latest(runs: Sequence[Run]) -> dict:
    """The newest run's figures: time and speedup, every METRICS row with a field, then the
    loss scale."""
    latest = runs[-1]
    rows = [m for m in METRICS.values() if m.field is not None]
    header = ["benchmark", "median time", "rounds", "speedup over fp32", *(m.label for m in rows),
              "loss scale"]
    table = []
    for bench in latest.benchmarks.values():
        speedup = run_speedup(latest, bench)
        record = bench.record
        table.append([bench.name, human(bench.median, "s"),
                      f"{len(bench.rounds):,}" if bench.rounds else "not saved",
                      human(speedup.value if speedup else None, "x"),
                      *(summary.shown(m, m.value(record)) if record else "-" for m in rows),
                      (describe_loss_scale(record.grad_scaler) if record else None) or "-"])
    # Columns no benchmark of the run recorded (GPU counters on a CPU, DDP figures on one
    # GPU) only widen the table past the page.
    keep = [i for i in range(len(header)) if i < 4 or any(row[i] != "-" for row in table)]
    return {"header": [header[i] for i in keep], "rows": [[row[i] for i in keep] for row in table]}


def _verdicts(comparison: Comparison | None, rows: list[summary.Row]) -> dict | None:
    """The full table: every judged metric (``rows``), humanised, its status a badge."""
    if comparison is None:
        return None
    total = sum(len(v.metrics) for v in comparison.verdicts)
    return {"status": comparison.exit_status, "rows": rows, "not_available": total - len(rows),
            "context": [line.strip() for line in output.context_lines(comparison)],
            "injected": list(comparison.injected)}  # shown in the banner, never folded


def _level(series, value: float) -> str:
    """A change point's level in its series' unit."""
    metric = series.metric
    return human(value, metric.unit if metric is not None else "")


def _changes(runs: Sequence[Run], charts: Sequence[Chart]) -> list[dict]:
    found = []
    for chart in charts:
        for series in chart.series:
            for change in series.changes:
                run = runs[series.x[change.index]]
                worse = series.change_is_worse(change)
                found.append({
                    "slug": chart.slug, "chart": chart.title, "series": series.label,
                    "run": run.label, "file": run.path.name,
                    "before": _level(series, change.before), "after": _level(series, change.after),
                    "change": series.change_text(change),
                    "css": "" if worse is None else ("bad" if worse else "good"),
                    "direction": "" if worse is None else ("(worse)" if worse else "(better)")})
    return found


def render_html(runs: Sequence[Run], charts: Sequence[Chart], images: dict[str, bytes],
                problems: Sequence[Problem], title: str,
                comparison: Comparison | None = None) -> str:
    """The page, from ``TEMPLATE`` with every value escaped: each chart embedded once, under
    the failing benchmark it shows or else among the other charts."""
    import jinja2
    import markupsafe

    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                                     trim_blocks=False, keep_trailing_newline=True)
    figure_template = environment.from_string(FIGURE)

    def figure(chart: Chart) -> markupsafe.Markup:
        data = base64.b64encode(images[chart.slug]).decode("ascii")
        return markupsafe.Markup(figure_template.render(chart={
            "slug": chart.slug, "title": chart.title, "caption": chart.caption, "data": data}))

    rows = summary.rows(comparison) if comparison is not None else []
    failing = summary.failing(comparison, rows, charts)
    above = {c.slug for f in failing for c in f.charts}
    return environment.from_string(TEMPLATE).render(
        title=title, style=markupsafe.Markup(STYLE), runs=list(runs),
        problems=[str(p) for p in problems],
        generated=f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M}",
        latest=_latest(runs), banner=summary.banner(comparison), badge=summary.badge,
        failing=failing, verdicts=_verdicts(comparison, rows), header=output.HEADER, figure=figure,
        changes=_changes(runs, charts), shown_above=[c for c in charts if c.slug in above],
        rest=[c for c in charts if c.slug not in above])
