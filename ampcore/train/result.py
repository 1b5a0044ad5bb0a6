"""``RunResult``: everything one (workload, precision) run measured, serialisable to JSON."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ampcore.train.config import ConfiguredRun
from ampcore.train.merged import MergedRun, Part, split_legacy_details

# ``grad_scaler`` beside "enabled" and "skipped_steps" (``ampcore.train.loss_scale``): the
# scaler's configuration, then how its scale moved; the record's ``grad_scaler_*`` fields.
SCALER_CONFIG = ("init_scale", "growth_factor", "backoff_factor", "growth_interval")
SCALER_HEALTH = ("final_scale", "min_scale", "growths", "backoffs")


@dataclass
class RunResult(ConfiguredRun):
    workload: str
    precision: str
    profile: str
    device: str
    config: dict
    data_source: str
    weights_source: str
    accuracy_meaningful: bool
    round_times_s: list[float]
    samples_per_round: list[int]
    total_steps: int
    warmup_time_s: float
    eval_time_s: float
    accuracy_per_epoch: list[float]
    test_loss_per_epoch: list[float]
    train_losses: list[float]  # one per optimizer step
    predictions: list[int]  # final test-set predictions, for paired comparisons
    peak_memory_bytes: int | None
    grad_scaler: dict
    nonfinite_losses: int
    environment: dict
    tokens_per_sample: int | None = None
    flops_per_sample: float | None = None
    details: dict = field(default_factory=dict)
    # The step decomposition (ampcore.measure.probe): host CPU time and eager wall time per step,
    # deterministic counters. Empty for results saved before it existed.
    step_probe: dict = field(default_factory=dict)
    # The held-out evaluation set (ampcore.measure.stats.pack_correct: one bit a sample, correct or
    # not), evaluated once after training. Empty for runs without one and older results.
    heldout_samples: int = 0
    heldout_accuracy: float | None = None
    heldout_correct: str = ""
    heldout_source: str = ""
    heldout_time_s: float = 0.0
    # How a result merged from several processes (DDP ranks, fresh processes) was made, and
    # each one's figures (ampcore.train.merged); None for a run in one process.
    merged: MergedRun | None = None

    # --- derived figures ---------------------------------------------------------------
    @property
    def train_time_s(self) -> float:
        return float(sum(self.round_times_s))

    @property
    def samples_per_s(self) -> float:
        return sum(self.samples_per_round) / self.train_time_s

    @property
    def tokens_per_s(self) -> float | None:
        return self.samples_per_s * self.tokens_per_sample if self.tokens_per_sample else None

    @property
    def model_tflops(self) -> float | None:
        """Achieved model TFLOP/s from the analytical count (None where there is none)."""
        if not self.flops_per_sample:
            return None
        return self.flops_per_sample * self.samples_per_s / 1e12

    @property
    def world_size(self) -> int:
        """DDP processes that trained this run together (1: no DDP)."""
        return self.run_config.world_size

    def as_part(self) -> Part:
        """This run's figures as one part of a merged run (a DDP rank, a fresh process)."""
        return Part(self.device, tuple(self.round_times_s), self.step_time_s,
                    self.peak_memory_bytes, self.grad_scaler.get("final_scale"),
                    self.skipped_steps, self.heldout_accuracy)

    @property
    def final_accuracy(self) -> float:
        return self.accuracy_per_epoch[-1]

    def heldout(self):
        """The held-out set's per-sample correctness (numpy booleans), None without one."""
        if not self.heldout_samples or not self.heldout_correct:
            return None
        from ampcore.measure.stats import unpack_correct

        return unpack_correct(self.heldout_correct, self.heldout_samples)

    @property
    def heldout_loss(self) -> float | None:
        """The final held-out loss per token where it is the workload's quality metric (a
        language model: ``quality="loss"`` in its registry entry), else None."""
        from ampcore.core.registry import WORKLOADS

        entry = WORKLOADS.get(self.workload)
        if entry is None or entry.quality != "loss" or not self.test_loss_per_epoch:
            return None
        return self.test_loss_per_epoch[-1]

    @property
    def final_train_loss(self) -> float:
        return self.train_losses[-1]

    @property
    def skipped_steps(self) -> int:
        return int(self.grad_scaler.get("skipped_steps", 0))

    @property
    def step_time_s(self) -> float:
        """Median round time per step: the GPU's work per step when steps are captured."""
        per_step = sorted(t / max(1, n) for t, n in zip(self.round_times_s, self.steps_per_round))
        return per_step[len(per_step) // 2] if per_step else float("nan")

    @property
    def steps_per_round(self) -> list[int]:
        return list(self.run_config.steps_per_round or [1] * len(self.round_times_s))

    @property
    def round_cv(self) -> float:
        """Coefficient of variation of the per-sample round times (rounds differ in size)."""
        from ampcore.measure.stats import round_cv  # scipy: not at every worker's start

        return round_cv(self.round_times_s, self.samples_per_round) or 0.0

    def summary(self) -> dict:
        """The headline figures, as stored in a benchmark's ``extra_info``."""
        return {
            "train_time_s": self.train_time_s,
            "samples_per_s": self.samples_per_s,
            "tokens_per_s": self.tokens_per_s,
            "model_tflops": self.model_tflops,
            "final_accuracy": self.final_accuracy,
            "accuracy_per_epoch": self.accuracy_per_epoch,
            "final_train_loss": self.final_train_loss,
            "final_test_loss": self.test_loss_per_epoch[-1],
            "heldout_loss": self.heldout_loss,
            "peak_memory_bytes": self.peak_memory_bytes,
            "round_cv": self.round_cv,
            "skipped_steps": self.skipped_steps,
            "total_steps": self.total_steps,
            **{f"grad_scaler_{key}": self.grad_scaler.get(key)
               for key in ("enabled", *SCALER_CONFIG, *SCALER_HEALTH)},
            "nonfinite_losses": self.nonfinite_losses,
            "eval_time_s": self.eval_time_s,
            "warmup_time_s": self.warmup_time_s,
            "data_source": self.data_source,
            "weights_source": self.weights_source,
            "accuracy_meaningful": self.accuracy_meaningful,
            "profile": self.profile,
            "config": self.config,
            "injections": list(self.run_config.injections),
            "step_time_s": self.step_time_s if self.run_config.steps_per_round else None,
            "heldout_samples": self.heldout_samples or None,
            "heldout_accuracy": self.heldout_accuracy,
            "heldout_correct": self.heldout_correct or None,
            "heldout_source": self.heldout_source or None,
            "heldout_time_s": self.heldout_time_s if self.heldout_samples else None,
            **self.step_probe,
        }

    # --- serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict:
        data = asdict(self)
        data["merged"] = self.merged.to_dict() if self.merged else None
        data["summary"] = self.summary()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> RunResult:
        names = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        if values.get("merged") is not None:
            values["merged"] = MergedRun.from_dict(values["merged"])
        elif values.get("details"):  # saved before MergedRun: its figures are in details
            merged, details, sizes = split_legacy_details(values["details"], values.get("device"))
            if merged is not None:  # the sizes were in config too, bar the oldest files
                config = values.get("config", {})
                values.update(merged=merged, details=details, config={
                    **config, **{k: v for k, v in sizes.items() if k not in config}})
        return cls(**values)


def write_json(results: list[RunResult], path: str | Path, partial: bool = False) -> Path:
    """Write results to the new file ``path`` atomically (a crash leaves no half-written
    file); ``FileExistsError`` if it exists, which is never overwritten. ``partial``: the run
    was interrupted and these are the results that finished (``"partial": true``)."""
    from ampcore.core.files import create_new

    return create_new(Path(path), results_json(results, partial))


def results_json(results: list[RunResult], partial: bool = False) -> str:
    """The text ``write_json`` writes: ``{"runs": [...]}``, with ``"partial": true`` when
    these are the runs that finished of an interrupted or failed command."""
    data: dict = {"runs": [r.to_dict() for r in results]}
    if partial:
        data["partial"] = True
    return json.dumps(data, indent=1)


def read_json(path: str | Path) -> list[RunResult]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return [RunResult.from_dict(run) for run in data["runs"]]
