"""What the report page leads with: the verdict (a banner with counts), the failing benchmarks
with the charts that show them, and every judged metric as table rows.

Statuses are shown as text badges in coloured boxes (``FAIL``, ``PASS``), never as emoji, which
a browser without an emoji font draws as empty boxes. A status this module does not know (one a
newer ``compare`` adds) is shown as its own word, in a neutral badge, and counted as itself."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ampcore.core.units import human, human_change, human_text
from ampcore.history.verdicts import IMPROVEMENT, NOT_AVAILABLE, OK, REGRESSION
from ampcore.judge.metrics import METRICS, Metric

if TYPE_CHECKING:
    from ampcore.history.compare import BenchmarkVerdict, Comparison, MetricVerdict
    from ampcore.history.report.charts import Chart

# status -> (badge text, badge css, row css); anything else: its own word, neutral
BADGES = {REGRESSION: ("FAIL", "b-fail", "bad"), IMPROVEMENT: ("BETTER", "b-pass", "good"),
          OK: ("PASS", "b-ok", ""), NOT_AVAILABLE: ("N/A", "b-other", "")}
ORDER = {REGRESSION: 0, IMPROVEMENT: 2, OK: 3, NOT_AVAILABLE: 4}  # unknown statuses: 1
EVIDENCE_SHOWN = 60  # characters of evidence shown before it is folded into <details>


@dataclass
class Badge:
    text: str
    css: str


def badge(status: str) -> Badge:
    """The badge of a metric's status; an unknown status is its own word, upper-cased."""
    text, css, _ = BADGES.get(status, (status.upper() or "?", "b-other", ""))
    return Badge(text, css)


def metric_of(name: str) -> Metric | None:
    return METRICS.get(name)


def shown(metric: Metric | None, value: float | None) -> str:
    """A judged value in its metric's unit, humanised."""
    return human(value) if metric is None else metric.format(value)


def change_text(metric: Metric | None, change: float | None) -> str:
    if metric is None:
        return human_change(change, relative=False)
    return metric.format_change(change)


def evidence_text(m: MetricVerdict) -> str:
    from ampcore.history import output

    try:
        return human_text(output.evidence(m))
    except (KeyError, ValueError, TypeError):  # a row this version cannot describe
        return human_text(m.note or "-")


@dataclass
class Row:
    """One judged metric of the full table."""
    name: str
    metric: str
    status: str
    badge: Badge
    css: str
    baseline: str
    candidate: str
    change: str
    threshold: str
    evidence: str
    evidence_short: str  # empty when the evidence is short enough to show whole
    method: str
    key: str = ""
    label: str = ""


def row(verdict: BenchmarkVerdict, m: MetricVerdict) -> Row:
    metric = metric_of(m.metric)
    text = evidence_text(m)
    short = "" if len(text) <= EVIDENCE_SHOWN else text[:EVIDENCE_SHOWN].rstrip() + " ..."
    threshold = metric.format_threshold(m.threshold) if metric else str(m.threshold or "-")
    css = BADGES.get(m.status, ("", "", ""))[2]
    return Row(verdict.name, m.metric, m.status, badge(m.status), css,
               shown(metric, m.baseline), shown(metric, m.candidate), change_text(metric, m.change),
               threshold, text, short, m.method or "-", verdict.key,
               metric.label if metric else m.metric)


def rows(comparison: Comparison) -> list[Row]:
    """Every judged metric (n/a left out), regressions first, then other non-passing
    statuses, improvements, passes; the benchmarks' order kept within each."""
    found = [row(v, m) for v in comparison.verdicts for m in v.metrics if m.status != NOT_AVAILABLE]
    return sorted(found, key=lambda r: ORDER.get(r.status, 1))


@dataclass
class Banner:
    word: str  # pass, regression, missing, not compared, no baseline
    badge: Badge
    headline: str
    counts: list[tuple[str, int]] = field(default_factory=list)
    benchmarks: int = 0


def _word(comparison: Comparison | None) -> tuple[str, Badge]:
    if comparison is None:
        return "no baseline yet", Badge("ONE RUN", "b-other")
    outcome = comparison.outcome
    if outcome == "regression":
        return "regression", Badge("FAIL", "b-fail")
    if outcome == "missing":
        return "benchmarks missing", Badge("FAIL", "b-fail")
    if outcome in ("refused", "no baseline"):
        return "not compared", Badge("STOP", "b-fail")
    if comparison.exit_status == 0:
        return "pass", Badge("PASS", "b-pass")
    return outcome, Badge(outcome.upper(), "b-other")


def banner(comparison: Comparison | None) -> Banner:
    """The verdict, its headline as ``ampcore compare`` words it, and how many metrics ended
    in each status (regressions first)."""
    from ampcore.history import output

    word, mark = _word(comparison)
    if comparison is None:
        return Banner(word, mark, "Only one run: no baseline yet.")
    headline = output.headline(comparison, icons=("", "", "")).strip()  # the badge says it
    counts = Counter(m.status for v in comparison.verdicts for m in v.metrics)
    ordered = sorted(counts.items(), key=lambda item: (ORDER.get(item[0], 1), item[0]))
    return Banner(word, mark, headline, ordered, len(comparison.verdicts))


@dataclass
class Failing:
    """One line of the failing list: a regressed metric of a benchmark, or a benchmark of the
    baseline the candidate lacks; the charts that show it follow the line."""
    name: str
    label: str  # the metric, or what is wrong
    change: str
    detail: str
    badge: Badge
    charts: list[Chart]


def _charts_of(key: str, metric: str, charts: Sequence[Chart]) -> list[Chart]:
    return [c for c in charts
            if any(s.key == key and s.metric is not None and s.metric.name == metric
                   for s in c.series)]


def failing(comparison: Comparison | None, table: Sequence[Row],
            charts: Sequence[Chart]) -> list[Failing]:
    """Each regressed metric of ``table`` (the comparison's ``rows``, built once by the page)
    and each of a status this module does not know, such as unstable, then each missing
    benchmark, with its charts (the benchmark's series of that metric; a missing one's time);
    a chart already placed is not repeated."""
    if comparison is None:
        return []
    lines = [(r.key, r.metric, Failing(r.name, r.label, r.change, f"{r.baseline} to "
                                       f"{r.candidate}; allowed {r.threshold}", r.badge, []))
             for r in table if r.status == REGRESSION or r.status not in BADGES]
    lines += [(key, "time", Failing(key.rsplit("::", 1)[-1], "missing from the candidate", "",
                                    "in the baseline, not in the latest run: the gate fails "
                                    "(pass --allow-missing if intended)",
                                    Badge("MISSING", "b-fail"), [])) for key in comparison.missing]
    placed: set[str] = set()
    for key, metric, line in lines:
        line.charts = [c for c in _charts_of(key, metric, charts) if c.slug not in placed]
        placed.update(c.slug for c in line.charts)
    return [line for _, _, line in lines]
