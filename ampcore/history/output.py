"""Rendering verdicts (terminal text, Markdown, JSON) and writing files without clobbering."""

from __future__ import annotations

import json
import math
from pathlib import Path

from ampcore.history.compare import (HIGHER_IS_WORSE, IMPROVEMENT, NOT_AVAILABLE, OK, RELATIVE,
                                     REGRESSION, Comparison, MetricVerdict)
from ampcore.history.storage import Run, UnusableInputError

MARK = {REGRESSION: "❌ regression", IMPROVEMENT: "✅ improvement", OK: "ok", NOT_AVAILABLE: "n/a"}
HEADER = ("benchmark", "metric", "verdict", "baseline", "candidate", "change", "threshold",
          "evidence", "method")


def _fmt(metric: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if metric == "time":
        return f"{value:.4g} s"
    if metric == "speedup":
        return f"{value:.3f}x"
    if metric == "accuracy":
        return f"{value:.4f}"
    if metric == "memory":
        return f"{value / 2**20:.1f} MiB"
    return f"{value:g}"


def _change(metric: str, value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    if metric in RELATIVE:
        return f"{value * 100:+.1f} %"
    return f"{value:+.4g}"


def _threshold(metric: str, value: float | None) -> str:
    """The allowed change, signed in the metric's worse direction."""
    if value is None:
        return "-"
    worse = "+" if HIGHER_IS_WORSE.get(metric, True) else "-"
    return f"{worse}{value * 100:g} %" if metric in RELATIVE else f"{worse}{value:g}"


def evidence(m: MetricVerdict) -> str:
    parts = []
    if m.p_value is not None:
        parts.append(f"p={m.p_value:.2g}" + (f" (adjusted {m.q_value:.2g})" if m.q_value is not None else ""))
    if m.ci is not None:
        what = "time" if m.metric == "time" else "speedup"
        parts.append(f"{what} ratio {m.ci_level:.0%} CI [{m.ci[0]:.3f}, {m.ci[1]:.3f}]")
    if m.note and m.status == NOT_AVAILABLE:
        parts.append(m.note)
    return "; ".join(parts) or "-"


def rows(comparison: Comparison) -> list[tuple[str, ...]]:
    table = []
    for verdict in comparison.verdicts:
        for m in verdict.metrics:
            table.append((verdict.name, m.metric, MARK[m.status], _fmt(m.metric, m.baseline),
                          _fmt(m.metric, m.candidate), _change(m.metric, m.change),
                          _threshold(m.metric, m.threshold), evidence(m), m.method or "-"))
    return table


def _run_line(run: Run) -> str:
    return f"`{run.path.name}` ({run.label})"


def headline(comparison: Comparison) -> str:
    if comparison.env_differences and not comparison.env_mismatch_allowed:
        return "⛔ not compared: the runs were measured on different environments"
    regressions = comparison.regressions
    if regressions:
        return f"❌ {len(regressions)} benchmark(s) regressed: " + ", ".join(v.name for v in regressions)
    if not comparison.verdicts:
        return "⛔ nothing to compare: no benchmark is in both runs"
    return f"✅ no regression in {len(comparison.verdicts)} benchmark(s)"


def _context_lines(comparison: Comparison, bullet: str) -> list[str]:
    lines = [f"{bullet}candidate: {_run_line(comparison.candidate)}"]
    if len(comparison.baseline) == 1:
        lines.append(f"{bullet}baseline: {_run_line(comparison.baseline[0])}")
    else:
        lines.append(f"{bullet}baseline: {len(comparison.baseline)} runs pooled, "
                     f"{_run_line(comparison.baseline[0])} to {_run_line(comparison.baseline[-1])}")
    lines.append(f"{bullet}thresholds: {comparison.config_source or 'built-in defaults'}")
    lines.extend(f"{bullet}{note}" for note in comparison.notes)
    if comparison.env_differences:
        state = ("compared anyway (--allow-env-mismatch)" if comparison.env_mismatch_allowed
                 else "refused; pass --allow-env-mismatch to compare anyway")
        lines.append(f"{bullet}environment differs ({state}):")
        lines.extend(f"{bullet}  {d}" for d in comparison.env_differences)
    if comparison.only_in_baseline:
        lines.append(f"{bullet}missing from the candidate: {', '.join(comparison.only_in_baseline)}")
    if comparison.only_in_candidate:
        lines.append(f"{bullet}new in the candidate (no baseline): "
                     f"{', '.join(comparison.only_in_candidate)}")
    return lines


def to_text(comparison: Comparison) -> str:
    table = [HEADER, *rows(comparison)]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADER) - 1)]
    lines = [headline(comparison), *_context_lines(comparison, "  ")]
    if comparison.verdicts:
        lines.append("")
        for row in table:
            lines.append("  ".join(c.ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
    lines.extend(f"  {p}" for p in comparison.problems)
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def to_markdown(comparison: Comparison) -> str:
    lines = [f"## ampcore compare: {headline(comparison)}", ""]
    lines += _context_lines(comparison, "- ")
    if comparison.verdicts:
        lines += ["", "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows(comparison)]
        lines += ["", "Time is a regression only when a one-sided Mann-Whitney U test on the raw "
                  "rounds is significant at alpha (p adjusted with Benjamini-Hochberg over all "
                  "the gate's tests) AND the median grew beyond the threshold; rows marked "
                  "THRESHOLD ONLY had no raw rounds and rest on the stored median alone."]
    if comparison.problems:
        lines += ["", "### Files with problems", ""]
        lines += [f"- {_cell(str(p))}" for p in comparison.problems]
    return "\n".join(lines) + "\n\n"


def _json_number(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


def _run_json(run: Run) -> dict:
    return {"path": str(run.path), "datetime": run.datetime.isoformat() if run.datetime else None,
            "commit": run.commit, "branch": run.branch, "dirty": run.dirty,
            "pytest_benchmark_version": run.version}


def to_json(comparison: Comparison, exit_status: int) -> dict:
    refused = bool(comparison.env_differences) and not comparison.env_mismatch_allowed
    return {
        "verdict": "refused" if refused else ("regression" if comparison.regressions else "ok"),
        "exit_status": exit_status,
        "candidate": _run_json(comparison.candidate),
        "baseline": [_run_json(r) for r in comparison.baseline],
        "thresholds_source": comparison.config_source,
        "environment_differences": list(comparison.env_differences),
        "environment_mismatch_allowed": comparison.env_mismatch_allowed,
        "only_in_baseline": list(comparison.only_in_baseline),
        "only_in_candidate": list(comparison.only_in_candidate),
        "notes": list(comparison.notes),
        "problems": [{"path": str(p.path), "severity": p.severity, "message": p.message}
                     for p in comparison.problems],
        "benchmarks": [{
            "key": v.key, "name": v.name, "status": v.status, "thresholds": v.thresholds.as_dict(),
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


def check_new(path: Path) -> None:
    """Refuse early, before any work, to write over an existing file."""
    if path.exists():
        raise UnusableInputError(f"{path} exists; ampcore never overwrites a file: choose another path")


def write_new(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with path.open("x", encoding="utf-8") as handle:  # "x": never clobber
            handle.write(text)
    except FileExistsError:
        raise UnusableInputError(f"{path} exists; ampcore never overwrites a file") from None
    return path


def append_text(path: Path, text: str) -> Path:
    """Append (GitHub creates $GITHUB_STEP_SUMMARY before the step; other steps' text stays)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)
    return path


def dump_json(data: dict) -> str:
    return json.dumps(data, indent=1, allow_nan=False) + "\n"
