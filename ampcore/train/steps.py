"""How ``Trainer`` runs its training step: eagerly, or captured in CUDA graphs and replayed.

The two differ in everything around the step, and only there: the stream the model is wrapped
and warmed up on, how long the warm-up must be, what it leaves ready (graphs to replay), how
the optimizer's state is put back afterwards, and what the step's own memory was. Each
strategy owns its side of those; ``Trainer`` holds one and never asks which.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager

import torch

from ampcore.core.errors import UncapturableStepError, UsageError
from ampcore.train import graphs
from ampcore.measure.timing import peak_memory_bytes, reset_peak_memory

StepFn = Callable[[torch.Tensor], torch.Tensor]  # sample indices -> detached loss


class StepStrategy(ABC):
    """Runs a step function (one whole optimizer step, free of host syncs) on a batch of
    sample indices, and owns the warm-up, capture and optimizer restore that go with it.

    The step function, a method of the trainer, is passed in and never kept: kept, it would
    tie trainer and strategy in a reference cycle, and the cyclic collector would then free
    a trainer's CUDA graphs (and DDP model) at a moment of its own, such as inside the next
    run's capture; that hung captured DDP runs."""

    name: str
    min_warmup_steps: int = 0  # steps the warm-up runs at least, whatever the profile asks
    # Why steps meant to be captured run eagerly (``fall_back``); None: they run as meant.
    fallback: graphs.CaptureProblem | None = None

    def __init__(self, optimizer: torch.optim.Optimizer, device: torch.device,
                 allow_fallback: bool = True) -> None:
        self.optimizer = optimizer
        self.device = device
        # --cuda-graphs auto: a step that cannot be captured runs eagerly; on: the run stops.
        self.allow_fallback = allow_fallback

    def on_stream(self) -> AbstractContextManager[None]:
        """The stream to build the model wrapper (DDP) and run the warm-up on."""
        return contextlib.nullcontext()

    @abstractmethod
    def warm_up(self, step_fn: StepFn, batches: Sequence[torch.Tensor],
                after_step: Callable[[torch.Tensor], None],
                probe: Callable[[], None] | None = None) -> None:
        """Run ``step_fn`` eagerly on every batch, handing each loss to ``after_step`` (the
        trainer's bookkeeping), call ``probe`` (more eager steps, measured; before any
        capture), then be ready to ``step`` any of their shapes."""

    @abstractmethod
    def step(self, step_fn: StepFn, batch: torch.Tensor) -> torch.Tensor:
        """Train one step of ``step_fn`` on ``batch``; returns its loss as a device tensor."""

    @abstractmethod
    def restore_optimizer(self, saved: dict) -> None:
        """Put back an ``optimizer.state_dict()`` taken before the warm-up."""

    @property
    def peak_memory_bytes(self) -> int | None:
        """Memory the step allocates that the timed rounds cannot see (None: they see it all)."""
        return None

    @property
    def captured(self) -> bool:
        """Whether the timed steps replay CUDA graphs."""
        return False

    def fall_back(self, problem: graphs.CaptureProblem) -> None:
        """Run eager steps from now on because of ``problem`` (only captured steps can)."""
        raise UncapturableStepError(str(problem))


class EagerStep(StepStrategy):
    """The plain step, launched kernel by kernel from Python every time."""

    name = "eager"

    def warm_up(self, step_fn: StepFn, batches: Sequence[torch.Tensor],
                after_step: Callable[[torch.Tensor], None],
                probe: Callable[[], None] | None = None) -> None:
        for batch in batches:
            after_step(step_fn(batch))
        if probe is not None:
            probe()

    def step(self, step_fn: StepFn, batch: torch.Tensor) -> torch.Tensor:
        return step_fn(batch)

    def restore_optimizer(self, saved: dict) -> None:
        self.optimizer.load_state_dict(saved)


class CapturedStep(StepStrategy):
    """One CUDA graph per batch shape (``graphs.GraphedSteps``), captured after the warm-up.

    A replay reads fixed addresses, so the optimizer reads its learning rate from a device
    tensor (``make_capturable``) and its state is restored in place, never swapped."""

    name = "captured"
    min_warmup_steps = graphs.GRAPH_WARMUP_STEPS

    def __init__(self, optimizer: torch.optim.Optimizer, device: torch.device,
                 allow_fallback: bool = True) -> None:
        graphs.check_graphs_supported(device)
        super().__init__(optimizer, device, allow_fallback)
        graphs.make_capturable(optimizer, device)
        # Warm-up and capture share a side stream, as PyTorch's CUDA-graph recipe asks.
        self.stream = torch.cuda.Stream(device)
        self.graphed: graphs.GraphedSteps | None = None
        self._captured_peak: int | None = None

    def on_stream(self) -> AbstractContextManager[None]:
        return graphs.on_stream(self.stream)

    def warm_up(self, step_fn: StepFn, batches: Sequence[torch.Tensor],
                after_step: Callable[[torch.Tensor], None],
                probe: Callable[[], None] | None = None) -> None:
        with self.on_stream():
            for batch in batches:
                after_step(step_fn(batch))
            if probe is not None:
                probe()
            problem = graphs.first_sync(lambda: step_fn(batches[0]))
            if problem is not None:
                raise graphs.CaptureFailed(problem)
            # Replays allocate nothing: the step's memory is what capturing it allocated.
            reset_peak_memory(self.device)
            self.graphed = graphs.GraphedSteps(step_fn, batches, self.stream)
            self._captured_peak = peak_memory_bytes(self.device)

    @property
    def captured(self) -> bool:
        return self.fallback is None

    def fall_back(self, problem: graphs.CaptureProblem) -> None:
        if not self.allow_fallback:
            raise UncapturableStepError(f"{problem}; a step that synchronises with the host "
                                        "cannot be captured in a CUDA graph: remove the sync, "
                                        "or use --cuda-graphs auto (eager steps where capture "
                                        "fails) or off")
        self.fallback = problem

    def step(self, step_fn: StepFn, batch: torch.Tensor) -> torch.Tensor:
        if self.fallback is not None:
            return step_fn(batch)
        if self.graphed is None:
            raise UsageError("captured steps replay what the warm-up captured: call "
                             "Trainer.warm_up before training")
        return self.graphed.replay(batch)

    def restore_optimizer(self, saved: dict) -> None:
        graphs.reset_optimizer_state(self.optimizer, saved)

    @property
    def peak_memory_bytes(self) -> int | None:
        return self._captured_peak if self.fallback is None else None


def step_strategy(cuda_graphs: bool) -> type[StepStrategy]:
    """The strategy for a run's step mode (``RunSpec.cuda_graphs``)."""
    return CapturedStep if cuda_graphs else EagerStep
