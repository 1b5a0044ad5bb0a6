"""The report page's Jinja2 template and style, kept as strings so the page needs no package
data. Order: the verdict banner, the failing benchmarks each with its charts, the full table of
judged metrics (long evidence folded into ``<details>``), the latest run's figures, change
points, the other charts and the runs read. Statuses are text badges, never emoji."""

STYLE = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1000px;color:#222}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}td,th{border:1px solid #ccc;
padding:.2em .5em;text-align:left;vertical-align:top}th{background:#f3f3f3}
img{max-width:100%;border:1px solid #ddd}.bad{color:#b00020}.good{color:#1a7f37}
.note{color:#555;font-size:.85em}code{font-size:.9em}
.badge{display:inline-block;padding:.05em .45em;border-radius:3px;font-weight:700;
font-size:.8em;letter-spacing:.03em;color:#fff;background:#666;white-space:nowrap}
.b-fail{background:#b00020}.b-pass{background:#1a7f37}.b-ok{background:#fff;color:#1a7f37;
border:1px solid #1a7f37}.b-other{background:#666}
.banner{border:2px solid #666;border-radius:6px;padding:.6em 1em;margin:1em 0}
.banner.b-fail{border-color:#b00020;background:#fdf0f2}.banner.b-pass{border-color:#1a7f37;
background:#eef8f0}.banner .badge{font-size:1.1em}.banner h2{margin:.1em 0 .3em;font-size:1.3em}
.counts span{margin-right:1em}.failing{margin:.8em 0 1.5em}.failing p{margin:.3em 0}
details summary{cursor:pointer}td details{max-width:30em}"""

TEMPLATE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ title }}</title><style>{{ style }}</style></head><body>
<h1>{{ title }}</h1>
<section class="banner {{ banner.badge.css }}" id="verdict">
<h2><span class="badge {{ banner.badge.css }}">{{ banner.badge.text }}</span>
Latest run against its baseline: {{ banner.word }}</h2>
<p class="{{ 'bad' if banner.badge.css == 'b-fail' else '' }}"><strong>{{
banner.headline }}</strong></p>
{% if banner.counts %}<p class="counts">{{ banner.benchmarks }} benchmark(s) judged; metrics:
{% for status, count in banner.counts %}<span><span class="badge {{ badge(status).css }}">{{
badge(status).text }}</span> {{ count }} {{ status }}</span>{% endfor %}</p>{% endif %}
{% if verdicts and verdicts.injected %}<p class="bad" id="injected"><strong>INJECTED
regressions in the candidate (a test of the gate, not a clean run):</strong> {{
verdicts.injected|join("; ") }}</p>{% endif %}
{% if verdicts %}<details><summary>runs compared, thresholds and notes</summary>
<ul class="note">{% for line in verdicts.context %}<li>{{ line }}</li>{% endfor %}</ul>
</details>{% endif %}
<p class="note">{{ runs|length }} saved runs, from {{ runs[0].label }} to {{ runs[-1].label }}.
Generated {{ generated }} UTC by <code>ampcore report</code>.</p>
</section>
{% if problems %}<h2 class="bad">Files with problems</h2><ul>
{% for problem in problems %}<li class="bad">{{ problem }}</li>
{% endfor %}</ul>{% endif %}
{% if failing %}<h2 id="failing">Failing benchmarks ({{ failing|length }})</h2>
{% for f in failing %}<div class="failing"><p><span class="badge {{ f.badge.css }}">{{
f.badge.text }}</span> <strong>{{ f.name }}</strong>: {{ f.label }}{% if f.change %}
<span class="bad"><strong>{{ f.change }}</strong></span>{% endif %} <span class="note">({{
f.detail }})</span></p>
{% for chart in f.charts %}{{ figure(chart) }}{% endfor %}</div>
{% endfor %}{% endif %}
{% if verdicts %}<h2 id="all-metrics">Every judged metric of the latest run</h2>
{% if verdicts.rows %}<table><tr>{% for cell in header %}<th>{{ cell }}</th>{% endfor %}</tr>
{% for r in verdicts.rows %}<tr class="{{ r.css }}"><td>{{ r.name }}</td><td>{{ r.metric }}</td>
<td><span class="badge {{ r.badge.css }}">{{ r.badge.text }}</span></td><td>{{ r.baseline }}</td>
<td>{{ r.candidate }}</td><td>{{ r.change }}</td><td>{{ r.threshold }}</td><td>{% if
r.evidence_short %}<details><summary>{{ r.evidence_short }}</summary>{{ r.evidence }}</details>{%
else %}{{ r.evidence }}{% endif %}</td><td>{{ r.method }}</td></tr>
{% endfor %}</table>{% endif %}
<p class="note">As <code>ampcore compare</code> judges it with the same thresholds; its exit
status would be {{ verdicts.status }}.{% if verdicts.not_available %} Not shown: {{
verdicts.not_available }} metric(s) not recorded in these runs (n/a), which <code>ampcore
compare</code> lists.{% endif %}</p>{% endif %}
<h2>Latest run: {{ runs[-1].path.name }}</h2>
<table><tr>{% for cell in latest.header %}<th>{{ cell }}</th>{% endfor %}</tr>
{% for row in latest.rows %}<tr>{% for cell in row %}<td>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}</table>
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
{% if shown_above %}<p class="note">Shown above, under the failing benchmarks: {% for c in
shown_above %}<a href="#{{ c.slug }}">{{ c.title }}</a>{{ "; " if not loop.last }}{% endfor
%}.</p>{% endif %}
{% for chart in rest %}{{ figure(chart) }}{% endfor %}
<h2>Runs</h2><details><summary>all saved runs read</summary><table>
<tr><th>#</th><th>date</th><th>commit</th><th>file</th></tr>
{% for run in runs %}<tr><td>{{ loop.index0 }}</td><td>{{ run.label }}</td>
<td>{{ run.commit or "-" }}</td><td>{{ run.path }}</td></tr>
{% endfor %}</table></details></body></html>
"""

FIGURE = """<h3 id="{{ chart.slug }}">{{ chart.title }}</h3>
<img alt="{{ chart.title }}" src="data:image/png;base64,{{ chart.data }}">
<p class="note">{% if chart.caption %}{{ chart.caption }}; {% endif %}file:
<a href="{{ chart.slug }}.png">{{ chart.slug }}.png</a></p>
"""
