"""Whole-step CUDA graphs: each batch shape's training step captured once and replayed.

Eager AMP on a fast GPU is launch-bound: bert's bf16 step is about a thousand small kernels
that the GPU finishes faster than Python, the dispatcher and autocast can issue them, so a
round's time follows the host's jitter. A captured step (forward under autocast, backward,
unscale and clip, optimizer step, GradScaler update) is replayed with one launch, so a round
times the GPU's work: what a torch, CUDA or driver upgrade changes.

A captured step reads and writes fixed addresses, which sets three rules that ``Trainer``
keeps: the batch enters through a static index tensor; the optimizer's state and learning
rate are device tensors updated in place (``make_capturable``); and state is restored in place
(``reset_optimizer_state``), never by swapping tensors.
"""

from __future__ import annotations

import contextlib
import os
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType

import torch

from ampcore.core.errors import UsageError
from ampcore.measure.counters import SYNC_MODE_NOTICE, is_sync_warning

# DistributedDataParallel needs 11 eager iterations before its backward can be captured
# (PyTorch's CUDA-graph notes); the same warm-up suits a single process.
GRAPH_WARMUP_STEPS = 11


CHOICES = ("auto", "on", "off")


def check_graphs_supported(device: torch.device) -> None:
    if device.type != "cuda":
        raise UsageError(f"CUDA graphs need a CUDA device, not {device}; use --cuda-graphs off")


def resolve_cuda_graphs(choice: str | None, device: torch.device) -> bool:
    """Whether to capture steps: ``auto`` (or None) means on CUDA devices, eager elsewhere.

    Captured steps are the default on CUDA because they time the GPU's work, where eager
    rounds of a launch-bound step follow the host's jitter."""
    choice = "auto" if choice is None else choice.lower()
    if choice not in CHOICES:
        raise UsageError(f"unknown CUDA-graph choice {choice!r}; valid: {', '.join(CHOICES)}")
    if choice == "on":
        check_graphs_supported(device)
    return choice == "on" or (choice == "auto" and device.type == "cuda")


def capture_required(choice: str | None) -> bool:
    """Whether a step that cannot be captured must stop the run (``on``) rather than run
    eagerly (``auto``)."""
    return (choice or "auto").lower() == "on"


def make_capturable(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    """Let a captured step read the optimizer's hyperparameters from the device.

    A float learning rate is baked into a captured kernel; a device tensor is read at every
    replay, and LR schedulers update tensor learning rates in place (``fill_``)."""
    for group in optimizer.param_groups:
        if "capturable" not in group:
            raise UsageError(f"{type(optimizer).__name__} cannot be captured in a CUDA graph "
                             "(it has no 'capturable' option); use --cuda-graphs off")
        group["capturable"] = True
        if not torch.is_tensor(group["lr"]):
            group["lr"] = torch.tensor(float(group["lr"]), device=device)


def set_learning_rates(optimizer: torch.optim.Optimizer, lrs: Sequence[float | torch.Tensor]) -> None:
    """Write each group's learning rate into the tensor a captured step reads."""
    for group, lr in zip(optimizer.param_groups, lrs, strict=True):
        if torch.is_tensor(group["lr"]):
            group["lr"].fill_(float(lr))
        else:
            group["lr"] = float(lr)


def reset_optimizer_state(optimizer: torch.optim.Optimizer, saved: dict) -> None:
    """Restore ``saved`` (an ``optimizer.state_dict()``) into the existing state tensors.

    A parameter without saved state goes back to a fresh state: all zeros, which is how Adam,
    AdamW and SGD (no dampening) start. ``Optimizer.load_state_dict`` would allocate new
    tensors, which a captured step never sees."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    saved_states = saved["state"]
    for index, param in enumerate(params):
        state = optimizer.state.get(param)
        if not state:
            continue
        old = saved_states.get(index)
        for key, value in state.items():
            if not torch.is_tensor(value):
                raise UsageError(f"optimizer state {key!r} is not a tensor; it cannot be "
                                 "restored under a captured step")
            if old is None:
                value.zero_()
            else:
                value.copy_(old[key])
    set_learning_rates(optimizer, [group["lr"] for group in saved["param_groups"]])


@contextlib.contextmanager
def on_stream(stream: torch.cuda.Stream | None) -> Iterator[None]:
    """Run the block on ``stream`` (ordered after and before the current stream's work), or
    on the current stream when ``stream`` is None. Warm-up and capture share a side stream,
    as PyTorch's CUDA-graph recipe asks."""
    if stream is None:
        yield
        return
    current = torch.cuda.current_stream(stream.device)
    stream.wait_stream(current)
    with torch.cuda.stream(stream):
        yield
    current.wait_stream(stream)


@dataclass(frozen=True)
class CaptureProblem:
    """Why a training step cannot be captured, and the Python line responsible (None: unknown)."""

    reason: str
    site: str | None = None

    def __str__(self) -> str:
        return self.reason + (f" at {self.site}" if self.site else "")


class CaptureFailed(Exception):
    """Raised by a captured strategy's warm-up; the trainer falls back or stops the run."""

    def __init__(self, problem: CaptureProblem) -> None:
        super().__init__(str(problem))
        self.problem = problem


def first_sync(step: Callable[[], object]) -> CaptureProblem | None:
    """Run ``step`` once with torch's sync debug mode raising at the first host-device sync
    (``.item()``, a Python ``if`` on a tensor, ``nonzero``): a step that synchronises cannot be
    captured, and finding it here, before any capture starts, leaves no half-made graph behind.
    None when the step ran through; the step may stop half-way otherwise."""
    saved = torch.cuda.get_sync_debug_mode()
    try:
        with warnings.catch_warnings():  # torch's once-a-process notice that the mode is new
            warnings.filterwarnings("ignore", message=SYNC_MODE_NOTICE)
            torch.cuda.set_sync_debug_mode("error")
        step()
    except RuntimeError as exc:
        if not is_sync_warning(str(exc)):
            raise
        return CaptureProblem("the step synchronises with the host", python_site(exc.__traceback__))
    finally:
        torch.cuda.set_sync_debug_mode(saved)
    return None


def python_site(tb: TracebackType | None) -> str | None:
    """The innermost frame outside torch: the model's (or ampcore's) line that did it."""
    torch_dir = os.path.dirname(torch.__file__) + os.sep
    frames = [f for f in traceback.extract_tb(tb) if not f.filename.startswith(torch_dir)]
    if not frames:
        return None
    frame = frames[-1]
    return f"{frame.filename}:{frame.lineno} in {frame.name}" + (
        f" ({frame.line.strip()})" if frame.line else "")


class GraphedSteps:
    """One CUDA graph per batch size, each holding a whole training step.

    ``step(indices) -> loss`` must be the eager step, already warmed up on ``stream``. The
    graphs share one memory pool (they never run concurrently), so memory matches eager."""

    def __init__(self, step: Callable[[torch.Tensor], torch.Tensor],
                 batches: Sequence[torch.Tensor], stream: torch.cuda.Stream) -> None:
        self._graphs: dict[int, torch.cuda.CUDAGraph] = {}
        self._indices: dict[int, torch.Tensor] = {}
        self._losses: dict[int, torch.Tensor] = {}
        pool = None
        for batch in batches:
            size = len(batch)
            if size in self._graphs:
                continue
            indices = batch.clone()
            graph = torch.cuda.CUDAGraph()
            try:
                with torch.cuda.graph(graph, pool=pool, stream=stream):
                    loss = step(indices)
            except RuntimeError as exc:  # an op capture does not allow (a host copy, say)
                torch.cuda.synchronize(stream.device)
                raise CaptureFailed(CaptureProblem(f"capture failed: {exc}".splitlines()[0],
                                                   python_site(exc.__traceback__))) from exc
            pool = graph.pool()
            self._graphs[size], self._indices[size], self._losses[size] = graph, indices, loss

    @property
    def batch_sizes(self) -> list[int]:
        return sorted(self._graphs)

    def replay(self, batch: torch.Tensor) -> torch.Tensor:
        """Train one step on ``batch`` (device indices); returns the step's loss tensor, which
        the next replay of the same shape overwrites."""
        size = len(batch)
        if size not in self._graphs:
            raise UsageError(f"no captured step for a batch of {size}; captured: {self.batch_sizes}")
        self._indices[size].copy_(batch)
        self._graphs[size].replay()
        return self._losses[size]
