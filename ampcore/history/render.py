"""The verdicts as a person reads them: terminal text and Markdown, compact by default
(regressions first, one line each, then a table without n/a rows that fits the terminal),
everything with ``View(verbose=True)``. Cells and lines come from ``ampcore.history.output``;
tables are drawn by tabulate."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tabulate import tabulate

from ampcore.history.compare import NOT_AVAILABLE, REGRESSION, Comparison, MetricVerdict
from ampcore.history.output import (
    EMOJI_ICONS, HEADER, KERNELS, MARK, TEXT_ICONS, WORD, _one_line, context_lines, evidence,
    headline, md_escape, unstable_lines,
)
from ampcore.judge.metrics import get_metric


@dataclass(frozen=True)
class View:
    """What the text and Markdown tables show: ``verbose`` every row (n/a ones too), the full
    evidence and the method; ``only_regressions`` the regressed rows alone; ``width`` the
    text table's budget in characters (None: the terminal's, 100 when unknown)."""
    verbose: bool = False
    only_regressions: bool = False
    width: int | None = None


COMPACT_HEADER = ("benchmark", "metric", "verdict", "baseline", "candidate", "change", "limit",
                  "evidence")
MIN_EVIDENCE = 12  # narrower than this, the evidence column goes
ELLIPSIS = "..."
INDENT = "  "  # a compact row, under its benchmark's name


def terminal_width() -> int:
    return shutil.get_terminal_size((100, 24)).columns


def _ordered(comparison: Comparison, view: View) -> list[tuple[str, MetricVerdict]]:
    """The rows to show: the benchmarks with a regression first, and in each its regressed rows
    first (stable otherwise); n/a rows only when verbose, the regressed alone when asked."""
    pairs = [(v.name, m) for v in comparison.verdicts for m in v.metrics]
    if view.only_regressions:
        pairs = [p for p in pairs if p[1].status == REGRESSION]
    elif not view.verbose:
        pairs = [p for p in pairs if p[1].status != NOT_AVAILABLE]
    regressed = {v.name for v in comparison.regressions}  # a benchmark's rows stay together
    order = {name: i for i, name in enumerate(dict.fromkeys(name for name, _ in pairs))}
    return sorted(pairs, key=lambda p: (p[0] not in regressed, order[p[0]],
                                        p[1].status != REGRESSION))


def _cells(name: str, m: MetricVerdict, marks: dict[str, str], full: bool) -> list[str]:
    row = get_metric(m.metric)
    detail = evidence(m)
    if not full and m.method and m.method.startswith("THRESHOLD ONLY"):  # the method column
        detail = "THRESHOLD ONLY; " + detail  # goes; this caveat stays, in front of the cut
    cells = [name, m.metric, marks[m.status], row.format(m.baseline), row.format(m.candidate),
             row.format_change(m.change), row.format_threshold(m.threshold), detail]
    if full:
        cells.append(m.method or "-")
    return cells


def regression_lines(comparison: Comparison, mark: str = "REGRESSION",
                     esc: Callable[[str], str] = _one_line) -> list[str]:
    """One line per regressed metric: "REGRESSION bench: time +2.9 % (limit +2 %)"."""
    lines = []
    for verdict in comparison.verdicts:
        for m in verdict.metrics:
            if m.status == REGRESSION:
                row = get_metric(m.metric)
                change = row.format_change(m.change)
                what = f"{change} (limit {row.format_threshold(m.threshold)})" if change != "-" \
                    else (m.note or "changed")
                if m.note and KERNELS in m.note:  # where the time went, on the same line
                    what += "; " + KERNELS + m.note.split(KERNELS, 1)[1]
                elif m.note and change != "-" and (row.settings or row.counter):
                    what += f": {m.note}"  # the settings or operators that changed
                lines.append(f"{mark} {esc(verdict.name)}: {esc(m.metric)} {esc(what)}")
    return lines


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[:max(width - len(ELLIPSIS), 0)] + ELLIPSIS


def _render(table: list[list[str]], header: Sequence[str]) -> list[str]:
    text = tabulate(table, headers=list(header), tablefmt="simple", disable_numparse=True,
                    stralign="left")
    return [line.rstrip() for line in text.splitlines()]


def _fit(table: list[list[str]], header: list[str], width: int) -> list[str]:
    """The table rendered, its evidence (the last column) cut until it fits ``width``
    characters; without the evidence when fewer than MIN_EVIDENCE characters are left, and on
    a very narrow terminal without the baseline and candidate values (the change stays)."""
    room = max(len(r[-1]) for r in table)
    while room >= max(MIN_EVIDENCE, len(header[-1])):
        lines = _render([[*r[:-1], _cut(r[-1], room)] for r in table], header)
        over = max(map(len, lines)) - width
        if over <= 0:
            return lines
        room -= over
    for drop in ((), ("baseline",), ("baseline", "candidate")):
        keep = [i for i, h in enumerate(header[:-1]) if h not in drop]
        lines = _render([[r[i] for i in keep] for r in table], [header[i] for i in keep])
        if max(map(len, lines)) <= width:
            break
    return lines


def _text_table(comparison: Comparison, view: View) -> list[str]:
    """Verbose: every row of every benchmark, whole, one flat table. Otherwise a benchmark's
    name heads its rows (the name column would take the width the evidence needs), and the
    evidence is cut to the terminal's width."""
    pairs = _ordered(comparison, view)
    if not pairs:
        return ["(no regressed row)" if view.only_regressions else "(no row to show)"]
    if view.verbose:
        return _render([[_one_line(c) for c in _cells(name, m, WORD, True)] for name, m in pairs],
                       HEADER)
    table = [[_one_line(c) for c in _cells(name, m, WORD, False)[1:]] for name, m in pairs]
    width = (view.width or terminal_width()) - len(INDENT)
    head, rule, *body = [INDENT + line for line in _fit(table, list(COMPACT_HEADER[1:]), width)]
    lines = [head, rule]
    previous = None
    for (name, _), line in zip(pairs, body, strict=True):
        if name != previous:
            lines.append(_one_line(name))
            previous = name
        lines.append(line)
    return lines


def _hidden(comparison: Comparison, view: View) -> str | None:
    if view.verbose and not view.only_regressions:
        return None
    shown = len(_ordered(comparison, view))
    total = sum(len(v.metrics) for v in comparison.verdicts)
    if shown == total:
        return None
    if view.only_regressions:
        return f"{total - shown} rows not regressed not shown (--only regressions)"
    return f"{total - shown} n/a rows not shown (--verbose: all)"


def to_text(comparison: Comparison, view: View = View()) -> str:
    """The verdicts for a terminal (stdout); file problems are not part of it. A line per
    regression first, then the runs, then a table fitted to the terminal (whole with
    ``view.verbose``)."""
    lines = [headline(comparison, icons=TEXT_ICONS), *regression_lines(comparison),
             *unstable_lines(comparison, _one_line), *context_lines(comparison, "  ")]
    if comparison.verdicts:
        lines.append("")
        lines += _text_table(comparison, view)
        hidden = _hidden(comparison, view)
        if hidden:
            lines.append(hidden)
    return "\n".join(lines) + "\n"


def _markdown_table(table: list[list[str]], header: Sequence[str]) -> list[str]:
    cells = [[md_escape(c) for c in row] for row in table]
    return tabulate(cells, headers=list(header), tablefmt="github", disable_numparse=True,
                    stralign="left").splitlines()


def to_markdown(comparison: Comparison, view: View = View()) -> str:
    """The job summary: a line per regression, the runs, a compact table (no evidence, no n/a
    row) and the full one, evidence and methods, in a collapsible block; ``view.verbose``: the
    full table alone."""
    esc = md_escape
    lines = [f"## ampcore compare: {headline(comparison, esc)}", ""]
    regressed = regression_lines(comparison, EMOJI_ICONS[0], esc)
    regressed += unstable_lines(comparison, esc)
    if regressed:
        lines += [f"- {line}" for line in regressed] + [""]
    lines += context_lines(comparison, "- ", esc)
    if comparison.verdicts:
        pairs = _ordered(comparison, view)
        every = _ordered(comparison, View(verbose=True, only_regressions=view.only_regressions))
        full = [_cells(name, m, MARK, True) for name, m in every]
        lines.append("")
        if view.verbose:
            lines += _markdown_table(full, HEADER)
        elif pairs:
            compact = [_cells(name, m, MARK, True) for name, m in pairs]
            for row, (_, m) in zip(compact, pairs):
                if m.method and m.method.startswith("THRESHOLD ONLY"):
                    row[2] += " (THRESHOLD ONLY)"
            lines += _markdown_table([row[:7] for row in compact], COMPACT_HEADER[:7])
        else:
            lines.append("No regressed row." if view.only_regressions else "No row to show.")
        hidden = _hidden(comparison, view)
        if hidden and (view.verbose or view.only_regressions):
            lines += ["", esc(hidden)]
        if not view.verbose and every:
            shown = f"all {len(every)} rows" if len(every) > len(pairs) else f"{len(every)} rows"
            lines += ["", f"<details><summary>Evidence and methods ({shown})</summary>", ""]
            lines += _markdown_table(full, HEADER)
            lines += ["", "</details>"]
        lines += ["", "Time is a regression only when a one-sided Mann-Whitney U test on the raw "
                  "rounds is significant at alpha (p adjusted with Benjamini-Hochberg over all "
                  "the gate's tests) AND the median grew beyond the threshold; rows marked "
                  "THRESHOLD ONLY had no raw rounds and rest on the stored median alone."]
    if comparison.problems:
        lines += ["", "### Files with problems", ""]
        lines += [f"- {esc(str(p))}" for p in comparison.problems]
    return "\n".join(lines) + "\n\n"
