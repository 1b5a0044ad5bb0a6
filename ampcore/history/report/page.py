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

from ampcore.history.speedup import run_speedup
from ampcore.history.storage import Problem, Run
from ampcore.judge.metrics import METRICS
from ampcore.judge.record import describe_loss_scale

if TYPE_CHECKING:
    from ampcore.history.compare import Comparison
    from ampcore.history.report.charts import Chart

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1000px;color:#222}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ccc;
padding:.2em .5em;text-align:left}th{background:#f3f3f3}img{max-width:100%;border:1px solid #ddd}
.bad{color:#b00020}.good{color:#1a7f37}.note{color:#555;font-size:.85em}code{font-size:.9em}"""

TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ title }}</title><style>{{ style }}</style></head><body>
<h1>{{ title }}</h1>
<p>{{ runs|length }} saved runs, from {{ runs[0].label }} to {{ runs[-1].label }}. Generated
{{ generated }} UTC by <code>ampcore report</code>.</p>
{% if problems %}<h2 class="bad">Files with problems</h2><ul>
{% for problem in problems %}<li class="bad">{{ problem }}</li>
{% endfor %}</ul>{% endif %}
<h2>Latest run: {{ runs[-1].path.name }}</h2>
<table><tr>{% for cell in latest.header %}<th>{{ cell }}</th>{% endfor %}</tr>
{% for row in latest.rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</table>
<h2>Latest run against its baseline</h2>
{% if verdicts %}<p class="{{ verdicts.css }}">{{ verdicts.headline }}</p>
<ul class="note">{% for line in verdicts.context %}<li>{{ line }}</li>{% endfor %}</ul>
{% if verdicts.rows %}<table><tr>{% for cell in verdicts.header %}<th>{{ cell }}</th>{% endfor %}</tr>
{% for row in verdicts.rows %}<tr class="{{ row.css }}">{% for cell in row.cells %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</table>{% endif %}
<p class="note">As <code>ampcore compare</code> judges it with the same thresholds; its exit
status would be {{ verdicts.status }}.{% if verdicts.not_available %} Not shown: {{
verdicts.not_available }} metric(s) not recorded in these runs (n/a), which <code>ampcore
compare</code> lists.{% endif %}</p>
{% else %}<p>Only one run: no baseline yet.</p>{% endif %}
<h2>Change points</h2>
{% if changes %}<table><tr><th>chart</th><th>series</th><th>first run of the new level</th>
<th>before</th><th>after</th><th>change</th></tr>
{% for c in changes %}<tr><td><a href="#{{ c.slug }}">{{ c.chart }}</a></td><td>{{ c.series }}</td><td>{{ c.run }} <span class="note">{{ c.file }}</span></td>
<td>{{ c.before }}</td><td>{{ c.after }}</td><td class="{{ c.css }}">{{ c.change }} {{ c.direction }}</td></tr>
{% endfor %}</table>{% else %}<p>None detected.</p>{% endif %}
<p class="note">Detected with ruptures (Pelt, l2 cost) on each series scaled by its robust
run-to-run noise; shifts under 2 % (1 % for absolute metrics such as accuracy) are not
marked. Green: better, red: worse, by the metric's direction; absolute metrics change in their
own unit. A series holds only runs that measured the same work; its name says what differs
from the others.</p>
<h2>Charts</h2>
{% for chart in charts %}<h3 id="{{ chart.slug }}">{{ chart.title }}</h3>
<img alt="{{ chart.title }}" src="data:image/png;base64,{{ chart.data }}">
<p class="note">{% if chart.caption %}{{ chart.caption }}; {% endif %}file:
<a href="{{ chart.slug }}.png">{{ chart.slug }}.png</a></p>
{% endfor %}
<h2>Runs</h2><details><summary>all saved runs read</summary><table>
<tr><th>#</th><th>date</th><th>commit</th><th>file</th></tr>
{% for run in runs %}<tr><td>{{ loop.index0 }}</td><td>{{ run.label }}</td>
<td>{{ run.commit or "-" }}</td><td>{{ run.path }}</td></tr>
{% endfor %}</table></details></body></html>
"""


def _fmt(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:.4g}{unit}"


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
        table.append([bench.name, _fmt(bench.median, " s"),
                      len(bench.rounds) if bench.rounds else "not saved",
                      _fmt(speedup.value if speedup else None, "x"),
                      *(m.format(m.value(record)) if record else "-" for m in rows),
                      (describe_loss_scale(record.grad_scaler) if record else None) or "-"])
    # Columns no benchmark of the run recorded (GPU counters on a CPU, DDP figures on one
    # GPU) only widen the table past the page.
    keep = [i for i in range(len(header)) if i < 4 or any(row[i] != "-" for row in table)]
    return {"header": [header[i] for i in keep], "rows": [[row[i] for i in keep] for row in table]}


def _verdicts(comparison: Comparison | None) -> dict | None:
    from ampcore.history import output

    if comparison is None:
        return None
    from ampcore.history.verdicts import NOT_AVAILABLE

    css = {"regression": "bad", "improvement": "good"}
    pairs = list(zip(output.rows(comparison), (m for v in comparison.verdicts for m in v.metrics)))
    rows = [{"cells": row, "css": css.get(m.status, "")} for row, m in pairs
            if m.status != NOT_AVAILABLE]
    return {"headline": output.headline(comparison), "status": comparison.exit_status,
            "css": "good" if comparison.exit_status == 0 else "bad",
            "context": [line.strip() for line in output.context_lines(comparison)],
            "header": output.HEADER, "rows": rows, "not_available": len(pairs) - len(rows)}


def _changes(runs: Sequence[Run], charts: Sequence[Chart]) -> list[dict]:
    found = []
    for chart in charts:
        for series in chart.series:
            for change in series.changes:
                run = runs[series.x[change.index]]
                worse = series.change_is_worse(change)
                found.append({
                    "slug": chart.slug, "chart": chart.title, "series": series.label,
                    "run": run.label, "file": run.path.name, "before": f"{change.before:.4g}",
                    "after": f"{change.after:.4g}", "change": series.change_text(change),
                    "css": "" if worse is None else ("bad" if worse else "good"),
                    "direction": "" if worse is None else ("(worse)" if worse else "(better)")})
    return found


def render_html(runs: Sequence[Run], charts: Sequence[Chart], images: dict[str, bytes],
                problems: Sequence[Problem], title: str,
                comparison: Comparison | None = None) -> str:
    """The page, from ``TEMPLATE`` with every value escaped."""
    import jinja2
    import markupsafe

    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined,
                                     trim_blocks=False, keep_trailing_newline=True)
    return environment.from_string(TEMPLATE).render(
        title=title, style=markupsafe.Markup(STYLE), runs=list(runs), problems=[str(p) for p in problems],
        generated=f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M}", latest=_latest(runs),
        verdicts=_verdicts(comparison), changes=_changes(runs, charts),
        charts=[{"slug": c.slug, "title": c.title, "caption": c.caption,
                 "data": base64.b64encode(images[c.slug]).decode("ascii")} for c in charts])
