"""The pieces of a comparison's outputs (headline, context lines, cells, escaping) and its
JSON; ``ampcore.history.render`` lays them out as terminal text and Markdown (HTML-escaped:
benchmark names and file names are data, never markup). Files are written by ``ampcore.core.files``. File
problems are diagnostics: the CLI prints them on stderr; the Markdown and JSON carry them."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable

from ampcore.history.compare import (
    IMPROVEMENT,
    NOT_AVAILABLE,
    OK,
    REGRESSION,
    UNSTABLE,
    Comparison,
    MetricVerdict,
)
from ampcore.history.storage import Run
from ampcore.judge.metrics import get_metric

MARK = {REGRESSION: "❌ regression", IMPROVEMENT: "✅ improvement", OK: "ok", NOT_AVAILABLE: "n/a",
        UNSTABLE: "⚠️ unstable"}
# the terminal's: words, no emoji (a terminal without an emoji font shows boxes)
WORD = {REGRESSION: "REGRESSION", IMPROVEMENT: "improved", OK: "ok", NOT_AVAILABLE: "n/a",
        UNSTABLE: "UNSTABLE"}
# the headline's lead: fail, pass, not compared
EMOJI_ICONS = ("❌", "✅", "⛔")
TEXT_ICONS = ("FAIL:", "PASS:", "STOP:")
HEADER = ("benchmark", "metric", "verdict", "baseline", "candidate", "change", "threshold",
          "evidence", "method")


KERNELS = "kernels: "  # how a time verdict's note names the kernels that moved


def evidence(m: MetricVerdict) -> str:
    parts = []
    if m.p_value is not None:
        adjusted = f" (adjusted {m.q_value:.2g})" if m.q_value is not None else ""
        parts.append(f"p={m.p_value:.2g}{adjusted}")
    row = get_metric(m.metric)
    if m.ci is not None:  # of the candidate/baseline ratio; of the change for absolute metrics
        kind, digits = ("ratio", 3) if row.relative else ("change", 4)
        parts.append(f"{m.metric} {kind} {m.ci_level:.0%} CI [{m.ci[0]:.{digits}f}, "
                     f"{m.ci[1]:.{digits}f}]")
    if m.note and m.status == UNSTABLE:  # first: which run, its CV and limit, what it would be
        head, _, rest = m.note.partition("; would be ")
        parts.insert(0, f"{head}; would be {rest.split(';')[0]}")
    elif m.note and (m.status == NOT_AVAILABLE or row.counter or row.paired or row.settings):
        parts.append(m.note)  # a counter's note names the operators whose counts changed;
        # a paired metric's its table, test and interval (or why it fell back to a threshold);
        # a configuration's the settings that changed
    elif m.note and KERNELS in m.note:  # a time verdict's: where the time went
        parts.append(KERNELS + m.note.split(KERNELS, 1)[1])
    return "; ".join(parts) or "-"


def _plain(text: str) -> str:
    return text


def md_escape(text: str) -> str:
    """Text as Markdown that renders as itself: HTML escaped (no tag reaches the page), the
    characters that would start code, emphasis, a link or a table cell backslash-escaped (an
    underscore inside a word is literal in GitHub's Markdown), and line breaks shown as
    ``\\n`` (a real one would end a table row or start a heading)."""
    escaped = html.escape(text, quote=False)
    for char in "\\`*[]|":
        escaped = escaped.replace(char, "\\" + char)
    return _one_line(escaped)


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _run_line(run: Run, esc: Callable[[str], str]) -> str:
    if esc is _plain:
        return f"`{run.path.name}` ({run.label})"
    return f"<code>{_one_line(html.escape(run.path.name))}</code> ({esc(run.label)})"


def headline(comparison: Comparison, esc: Callable[[str], str] = _plain,
             icons: tuple[str, str, str] = EMOJI_ICONS) -> str:
    fail, passed, stop = icons
    outcome = comparison.outcome
    if comparison.refused:
        return f"{stop} not compared: the runs were measured on different environments"
    if outcome == "refused":
        return f"{stop} nothing to compare: every shared benchmark measured other work"
    if outcome == "no baseline":
        return f"{stop} nothing to compare: no benchmark is in both runs"
    regressions = comparison.regressions
    if regressions:
        return (f"{fail} {len(regressions)} benchmark(s) regressed: "
                + ", ".join(esc(v.name) for v in regressions))
    if outcome == "missing":
        return (f"{fail} {len(comparison.missing)} benchmark(s) of the baseline missing from the "
                "candidate (pass --allow-missing if intended)")
    if outcome == "unreliable":
        return (f"{fail} time verdicts unreliable: {len(comparison.unstable)} benchmark(s) "
                "measured on an unstable run: " + ", ".join(esc(v.name) for v in comparison.unstable))
    return f"{passed} no regression in {len(comparison.verdicts)} benchmark(s)"


def context_lines(comparison: Comparison, bullet: str = "",
                  esc: Callable[[str], str] = _plain) -> list[str]:
    """The upgrades first ("upgrade: torch 2.11.0 -> 2.12.0"), then which runs, thresholds,
    notes, differences, missing and new benchmarks."""
    c, run = comparison, lambda r: _run_line(r, esc)
    lines = [f"{bullet}upgrade: {esc(u)}" for u in c.upgrades]
    lines.append(f"{bullet}candidate: {run(c.candidate)}")
    if len(c.baseline) == 1:
        lines.append(f"{bullet}baseline: {run(c.baseline[0])}")
    else:
        lines.append(f"{bullet}baseline: {len(c.baseline)} runs pooled, "
                     f"{run(c.baseline[0])} to {run(c.baseline[-1])}")
    source = c.config_source or "built-in defaults (no pyproject.toml found)"
    origin = f" ({c.config_origin})" if c.config_source and c.config_origin else ""
    lines.append(f"{bullet}thresholds: {esc(source + origin)}")
    lines.extend(f"{bullet}{esc(note)}" for note in c.notes)
    if c.injected:
        lines.append(f"{bullet}INJECTED regressions in the candidate (a test of the gate, not "
                     "a clean run): " + "; ".join(map(esc, c.injected)))
    if c.env_differences:
        state = ("compared anyway (--allow-env-mismatch)" if c.env_mismatch_allowed
                 else "refused; pass --allow-env-mismatch to compare anyway")
        lines.append(f"{bullet}hardware or step settings differ ({state}):")
        lines.extend(f"{bullet}  {esc(d)}" for d in c.env_differences)
    if c.method_changes:
        lines.append(f"{bullet}timing method changed (information, not a refusal): "
                     + "; ".join(map(esc, c.method_changes)))
    if c.measured_differences:
        lines.append(f"{bullet}not compared, a different workload configuration was measured:")
        lines.extend(f"{bullet}  {esc(d)}" for d in c.measured_differences)
    if c.only_in_baseline:
        allowed = " (allowed by --allow-missing)" if c.allow_missing else ""
        lines.append(f"{bullet}missing from the candidate{allowed}: "
                     + ", ".join(map(esc, c.only_in_baseline)))
    if c.only_in_candidate:
        lines.append(f"{bullet}new in the candidate (no baseline, information only): "
                     + ", ".join(map(esc, c.only_in_candidate)))
    return lines


def unstable_lines(comparison: Comparison, esc: Callable[[str], str] = _plain) -> list[str]:
    """"unstable: bench candidate round CV 26 % > limit 3 %: time verdicts unreliable", one
    per unstable run of a benchmark whose time verdicts it made unreliable; and one line
    counting the benchmarks whose stability could not be checked (old files)."""
    lines = [f"unstable: {esc(s.line(v.name))}" for v in comparison.unstable for s in v.unstable]
    unchecked = [v.name for v in comparison.verdicts
                 if any(s.stability.cv is None for s in v.stability)]
    if unchecked:
        lines.append(f"stability not checked (no rounds, round_cv or quartiles saved): "
                     f"{len(unchecked)} benchmark(s)")
    return lines


def _stability_json(verdict) -> dict:
    return {"stability": [s.as_json() for s in verdict.stability],
            "unstable": [s.as_json() for s in verdict.unstable]}


def _json_number(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def _run_json(run: Run) -> dict:
    return {"path": str(run.path), "datetime": run.datetime.isoformat() if run.datetime else None,
            "commit": run.commit, "branch": run.branch, "dirty": run.dirty,
            "pytest_benchmark_version": run.version}


def to_json(comparison: Comparison, exit_status: int | None = None) -> dict:
    return {
        "verdict": comparison.outcome,
        "exit_status": comparison.exit_status if exit_status is None else exit_status,
        "candidate": _run_json(comparison.candidate),
        "baseline": [_run_json(r) for r in comparison.baseline],
        "thresholds_source": comparison.config_source,
        "thresholds_origin": comparison.config_origin,
        "environment_differences": list(comparison.env_differences),
        "environment_mismatch_allowed": comparison.env_mismatch_allowed,
        "measured_differences": list(comparison.measured_differences),
        "library_changes": list(comparison.library_changes),
        "upgrades": list(comparison.upgrades),
        "method_changes": list(comparison.method_changes),
        "only_in_baseline": list(comparison.only_in_baseline),
        "missing_allowed": comparison.allow_missing,
        "only_in_candidate": list(comparison.only_in_candidate),
        "notes": list(comparison.notes),
        "unstable": unstable_lines(comparison),
        "injected": list(comparison.injected),
        "problems": [{"path": str(p.path), "severity": p.severity, "message": p.message}
                     for p in comparison.problems],
        "benchmarks": [{
            "key": v.key, "name": v.name, "status": v.status, "thresholds": v.thresholds.as_dict(),
            **_stability_json(v),
            "metrics": [{"metric": m.metric, "status": m.status, "method": m.method,
                         "baseline": _json_number(m.baseline),
                         "candidate": _json_number(m.candidate),
                         "change": _json_number(m.change), "threshold": m.threshold,
                         "p_value": _json_number(m.p_value),
                         "p_worse": _json_number(m.p_worse), "p_better": _json_number(m.p_better),
                         "q_value": _json_number(m.q_value),
                         "ci": [_json_number(c) for c in m.ci] if m.ci else None,
                         "ci_level": m.ci_level,
                         "note": m.note} for m in v.metrics],
        } for v in comparison.verdicts],
    }


def dump_json(data: dict) -> str:
    return json.dumps(data, indent=1, allow_nan=False) + "\n"
