"""What makes a saved value unusable, and a saved session incomplete.

A malformed value never becomes a verdict: a benchmark with a non-positive or non-finite
median, raw rounds whose median disagrees with it, or a record figure that is impossible (an
accuracy outside [0, 1], a time not positive, NaN where a number is required) or that a metric
cannot be computed from, is skipped and named; a session
that was interrupted is skipped whole ("interrupted session"), so it is never a candidate nor
a baseline. These checks read the saved document as it is, independently of
``BenchmarkRecord``: a session may stop before any record is written.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping

from ampcore.judge.metrics import METRICS
from ampcore.judge.record import SESSION_INCOMPLETE_KEY, BenchmarkRecord, SessionRecord, number

# Markers a writer may set on a session it did not finish.
INCOMPLETE_KEY = "ampcore_incomplete"  # extra_info[INCOMPLETE_KEY] = true, per benchmark
# Record fields that are fractions of samples, and durations.
ACCURACIES = ("final_accuracy", "heldout_accuracy", "accuracy_per_epoch")
TIMES = ("train_time_s", "eval_time_s", "warmup_time_s", "step_time_s", "heldout_time_s",
         "host_step_s", "eager_step_s")
# pytest-benchmark computes stats.median from stats.data, so they agree to rounding; a wider
# gap means one was rewritten (1000x: ms saved as s).
ROUNDS_TOLERANCE = 0.01


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
    return _impossible(record)


def _impossible(record: BenchmarkRecord) -> str | None:
    """An accuracy outside [0, 1] (2.0 would be judged an improvement and teach calibrate a
    1.61 margin) or a time that is not positive."""
    for name in ACCURACIES:
        for value in _values(getattr(record, name)):
            if not 0 <= value <= 1:
                return f"{name} is {value:g}: an accuracy must be within [0, 1]"
    for name in TIMES:
        for value in _values(getattr(record, name)):
            if value <= 0:
                return f"{name} is {value:g}: a time must be positive"
    return None


def figure_problem(extra: Mapping) -> str | None:
    """A figure the record needs as a number that the saved ``extra_info`` holds as NaN, an
    infinity or text: reading it would silently make it "not recorded" (``number``)."""
    for name in _numeric_fields():
        raw = extra.get(name)
        for value in raw if isinstance(raw, list) else [raw]:
            if value is not None and number(value) is None:
                return f"{name} is {_short(value)}, not a finite number"
    return None


def rounds_problem(stats: Mapping) -> str | None:
    """Raw rounds (``stats.data``) whose median disagrees with ``stats.median``: one of the
    two was written wrong (e.g. in other units), and neither can be trusted."""
    data, median = stats.get("data"), number(stats.get("median"))
    values = [number(v) for v in data] if isinstance(data, list) and data else []
    if not values or None in values or median is None or min(values) <= 0:
        return None  # no usable rounds: the stored median alone is judged
    of_rounds = statistics.median(values)
    if abs(of_rounds - median) > ROUNDS_TOLERANCE * median:
        return (f"the median of stats.data ({of_rounds:.6g}) disagrees with stats.median "
                f"({median:.6g}) by more than {ROUNDS_TOLERANCE:.0%}")
    return None


def _numeric_fields() -> tuple[str, ...]:
    rows = [m.field for m in METRICS.values() if m.field]
    settings = [s for m in METRICS.values() for s in m.settings[1:]]  # [0]: the on/off flag
    return tuple(dict.fromkeys([*rows, *settings, *ACCURACIES, *TIMES, "speedup_vs_fp32"]))


def _values(value: object) -> tuple[float, ...]:
    if value is None:
        return ()
    return tuple(value) if isinstance(value, tuple) else (value,)


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
