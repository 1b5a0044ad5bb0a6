"""One timed, evaluated run: profile + workload + precision -> ``RunResult``.

``Experiment`` exposes the run as rounds so that a caller with its own timer (pytest-benchmark)
can time each round, while ``run_experiment`` times the rounds itself; both time the same
call, ``Experiment.train_round``, which synchronises the device before returning.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from ampcore import environment
from ampcore.errors import DeviceOutOfMemoryError, DeviceUnavailableError
from ampcore.loop import Evaluation, Trainer, plan_steps
from ampcore.precision import get_precision
from ampcore.profiles import WorkloadConfig, get_profile
from ampcore.result import RunResult
from ampcore.timing import peak_memory_bytes, reset_peak_memory, synchronize, timed
from ampcore.workloads import get_workload


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection inside a timed round: a collection over a large model's
    object graph is a host pause of milliseconds that, when the step is launch-bound, shows up
    as round-to-round noise. Collection resumes (untimed) once the round is over."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(frozen=True)
class RunSpec:
    """Every choice that defines one run."""

    workload: str
    precision: str
    profile: str
    device: str = "cuda"
    data_dir: Path | None = None
    bert_model: str | None = None  # overrides the profile's model
    max_length: int | None = None  # overrides the profile's max length
    allow_download: bool = False
    allow_random_init: bool = False
    max_grad_norm: float | None = None
    compile: bool = False
    # Capture each step shape in a CUDA graph (ampcore.graphs). The core does what it is told;
    # the CLI and the suite default to captured steps on CUDA (``resolve_cuda_graphs``).
    cuda_graphs: bool = False

    def workload_config(self) -> WorkloadConfig:
        config = get_profile(self.profile).workloads[self.workload]
        overrides = {}
        if self.workload == "bert" and self.bert_model is not None:
            overrides["model"] = self.bert_model
        if self.workload == "bert" and self.max_length is not None:
            overrides["max_length"] = self.max_length
        return dataclasses.replace(config, **overrides)


def resolve_device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            f"device {name!r} was asked for but CUDA is not available here "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda}); use --device cpu")
    return device


class Experiment:
    """A run in rounds: ``with Experiment(spec) as exp: exp.start(); for r in exp.rounds(): ...``

    ``rank``/``world_size``/``wrap_model`` make it one rank of a data-parallel run (see
    ``ampcore.distributed``): the workload is built and planned for the global batch
    (``world_size`` x the profile's batch), this rank trains its share of each global batch,
    and ``wrap_model`` wraps the model (in DistributedDataParallel) for training and evaluation.
    """

    def __init__(self, spec: RunSpec, *, rank: int = 0, world_size: int = 1,
                 wrap_model: Callable[[torch.nn.Module], torch.nn.Module] | None = None) -> None:
        self.spec = spec
        self.rank = rank
        self.world_size = world_size
        self.wrap_model = wrap_model
        self.profile = get_profile(spec.profile)
        self.precision = get_precision(spec.precision)
        self.build = get_workload(spec.workload)
        self.config = spec.workload_config()
        self.device = resolve_device(spec.device)
        self.precision.check_supported(self.device)
        self._stack = contextlib.ExitStack()
        self.round_times: list[float] = []
        self.evaluations: list[Evaluation] = []
        self.eval_time = 0.0
        self.warmup_time = 0.0
        self.nonfinite_losses = 0

    def __enter__(self) -> Experiment:
        self.amp = self._stack.enter_context(self.precision.activate(self.device))
        # Built for the global batch: what the workload derives from it (bert's LR schedule
        # length) must follow the global step plan. ``self.config`` keeps the per-rank batch.
        config = self.config
        if self.world_size > 1:
            config = dataclasses.replace(config, batch_size=config.batch_size * self.world_size)
        try:
            with self._out_of_memory_as_error():
                self.workload = self.build(
                    config, self.device, real_data=self.profile.real_data,
                    data_dir=self.spec.data_dir, allow_download=self.spec.allow_download,
                    allow_random_init=self.spec.allow_random_init)
                self.plan = plan_steps(self.workload.train_size, config.batch_size,
                                       config.epochs, config.seed, self.profile.min_rounds,
                                       self.device, rank=self.rank, world_size=self.world_size)
                self.trainer = Trainer(self.workload, self.amp, self.plan,
                                       max_grad_norm=self.spec.max_grad_norm,
                                       compile_model=self.spec.compile,
                                       wrap_model=self.wrap_model,
                                       cuda_graphs=self.spec.cuda_graphs)
        except BaseException:
            self._stack.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        for name in ("trainer", "workload", "plan"):
            self.__dict__.pop(name, None)
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        self._stack.close()

    @property
    def n_rounds(self) -> int:
        return len(self.plan.rounds)

    def start(self) -> None:
        """Untimed warm-up whose effects on the trajectory are undone."""
        with self._out_of_memory_as_error():
            self.warmup_time = timed(lambda: self.trainer.warm_up(self.profile.warmup_steps),
                                     self.device)
        reset_peak_memory(self.device)

    def train_round(self, round_index: int) -> None:
        """The timed call: one round of whole optimizer steps, device drained at the end."""
        with self._out_of_memory_as_error(), gc_paused():
            self.trainer.run_round(round_index)
            synchronize(self.device)

    def after_round(self, round_index: int) -> None:
        """Untimed: check the round's losses and, at an epoch end, evaluate on the test split."""
        self.nonfinite_losses += self.trainer.check_losses()["nonfinite_losses"]
        if round_index in self.plan.epoch_ends:
            start = time.perf_counter()
            with self._out_of_memory_as_error():
                self.evaluations.append(self.trainer.evaluate())
            self.eval_time += time.perf_counter() - start

    def run_rounds(self, progress: bool = False,
                   before_round: Callable[[int], None] | None = None) -> None:
        """Time every round with this process's own timer (the CLI's path).

        ``before_round(r)`` runs untimed just before round r (a barrier, so that every rank of
        a distributed run starts the round together)."""
        bar = None
        for r in range(self.n_rounds):
            if progress and (r == 0 or r - 1 in self.plan.epoch_ends):
                if bar is not None:
                    bar.close()
                bar = self._progress_bar(self.plan.epoch_of_round[r])
            if before_round is not None:
                before_round(r)
            self.round_times.append(timed(lambda: self.train_round(r), self.device))
            self.after_round(r)
            if bar is not None:
                bar.update(len(self.plan.rounds[r]))
                if r in self.plan.epoch_ends:
                    bar.set_postfix(acc=f"{self.evaluations[-1].accuracy:.3f}")
        if bar is not None:
            bar.close()

    def _progress_bar(self, epoch: int):
        """A bar over one epoch's steps, on stderr."""
        from tqdm import tqdm

        steps = sum(len(self.plan.rounds[r]) for r, e in enumerate(self.plan.epoch_of_round) if e == epoch)
        return tqdm(total=steps, file=sys.stderr, unit="step",
                    desc=f"{self.spec.workload}/{self.spec.precision} epoch {epoch + 1}/{self.config.epochs}")

    def result(self, round_times: list[float] | None = None) -> RunResult:
        """Collect the run's figures; ``round_times`` from an outside timer replace our own."""
        times = list(round_times) if round_times is not None else self.round_times
        scaler = self.amp.scaler_state()
        scaler["skipped_steps"] = self.trainer.skipped_steps()
        workload = self.workload
        return RunResult(
            workload=self.spec.workload, precision=self.spec.precision, profile=self.spec.profile,
            device=str(self.device),
            config={**self.config.to_dict(), "compile": self.spec.compile,
                    "cuda_graphs": self.spec.cuda_graphs,
                    "max_grad_norm": self.spec.max_grad_norm, "rounds": self.n_rounds,
                    "warmup_steps": self.trainer.warmup_steps},
            data_source=workload.data_source, weights_source=workload.weights_source,
            accuracy_meaningful=workload.accuracy_meaningful,
            round_times_s=times,
            samples_per_round=[sum(len(self.plan.batches[i]) for i in rng) for rng in self.plan.rounds],
            total_steps=self.plan.total_steps,
            warmup_time_s=self.warmup_time, eval_time_s=self.eval_time,
            accuracy_per_epoch=[e.accuracy for e in self.evaluations],
            test_loss_per_epoch=[e.loss for e in self.evaluations],
            train_losses=self.trainer.losses.cpu().tolist(),
            predictions=self.evaluations[-1].predictions if self.evaluations else [],
            peak_memory_bytes=self.peak_memory_bytes(),
            grad_scaler=scaler, nonfinite_losses=self.nonfinite_losses,
            environment=environment.capture(self.device),
            tokens_per_sample=workload.tokens_per_sample,
            flops_per_sample=workload.flops_per_sample, details=workload.details,
        )

    def peak_memory_bytes(self) -> int | None:
        """The timed rounds' peak memory; with CUDA graphs, the larger of it and the capture's
        (a replay allocates nothing, so the rounds alone would miss the step's activations)."""
        peaks = [p for p in (peak_memory_bytes(self.device), self.trainer.captured_peak_bytes)
                 if p is not None]
        return max(peaks) if peaks else None

    @contextlib.contextmanager
    def _out_of_memory_as_error(self) -> Iterator[None]:
        try:
            yield
        except torch.OutOfMemoryError as exc:
            config = self.config
            length = f", max length {config.max_length}" if self.spec.workload == "bert" else ""
            raise DeviceOutOfMemoryError(
                f"{self.spec.device} ran out of memory in {self.spec.workload}/{self.spec.precision} "
                f"(batch size {config.batch_size}{length}): use a larger GPU, or a smaller "
                f"batch or max length. torch said: {str(exc).splitlines()[0]}") from exc


def run_experiment(spec: RunSpec, progress: bool = False) -> RunResult:
    """Warm up, train every round under this process's timer, evaluate; one ``RunResult``."""
    with Experiment(spec) as experiment:
        experiment.start()
        experiment.run_rounds(progress=progress)
        return experiment.result()
