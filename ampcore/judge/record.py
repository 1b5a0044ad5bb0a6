"""What a suite session saves, the only contract between the suite, which writes it, and
``ampcore.history``, which reads it back: ``BenchmarkRecord`` (one benchmark, in
pytest-benchmark's ``extra_info``) and ``SessionRecord`` (the session, in
``machine_info["ampcore"]``).

Torch-free. The record is versioned: a saved file of an older schema is read through its own
reader, and one of a newer schema than this code knows is refused with the version named,
never half-read. Schema 1 is the untyped ``extra_info`` the suite wrote before the record
existed (the same keys, no ``schema`` field).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING

from ampcore.core.errors import AmpcoreError
from ampcore.train.config import ConfiguredRun

if TYPE_CHECKING:
    from ampcore.train.result import RunResult

SCHEMA = 4  # 3: the held-out evaluation set (heldout_*); 4: loss-scale health (grad_scaler_*)
SCHEMA_KEY = "ampcore_schema"


class RecordError(AmpcoreError):
    """A saved record this code cannot read: a newer schema, or a malformed field."""


@dataclass(frozen=True)
class BenchmarkRecord(ConfiguredRun):
    """One benchmark of one suite session. Missing figures are None (e.g. memory on a CPU)."""

    workload: str
    precision: str
    profile: str | None = None
    device: str | None = None
    # What was trained: the workload's configuration (model, lengths, batch, epochs, samples)
    # plus the run's choices (compile, cuda_graphs, max_grad_norm, rounds, warmup_steps).
    config: dict = field(default_factory=dict)
    data_source: str | None = None
    weights_source: str | None = None
    accuracy_meaningful: bool = True
    world_size: int = 1
    injections: tuple[str, ...] = ()  # regressions injected on purpose (never a baseline)
    # Time
    train_time_s: float | None = None
    samples_per_s: float | None = None
    tokens_per_s: float | None = None
    model_tflops: float | None = None
    round_cv: float | None = None
    samples_per_round: tuple[int, ...] = ()
    eval_time_s: float | None = None
    warmup_time_s: float | None = None
    speedup_vs_fp32: float | None = None  # within-session, median fp32 / median this
    speedup_ci: tuple[float, float] | None = None
    # Quality and health
    final_accuracy: float | None = None
    accuracy_per_epoch: tuple[float, ...] = ()
    final_train_loss: float | None = None
    final_test_loss: float | None = None
    heldout_loss: float | None = None  # final_test_loss where loss is the quality (llama)
    peak_memory_bytes: float | None = None
    skipped_steps: int | None = None
    total_steps: int | None = None
    nonfinite_losses: int | None = None
    grad_scaler_final_scale: float | None = None
    # Loss scaling (ampcore.train.loss_scale): the GradScaler's configuration, then its scale's
    # minimum and moves over the timed training. Scaling off: None but ``enabled``.
    grad_scaler_enabled: bool | None = None
    grad_scaler_init_scale: float | None = None
    grad_scaler_growth_factor: float | None = None
    grad_scaler_backoff_factor: float | None = None
    grad_scaler_growth_interval: int | None = None
    grad_scaler_min_scale: float | None = None
    grad_scaler_growths: int | None = None
    grad_scaler_backoffs: int | None = None
    # The step decomposition (ampcore.measure.probe): per eager step, samples and medians; the median
    # round time per step (captured: the GPU's work); deterministic counters of one step.
    step_time_s: float | None = None
    host_step_s: tuple[float, ...] = ()
    eager_step_s: tuple[float, ...] = ()
    host_step_median_s: float | None = None
    eager_step_median_s: float | None = None
    aten_ops_per_step: int | None = None
    casts_per_step: int | None = None
    syncs_per_step: int | None = None
    bytes_allocated_per_step: int | None = None
    kernel_launches_per_step: int | None = None
    python_ops_per_step: int | None = None
    ops_per_step: dict = field(default_factory=dict)  # per operator, to name what changed
    # microseconds per CUDA kernel of one eager step (ampcore.measure.kernels): to name the
    # kernels behind a time change
    kernel_time_per_step: dict = field(default_factory=dict)
    # The held-out evaluation set: its size, accuracy, what it is, and which samples were
    # right (ampcore.measure.stats.pack_correct: base64, 1 bit a sample) for paired comparisons.
    heldout_samples: int | None = None
    heldout_accuracy: float | None = None
    heldout_correct: str | None = None
    heldout_source: str | None = None
    heldout_time_s: float | None = None
    # DistributedDataParallel runs only
    per_rank_peak_memory_bytes: tuple[float, ...] | None = None
    scaler_consistent: bool | None = None
    single_gpu_samples_per_s: float | None = None
    scaling_efficiency: float | None = None
    # Hardware and software of the run (ampcore.measure.environment.capture)
    environment: dict = field(default_factory=dict)
    schema: int = SCHEMA

    @property
    def grad_scaler(self) -> dict:
        """The ``grad_scaler_*`` fields under ``RunResult.grad_scaler``'s keys."""
        prefix = "grad_scaler_"
        return {f.name[len(prefix):]: getattr(self, f.name) for f in fields(self)
                if f.name.startswith(prefix)}

    def to_extra_info(self) -> dict:
        """JSON-ready ``extra_info``; ``ampcore_schema`` says how to read it back."""
        data = asdict(self)
        data[SCHEMA_KEY] = data.pop("schema")
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data

    @classmethod
    def from_extra_info(cls, extra: Mapping) -> BenchmarkRecord:
        """Read a saved ``extra_info`` of any known schema; ``RecordError`` otherwise."""
        version = extra.get(SCHEMA_KEY, 1)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise RecordError(f"extra_info['{SCHEMA_KEY}'] is {version!r}, not a schema version")
        if version > SCHEMA:
            raise RecordError(f"record schema {version} is newer than this ampcore reads "
                              f"(up to {SCHEMA}): upgrade ampcore to read it")
        for required in ("workload", "precision"):
            if not isinstance(extra.get(required), str):
                raise RecordError(f"extra_info has no '{required}' string (schema {version})")
        values = {}
        for f in fields(cls):
            if f.name == "schema" or f.name not in extra:
                continue
            values[f.name] = _typed(f.name, extra[f.name])
        return cls(**values, schema=version)

    @classmethod
    def from_result(cls, result: RunResult, **measured: object) -> BenchmarkRecord:
        """The record of a finished run; ``measured`` adds what the session measured beside it
        (``speedup_vs_fp32``, ``speedup_ci``, DDP figures)."""
        summary = result.summary()
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in summary.items() if k in names}
        values.update(workload=result.workload, precision=result.precision, device=result.device,
                      samples_per_round=tuple(result.samples_per_round),
                      accuracy_per_epoch=tuple(result.accuracy_per_epoch),
                      environment=result.environment)
        values.update(measured)
        for name in _TUPLES:
            if isinstance(values.get(name), list):
                values[name] = tuple(values[name])
        return cls(**values)


_TUPLES = {"samples_per_round", "accuracy_per_epoch", "injections", "per_rank_peak_memory_bytes",
           "speedup_ci", "host_step_s", "eager_step_s"}
_TEXT = {"profile", "device", "data_source", "weights_source", "heldout_correct",
         "heldout_source"}
_DICTS = {"config", "environment", "ops_per_step", "kernel_time_per_step"}
_FLAGS = {"accuracy_meaningful", "scaler_consistent", "grad_scaler_enabled"}
_COUNTS = {"world_size", "skipped_steps", "total_steps", "nonfinite_losses", "aten_ops_per_step",
           "casts_per_step", "syncs_per_step", "bytes_allocated_per_step",
           "kernel_launches_per_step", "python_ops_per_step", "heldout_samples",
           "grad_scaler_growth_interval", "grad_scaler_growths", "grad_scaler_backoffs"}


def _typed(name: str, value: object) -> object:
    """A saved value in the field's type; None where the file holds something unusable, so a
    malformed figure is 'not available' rather than a wrong number."""
    if value is None:
        return None if name not in _DICTS | _TUPLES else _empty(name)
    if name == "kernel_time_per_step":  # microseconds by kernel name: numbers only
        pairs = value.items() if isinstance(value, dict) else ()
        return {str(k): t for k, t in ((k, number(v)) for k, v in pairs) if t is not None}
    if name in _DICTS:
        return dict(value) if isinstance(value, dict) else {}
    if name in _TEXT or name in ("workload", "precision"):
        return value if isinstance(value, str) else None
    if name in _FLAGS:
        return value if isinstance(value, bool) else None
    if name in _TUPLES:
        if not isinstance(value, list):
            return _empty(name)
        if name == "injections":
            return tuple(str(v) for v in value)
        numbers = tuple(number(v) for v in value)
        return None if None in numbers else numbers
    result = number(value)
    if name in _COUNTS and result is not None:
        return int(result)
    return result


def _empty(name: str) -> object:
    return {} if name in _DICTS else (None if name in ("speedup_ci", "per_rank_peak_memory_bytes")
                                      else ())


def describe_loss_scale(state: Mapping) -> str | None:
    """A run's loss scale in a few words for a table, from ``RunResult.grad_scaler`` or
    ``BenchmarkRecord.grad_scaler``: "off", "final 16384, min 8192, 0 growths, 2 backoffs";
    None where it was not recorded."""
    enabled, final = state.get("enabled"), number(state.get("final_scale"))
    if enabled is False:
        return "off"
    if enabled is None or final is None:
        return None
    text = f"final {final:g}"
    if state.get("min_scale") is not None:
        text += (f", min {state['min_scale']:g}, {state.get('growths')} growths, "
                 f"{state.get('backoffs')} backoffs")
    return text


def number(value: object) -> float | None:
    """A finite JSON number as a float, else None (bools, strings, NaN and inf are not)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        result = float(value)
    except OverflowError:  # an integer too large for a float
        return None
    return result if math.isfinite(result) else None


SESSION_SCHEMA = 2  # 1: the untyped dict written before SessionRecord (no schema key)
SESSION_SCHEMA_KEY = "session_schema"
SESSION_INCOMPLETE_KEY = "incomplete"


@dataclass(frozen=True)
class SessionRecord:
    """What a suite session records about itself in ``machine_info["ampcore"]``: the hardware
    and software (``ampcore.measure.environment.capture``), the step mode (part of what a
    timing means) and whether the session was cut short. Saved flat, as schema 1 was."""

    environment: dict = field(default_factory=dict)
    cuda_graphs: bool | None = None
    incomplete: bool = False
    schema: int = SESSION_SCHEMA

    def to_machine_info(self) -> dict:
        data = {**self.environment, "cuda_graphs": self.cuda_graphs,
                SESSION_SCHEMA_KEY: self.schema}
        if self.incomplete:
            data[SESSION_INCOMPLETE_KEY] = True
        return data

    def fields(self) -> dict:
        """The environment with the step mode: what runs are matched on."""
        return {**self.environment, "cuda_graphs": self.cuda_graphs}

    @classmethod
    def from_machine_info(cls, machine_info: object) -> SessionRecord | None:
        """The session of a saved ``machine_info`` of any known schema; None when it holds no
        ampcore entry (not an ampcore run); ``RecordError`` for a newer schema."""
        data = machine_info.get("ampcore") if isinstance(machine_info, Mapping) else None
        if not isinstance(data, Mapping):
            return None
        version = data.get(SESSION_SCHEMA_KEY, 1)
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise RecordError(f"machine_info['ampcore']['{SESSION_SCHEMA_KEY}'] is {version!r}, "
                              "not a schema version")
        if version > SESSION_SCHEMA:
            raise RecordError(f"session schema {version} is newer than this ampcore reads (up to "
                              f"{SESSION_SCHEMA}): upgrade ampcore to read it")
        graphs = data.get("cuda_graphs")
        environment = {k: v for k, v in data.items()
                       if k not in ("cuda_graphs", SESSION_INCOMPLETE_KEY, SESSION_SCHEMA_KEY)}
        return cls(environment, graphs if isinstance(graphs, bool) else None,
                   data.get(SESSION_INCOMPLETE_KEY) is True, version)
