"""The verdict of a ``METRICS`` row with ``settings``: a configuration recorded beside the
figures (the GradScaler's: on or off, initial scale, growth and backoff factors, growth
interval), judged by whether the candidate kept the baseline's, each change named."""

from __future__ import annotations

from collections.abc import Sequence

from ampcore.history.storage import Benchmark
from ampcore.history.verdicts import NOT_AVAILABLE, MetricVerdict, decide
from ampcore.judge.metrics import Metric
from ampcore.judge.record import BenchmarkRecord


def settings_verdict(metric: Metric, baseline: Sequence[Benchmark], candidate: Benchmark,
                     threshold: float) -> MetricVerdict:
    """The candidate's settings against those of the newest baseline run that recorded them:
    a regression when more than ``threshold`` of them changed. Runs that did not record them
    (files older than the settings) are not judged."""
    records = [b.record for b in baseline if recorded(metric, b.record)]
    if not recorded(metric, candidate.record) or not records:
        missing = "baseline" if recorded(metric, candidate.record) else "candidate"
        return MetricVerdict(metric.name, NOT_AVAILABLE, "",
                             note=f"{metric.label} settings not recorded in the {missing}")
    changed = changes(metric, records[-1], candidate.record)
    note = "; ".join(changed) if changed else f"{metric.label} settings unchanged"
    return MetricVerdict(metric.name, decide(metric, len(changed), threshold), metric.test,
                         change=float(len(changed)), threshold=threshold, note=note)


def recorded(metric: Metric, record: BenchmarkRecord | None) -> bool:
    """Whether ``record`` holds the row's settings: its switch is set, and when on, the rest
    are too (a result saved before them knew only the switch)."""
    if record is None or getattr(record, metric.settings[0]) is None:
        return False
    return not getattr(record, metric.settings[0]) or all(
        getattr(record, name) is not None for name in metric.settings[1:])


def changes(metric: Metric, before: BenchmarkRecord, after: BenchmarkRecord) -> list[str]:
    """What changed, e.g. ["loss scaling turned off"] or ["init scale 65536 -> 1024"]."""
    switch, *rest = metric.settings
    if getattr(before, switch) != getattr(after, switch):
        return [f"{metric.label} turned {'on' if getattr(after, switch) else 'off'}"]
    if not getattr(after, switch):
        return []  # off in both: the other settings mean nothing
    prefix = switch[:switch.rfind("_") + 1]  # the settings share their switch's prefix
    return [f"{name.removeprefix(prefix).replace('_', ' ')} {getattr(before, name):g} -> "
            f"{getattr(after, name):g}" for name in rest
            if getattr(before, name) != getattr(after, name)]
