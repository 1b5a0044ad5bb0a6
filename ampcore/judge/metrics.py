"""``METRICS``: every metric the gate judges, one row each, and everything it means.

compare, calibrate, the text/Markdown/JSON output and the report read these rows instead of
restating which direction is worse, whether a change is relative, how a value is formatted or
what the default threshold is. Adding a metric is one row here plus the code that measures it
(a ``BenchmarkRecord`` field). Torch-free.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, fields

from ampcore.core.units import human, human_change
from ampcore.judge.record import BenchmarkRecord, number

# Significance level of the gate's tests (Mann-Whitney U on round times, bootstrap on
# speedups, McNemar on held-out accuracy), after Benjamini-Hochberg adjustment over those in
# its family: the level at which calibration on saved GPU runs balanced false alarms against
# detecting a 10 % slowdown. The suite's parity test uses it too.
DEFAULT_ALPHA = 0.02


@dataclass(frozen=True)
class Metric:
    name: str  # threshold key in [tool.ampcore.compare] and in every output
    label: str  # what a reader sees in charts and tables
    unit: str  # unit of a displayed value
    relative: bool  # change and threshold are fractions of the baseline; else differences
    higher_is_worse: bool
    default_threshold: float
    calibration_step: float  # ``ampcore calibrate`` rounds suggestions up to this
    test: str  # how the gate decides, as the output states it
    field: str | None = None  # the BenchmarkRecord field it reads; None: the raw rounds
    scale: float = 1.0  # displayed value = stored value / scale
    digits: int | None = None  # significant digits shown; None: ``units.human``'s default
    chart: bool = True  # drawn per workload in ``ampcore report``
    # A BenchmarkRecord flag that, when False, makes the metric meaningless (not judged):
    # accuracy after training from random initial weights.
    requires: str | None = None
    # The field holds per-step samples (a tuple): judged by a one-sided Mann-Whitney U test on
    # them plus the threshold, and shown by their median.
    samples: bool = False
    # A deterministic count per step: exact, no test needed; its verdict names the operators
    # whose counts changed most (BenchmarkRecord.ops_per_step).
    counter: bool = False
    # BenchmarkRecord fields that together are a configuration, the first its on/off switch:
    # compared for equality with the newest baseline run that recorded them; the change is
    # how many settings differ (the threshold: how many may) and the verdict names them.
    settings: tuple[str, ...] = ()
    # A record field with the held-out set's packed per-sample correctness: when baseline and
    # candidate both saved it for the same set, the paired test decides (``test``); else the
    # threshold on ``field`` does, and the verdict says so.
    paired: str | None = None
    # The default when the steps are eager on a GPU (``[tool.ampcore.compare.eager]``): there a
    # round follows the host, whose speed drifts between processes; None:
    # ``default_threshold`` in every step mode.
    eager_threshold: float | None = None
    # The default when the steps are captured in CUDA graphs on a GPU
    # (``[tool.ampcore.compare.captured]``): a round then times the GPU's work, whose spread
    # between fresh sessions is far below the host's; None: ``default_threshold``.
    captured_threshold: float | None = None
    # The largest threshold a configuration may set (``[tool.ampcore]``): beyond it the gate
    # is off for this metric in all but name. Relative rows: +100 %; absolute rows set their
    # own, in their unit.
    max_threshold: float = 1.0

    def value(self, record: BenchmarkRecord | None) -> float | None:
        """The figure this row judges in ``record`` (the median of samples), None if absent."""
        if record is None or self.field is None:
            return None
        raw = getattr(record, self.field)
        if self.samples:
            values = [v for v in (number(x) for x in raw or ()) if v is not None]
            return statistics.median(values) if values else None
        return number(raw)

    def samples_of(self, record: BenchmarkRecord | None) -> tuple[float, ...]:
        if record is None or not self.samples:
            return ()
        return tuple(v for v in (number(x) for x in getattr(record, self.field) or ()) if v is not None)

    def is_worse(self, change: float) -> bool:
        return change > 0 if self.higher_is_worse else change < 0

    def change(self, baseline: float, candidate: float) -> float:
        """The candidate's change: a fraction of the baseline, or a difference."""
        if not self.relative:
            return candidate - baseline
        return (candidate - baseline) / baseline if baseline else math.nan

    def format(self, value: float | None) -> str:
        """A value as every output shows it (``ampcore.core.units.human``)."""
        return human(None if value is None else value / self.scale, self.unit, self.digits)

    def format_change(self, change: float | None) -> str:
        """A change as every output shows it: a fraction in %, or a difference in the unit."""
        scaled = change / self.scale if change is not None and not self.relative else change
        return human_change(scaled, self.unit, self.relative)

    def format_threshold(self, threshold: float | None) -> str:
        """The allowed change, signed in the metric's worse direction."""
        if threshold is None:
            return "-"
        sign = "+" if self.higher_is_worse else "-"
        return f"{sign}{threshold * 100:g} %" if self.relative else f"{sign}{threshold:g}"


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("time", "median round time", "s", relative=True, higher_is_worse=True,
           default_threshold=0.05, calibration_step=0.005, eager_threshold=0.35,
           captured_threshold=0.02,
           test="one-sided Mann-Whitney U on the rounds + threshold"),
    # Captured: bert fp32 / amp-bf16 over 12 fresh H200 sessions on 4 machine starts spread
    # 0.74 % (5.795x-5.838x), 0 alarms in 66 ordered A/A pairs at 2 %; calibrate --write
    # derives 1.5 %; a 2.6 % drop was flagged in 2 of 2 sessions (docs/TRUST.md [4]).
    Metric("speedup", "speedup over fp32", "x", relative=True, higher_is_worse=False,
           default_threshold=0.05, calibration_step=0.005, eager_threshold=0.35,
           captured_threshold=0.02,
           test="bootstrap of the within-run speedup change + threshold", digits=3),
    # The threshold is the accuracy judge's practical margin (``ampcore.judge.accuracy``):
    # 0.005, as runs of one training seed are deterministic (two fresh sessions of MiniLM
    # differed on at most 1 of 5,000 held-out samples); with several baseline seeds, at least
    # 3 x their sd; without paired predictions, at least 0.03 (no significance test).
    Metric("accuracy", "final test accuracy", "", relative=False, higher_is_worse=False,
           default_threshold=0.005, calibration_step=0.005,
           test="paired held-out set: one-sided exact McNemar significant at alpha AND "
                "drop > margin",
           field="final_accuracy", digits=4, requires="accuracy_meaningful",
           paired="heldout_correct", max_threshold=0.25),  # a quarter of the samples
    # Only the workloads judged by loss record it (a language model: nats per token).
    Metric("heldout_loss", "final held-out loss", "", relative=False, higher_is_worse=True,
           default_threshold=0.05, calibration_step=0.005, test="absolute tolerance",
           field="heldout_loss", digits=5, max_threshold=1.0),  # a nat per token
    Metric("memory", "peak device memory", "MiB", relative=True, higher_is_worse=True,
           default_threshold=0.03, calibration_step=0.005, test="relative threshold",
           field="peak_memory_bytes", scale=2**20),
    Metric("skipped_steps", "GradScaler skipped steps", "", relative=False,
           higher_is_worse=True, default_threshold=1, calibration_step=1,
           test="absolute threshold", field="skipped_steps", chart=False,
           max_threshold=100),
    # Loss-scale health (ampcore.train.loss_scale). Any change of the scaler's configuration
    # is a regression of its own: it changes what the timed steps do, and the scale's moves
    # are only comparable under one configuration.
    Metric("loss_scale_config", "loss scaling", "", relative=False, higher_is_worse=True,
           default_threshold=0, calibration_step=1, test="configuration equal to the baseline's",
           chart=False, settings=("grad_scaler_enabled", "grad_scaler_init_scale",
                                  "grad_scaler_growth_factor", "grad_scaler_backoff_factor",
                                  "grad_scaler_growth_interval"),
           max_threshold=4),  # of 5 settings: at 5 no change could ever be flagged
    # Each backoff cuts the scale after an overflow (its step is skipped too). One more than
    # the baseline is tolerated, as for skipped steps: reductions in another order can tip a
    # single step over the fp16 range; two more scale the gradients 4x further down.
    Metric("loss_scale_backoffs", "loss-scale backoffs", "", relative=False,
           higher_is_worse=True, default_threshold=1, calibration_step=1,
           test="absolute threshold", field="grad_scaler_backoffs", chart=False,
           max_threshold=100),
    # DDP runs only (None elsewhere: not judged): samples/s on N processes over N x the
    # single-GPU run of the same session; a drop is what distribution started to cost.
    Metric("scaling_efficiency", "DDP scaling efficiency", "", relative=False,
           higher_is_worse=False, default_threshold=0.05, calibration_step=0.005,
           test="absolute tolerance", field="scaling_efficiency", digits=3,
           max_threshold=0.5),
    # The step decomposition (ampcore.measure.probe). Host CPU time and eager wall time drift from
    # process to process, so their thresholds sit above the largest ratio between runs of
    # unchanged code; the counters are exact and carry the fine-grained detection.
    Metric("host_time", "host CPU time per eager step", "ms", relative=True,
           higher_is_worse=True, default_threshold=0.90, calibration_step=0.005,
           test="one-sided Mann-Whitney U on the probe's steps + threshold",
           field="host_step_s", scale=1e-3, samples=True),
    Metric("eager_time", "eager step time (synchronised)", "ms", relative=True,
           higher_is_worse=True, default_threshold=0.35, calibration_step=0.005,
           test="one-sided Mann-Whitney U on the probe's steps + threshold",
           field="eager_step_s", scale=1e-3, samples=True),
    Metric("aten_ops", "aten ops per step", "", relative=True, higher_is_worse=True,
           default_threshold=0.02, calibration_step=0.005, test="exact count + threshold",
           field="aten_ops_per_step", chart=False, counter=True),
    Metric("python_ops", "Python bytecodes per step", "", relative=True, higher_is_worse=True,
           default_threshold=0.02, calibration_step=0.005, test="exact count + threshold",
           field="python_ops_per_step", chart=False, counter=True),
    Metric("kernel_launches", "CUDA kernel launches per step", "", relative=True,
           higher_is_worse=True, default_threshold=0.02, calibration_step=0.005,
           test="exact count + threshold", field="kernel_launches_per_step",
           chart=False, counter=True),
    Metric("casts", "dtype casts per step", "", relative=False, higher_is_worse=True,
           default_threshold=0, calibration_step=1, test="exact count + threshold",
           field="casts_per_step", chart=False, counter=True, max_threshold=1000),
    Metric("syncs", "host-device syncs per step", "", relative=False, higher_is_worse=True,
           default_threshold=0, calibration_step=1, test="exact count + threshold",
           field="syncs_per_step", chart=False, counter=True, max_threshold=1000),
    Metric("bytes_allocated", "bytes allocated per step", "MiB", relative=True,
           higher_is_worse=True, default_threshold=0.01, calibration_step=0.005,
           test="exact count + threshold", field="bytes_allocated_per_step", scale=2**20,
           chart=False, counter=True),
)}


def describe_changes(baseline: dict[str, int], candidate: dict[str, int], limit: int = 3) -> str:
    """The largest per-operator changes, e.g. "+24 aten._to_copy, -2 aten.mm"."""
    names = set(baseline) | set(candidate)
    deltas = [(candidate.get(n, 0) - baseline.get(n, 0), n) for n in names]
    deltas = sorted((d for d in deltas if d[0]), key=lambda d: (-abs(d[0]), d[1]))
    return ", ".join(f"{d:+d} {n}" for d, n in deltas[:limit])


def get_metric(name: str) -> Metric:
    return METRICS[name]


def _check_fields() -> None:
    """A row naming a field the record does not have would silently judge nothing; one whose
    default exceeds its own maximum would be refused by every configuration."""
    known = {f.name for f in fields(BenchmarkRecord)}
    for metric in METRICS.values():
        if metric.field is not None and metric.field not in known:
            raise RuntimeError(f"metric {metric.name!r} reads BenchmarkRecord.{metric.field}, "
                               "which does not exist")
        if metric.paired is not None and metric.paired not in known:
            raise RuntimeError(f"metric {metric.name!r} pairs on BenchmarkRecord."
                               f"{metric.paired}, which does not exist")
        if metric.requires is not None and metric.requires not in known:
            raise RuntimeError(f"metric {metric.name!r} requires BenchmarkRecord."
                               f"{metric.requires}, which does not exist")
        defaults = (metric.default_threshold, metric.eager_threshold, metric.captured_threshold)
        if any(d is not None and d > metric.max_threshold for d in defaults):
            raise RuntimeError(f"metric {metric.name!r}: a default threshold exceeds its "
                               f"max_threshold {metric.max_threshold:g}")
        unknown = sorted(set(metric.settings) - known)
        if unknown:
            raise RuntimeError(f"metric {metric.name!r} compares BenchmarkRecord."
                               f"{', '.join(unknown)}, which does not exist")


_check_fields()
