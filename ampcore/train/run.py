"""One timed, evaluated run: profile + workload + precision -> ``RunResult``.

``Experiment`` exposes the run as rounds so that a caller with its own timer (the suite, under
pytest-benchmark) can time each round, while ``run_experiment`` times the rounds itself; both
time the same call, ``Experiment.train_round``, which synchronises the device before returning.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from ampcore.core.quiet import quiet_training
from ampcore.measure import environment
from ampcore.measure.tenancy import sole_tenant

from ampcore.train import inject
from ampcore.core.errors import DeviceOutOfMemoryError, UsageError
from ampcore.train.loop import Evaluation, Trainer
from ampcore.train.plan import StepPlan, plan_steps
from ampcore.train.precision import ActivePrecision, activate
from ampcore.train.progress import EpochBars
from ampcore.core.profiles import get_profile
from ampcore.core.registry import get_precision, run_name, workload_entry
from ampcore.train.config import RunConfig
from ampcore.train.result import RunResult
from ampcore.train.spec import RunSpec, resolve_device
from ampcore.measure.timing import (
    gc_paused,
    peak_memory_bytes,
    reset_peak_memory,
    synchronize,
    timed,
)
from ampcore.workloads import get_workload
from ampcore.workloads.base import PreparedWorkload


@dataclass
class RunState:
    """What an entered ``Experiment`` trains with and has measured: built by ``__enter__``,
    dropped whole by ``__exit__`` (it holds the model, optimizer and device data)."""

    amp: ActivePrecision
    workload: PreparedWorkload
    plan: StepPlan
    trainer: Trainer
    round_times: list[float] = field(default_factory=list)  # this process's own timer
    evaluations: list[Evaluation] = field(default_factory=list)
    warmup_time: float = 0.0
    eval_time: float = 0.0
    nonfinite_losses: int = 0
    heldout: Evaluation | None = None  # the held-out set, evaluated after the last round
    heldout_time: float = 0.0


class Experiment:
    """A run in rounds, each timed by the caller around ``train_round`` alone::

        with Experiment(spec) as exp:
            exp.start()                  # untimed warm-up, undone
            for r in exp.rounds():       # checks and evaluation run between the yields
                times.append(timed(lambda: exp.train_round(r), exp.device))
            result = exp.result(times)

    ``run_rounds`` is that loop with this process's timer.

    ``rank``/``world_size``/``wrap_model`` make it one rank of a data-parallel run (see
    ``ampcore.launch``): the workload is built and planned for the global batch
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
        # The precision is checked on the device by ``activate`` on entry; the faces have
        # checked each mode once before any run, so a second check here would add nothing.
        self.device = resolve_device(spec.device)
        self._stack: contextlib.ExitStack | None = None
        self._state: RunState | None = None

    def __enter__(self) -> Experiment:
        stack = contextlib.ExitStack()
        try:
            # Here, not in each caller: every path that trains (CLI, suite, worker) is quiet once.
            stack.enter_context(quiet_training())
            if self.device.type == "cuda" and self.rank == 0:  # timed GPU work: one tenant
                stack.enter_context(sole_tenant(f"cuda:{self.device.index or 0}", run_name(
                    self.spec.workload, self.spec.precision)))
            self._state = self._prepare(stack.enter_context(activate(self.precision, self.device)))
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        return self

    def _prepare(self, amp: ActivePrecision) -> RunState:
        # Built for the global batch: what the workload derives from it (bert's LR schedule
        # length) must follow the global step plan. ``self.config`` keeps the per-rank batch.
        config = self.config
        if self.world_size > 1:
            config = dataclasses.replace(config, batch_size=config.batch_size * self.world_size)
        with self._out_of_memory_as_error():
            workload = self.build(
                config, self.device, real_data=self.profile.real_data,
                data_dir=self.spec.data_dir, allow_download=self.spec.allow_download,
                allow_random_init=self.spec.allow_random_init)
            workload = amp.prepare(workload)  # float8: its linear layers swapped
            workload = inject.apply(self.spec.injections, workload, self.precision)
            plan = plan_steps(workload.train_size, config.batch_size, config.epochs,
                              config.training_seed, self.profile.min_rounds, self.device,
                              rank=self.rank, world_size=self.world_size)
            trainer = Trainer(workload, amp, plan, max_grad_norm=self.spec.max_grad_norm,
                              compile_model=self.spec.compile, wrap_model=self.wrap_model,
                              cuda_graphs=self.spec.cuda_graphs,
                              capture_fallback=self.spec.capture_fallback)
        return RunState(amp, workload, plan, trainer)

    def __exit__(self, *exc_info: object) -> None:
        self._state = None  # the last references to the model, so the memory can go now
        gc.collect()
        if self.device.type == "cuda":
            # cuBLAS keeps a workspace per stream it ran on, the capture
            # stream included, as allocated memory: left, it counted in the next run's peak.
            clear_workspaces = getattr(torch._C, "_cuda_clearCublasWorkspaces", None)
            if clear_workspaces is not None:
                clear_workspaces()
            torch.cuda.empty_cache()
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()

    @property
    def state(self) -> RunState:
        if self._state is None:
            raise UsageError("an Experiment trains inside `with Experiment(spec) as exp:`")
        return self._state

    @property
    def workload(self) -> PreparedWorkload:
        return self.state.workload

    @property
    def plan(self) -> StepPlan:
        return self.state.plan

    @property
    def trainer(self) -> Trainer:
        return self.state.trainer

    @property
    def n_rounds(self) -> int:
        return len(self.plan.rounds)

    def start(self) -> None:
        """Untimed warm-up whose effects on the trajectory are undone."""
        with self._out_of_memory_as_error():
            self.state.warmup_time = timed(
                lambda: self.trainer.warm_up(self.profile.warmup_steps), self.device)
        reset_peak_memory(self.device)

    def train_round(self, round_index: int) -> None:
        """The timed call: one round of whole optimizer steps, device drained at the end."""
        with self._out_of_memory_as_error(), gc_paused():
            self.trainer.run_round(round_index)
            synchronize(self.device)

    def after_round(self, round_index: int) -> None:
        """Untimed: check the round's losses and, at an epoch end, evaluate on the test split;
        after the last round, evaluate the held-out set once."""
        state = self.state
        state.nonfinite_losses += state.trainer.check_losses()["nonfinite_losses"]
        if round_index in state.plan.epoch_ends:
            start = time.perf_counter()
            with self._out_of_memory_as_error():
                state.evaluations.append(state.trainer.evaluate())
            state.eval_time += time.perf_counter() - start
        if round_index == self.n_rounds - 1:
            start = time.perf_counter()
            with self._out_of_memory_as_error():
                state.heldout = state.trainer.evaluate_heldout()
            state.heldout_time = time.perf_counter() - start

    def rounds(self, on_checked: Callable[[int], None] | None = None) -> Iterator[int]:
        """Yield each round index in order, for the caller to time ``train_round`` on it.

        Before yielding the next index (and, once the rounds are exhausted, after the last)
        the previous round's untimed ``after_round`` runs, then ``on_checked(r)``: the caller's
        timed region holds the round alone."""
        for r in range(self.n_rounds):
            yield r
            self.after_round(r)
            if on_checked is not None:
                on_checked(r)

    def run_rounds(self, progress: bool = False,
                   before_round: Callable[[int], None] | None = None) -> None:
        """Time every round with this process's own timer (the CLI's path).

        ``before_round(r)`` runs untimed just before round r (a barrier, so that every rank of
        a distributed run starts the round together)."""
        bars = EpochBars(self.plan, f"{self.spec.workload}/{self.spec.precision}",
                         self.config.epochs, lambda: self.state.evaluations[-1].accuracy
                         ) if progress else None
        try:
            for r in self.rounds(on_checked=bars.round_checked if bars else None):
                if before_round is not None:
                    before_round(r)
                self.state.round_times.append(timed(lambda: self.train_round(r), self.device))
        finally:
            if bars is not None:
                bars.close()

    def result(self, round_times: list[float] | None = None) -> RunResult:
        """Collect the run's figures; ``round_times`` from an outside timer replace our own."""
        state = self.state
        times = list(round_times) if round_times is not None else state.round_times
        scaler = state.amp.scaler_state()
        scaler["skipped_steps"] = state.trainer.skipped_steps()
        workload, plan = state.workload, state.plan
        return RunResult(
            workload=self.spec.workload, precision=self.spec.precision, profile=self.spec.profile,
            device=str(self.device),
            config=RunConfig.of_run(
                self.config, compile=self.spec.compile,
                cuda_graphs=state.trainer.strategy.captured,  # False where capture fell back
                max_grad_norm=self.spec.max_grad_norm, rounds=self.n_rounds,
                warmup_steps=state.trainer.warmup_steps,
                steps_per_round=tuple(len(r) for r in plan.rounds),
                injections=tuple(self.spec.injections)).to_dict(),
            data_source=workload.data_source, weights_source=workload.weights_source,
            accuracy_meaningful=workload.accuracy_meaningful,
            round_times_s=times,
            samples_per_round=[sum(len(plan.batches[i]) for i in rng) for rng in plan.rounds],
            total_steps=plan.total_steps,
            warmup_time_s=state.warmup_time, eval_time_s=state.eval_time,
            accuracy_per_epoch=[e.accuracy for e in state.evaluations],
            test_loss_per_epoch=[e.loss for e in state.evaluations],
            train_losses=state.trainer.losses.cpu().tolist(),
            predictions=state.evaluations[-1].predictions if state.evaluations else [],
            peak_memory_bytes=self.peak_memory_bytes(),
            grad_scaler=scaler, nonfinite_losses=state.nonfinite_losses,
            environment=environment.capture(self.device),
            tokens_per_sample=workload.tokens_per_sample,
            flops_per_sample=workload.flops_per_sample, details=workload.details,
            step_probe=state.trainer.probe.summary() if state.trainer.probe else {},
            **(state.heldout.heldout_fields(state.heldout_time, workload.heldout_source)
               if state.heldout else {}),
        )

    def peak_memory_bytes(self) -> int | None:
        """The timed rounds' peak memory, or the step's own where the strategy saw more (a
        captured step's replays allocate nothing: its activations were allocated at capture)."""
        peaks = [p for p in (peak_memory_bytes(self.device),
                             self.trainer.strategy.peak_memory_bytes) if p is not None]
        return max(peaks) if peaks else None

    @contextlib.contextmanager
    def _out_of_memory_as_error(self) -> Iterator[None]:
        try:
            yield
        except torch.OutOfMemoryError as exc:
            # Name the size knobs this workload has: the batch, and those its registry entry
            # lets a run override (a sequence length, say).
            config, entry = self.config, workload_entry(self.spec.workload)
            knobs = {"batch size": config.batch_size}
            if entry.accepts("max_length"):
                knobs["max length"] = config.max_length
            raise DeviceOutOfMemoryError(
                f"{self.spec.device} ran out of memory in {self.spec.workload}/{self.spec.precision} "
                f"({', '.join(f'{k} {v}' for k, v in knobs.items())}): use a larger GPU, or a "
                f"smaller {' or '.join(knobs)}. torch said: {str(exc).splitlines()[0]}") from exc


def run_experiment(spec: RunSpec, progress: bool = False) -> RunResult:
    """Warm up, train every round under this process's timer, evaluate; one ``RunResult``."""
    with Experiment(spec) as experiment:
        experiment.start()
        experiment.run_rounds(progress=progress)
        return experiment.result()
