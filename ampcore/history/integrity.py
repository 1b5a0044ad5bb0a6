"""What makes a saved value unusable, and a saved session incomplete.

A malformed value never becomes a verdict: a benchmark with a non-positive or non-finite
median, or a record figure a metric cannot be computed from, is skipped and named; a session
that was interrupted is skipped whole ("interrupted session"), so it is never a candidate nor
a baseline. These checks read the saved document as it is, independently of
``BenchmarkRecord``: a session may stop before any record is written.
"""

from __future__ import annotations

from collections.abc import Mapping

from ampcore.judge.metrics import METRICS
from ampcore.judge.record import SESSION_INCOMPLETE_KEY, BenchmarkRecord, SessionRecord, number

# Markers a writer may set on a session it did not finish.
INCOMPLETE_KEY = "ampcore_incomplete"  # extra_info[INCOMPLETE_KEY] = true, per benchmark


def median_problem(stats: Mapping) -> str | None:
    """Why ``stats["median"]`` cannot be a round time, or None when it can."""
    raw = stats.get("median")
    value = number(raw)
    if value is None:
        return "no numeric stats.median" if not _is_number(raw) else (
            f"stats.median is {_short(raw)}, not a finite number")
    if value <= 0:
        return f"stats.median is {value:g}, not a positive time"
    return None


def positive(value: object) -> float | None:
    """A finite positive number, else None (a quartile that cannot be drawn)."""
    result = number(value)
    return result if result is not None and result > 0 else None


def record_problem(record: BenchmarkRecord) -> str | None:
    """A record figure that no metric may be computed from: a relative metric's value must be
    positive (a zero or negative memory would be a -100 % "improvement" and a 149 %
    calibration), an absolute one non-negative; a recorded speedup must be positive."""
    for metric in METRICS.values():
        if metric.field is None:
            continue
        value = metric.value(record)
        if value is None:
            continue
        if metric.relative and value <= 0:
            return f"{metric.field} is {value:g}: a {metric.label} must be positive"
        if not metric.relative and value < 0:
            return f"{metric.field} is {value:g}: a {metric.label} cannot be negative"
    if record.speedup_vs_fp32 is not None and record.speedup_vs_fp32 <= 0:
        return f"speedup_vs_fp32 is {record.speedup_vs_fp32:g}: a speedup must be positive"
    return None


def interruption(document: Mapping, session: SessionRecord | None) -> str | None:
    """Why the saved session looks interrupted or partial, or None when it looks complete."""
    if session is not None and session.incomplete:
        return f"marked incomplete (machine_info['ampcore']['{SESSION_INCOMPLETE_KEY}'])"
    entries = [(_name(e, i), e) for i, e in enumerate(document.get("benchmarks") or [])
               if isinstance(e, Mapping)]
    for name, entry in entries:
        extra = entry.get("extra_info")
        if isinstance(extra, Mapping) and extra.get(INCOMPLETE_KEY) is True:
            return f"{name} is marked incomplete (extra_info['{INCOMPLETE_KEY}'])"
    for name, entry in entries:
        short = _missing_rounds(entry)
        if short:
            return f"{name} saved {short[0]} of the {short[1]} rounds its record planned"
    with_record = [n for n, e in entries if isinstance(e.get("extra_info"), Mapping)
                   and e["extra_info"]]
    empty = [n for n, e in entries if e.get("extra_info") == {}]
    if empty and with_record:
        return (f"{', '.join(empty)} saved an empty extra_info while "
                f"{len(with_record)} other benchmark(s) of the session have records")
    return None


def _missing_rounds(entry: Mapping) -> tuple[int, int] | None:
    """(saved, planned) when a single-process benchmark saved another number of rounds than
    its record planned. A distributed benchmark (world_size > 1) times the whole torchrun
    launch as one round, so its count is not compared."""
    stats, extra = entry.get("stats"), entry.get("extra_info")
    if not isinstance(stats, Mapping) or not isinstance(extra, Mapping):
        return None
    data, planned = stats.get("data"), extra.get("samples_per_round")
    world_size = number(extra.get("world_size"))
    if world_size not in (None, 1) or not isinstance(data, list) or not isinstance(planned, list):
        return None
    if data and planned and len(data) != len(planned):
        return len(data), len(planned)
    return None


def _name(entry: Mapping, index: int) -> str:
    name = entry.get("name")
    return name if isinstance(name, str) else f"benchmarks[{index}]"


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _short(value: object) -> str:
    text = repr(value) if not isinstance(value, int) else f"an integer of {len(str(value))} digits"
    return text if len(text) <= 40 else text[:37] + "..."
