"""Deterministic counters of one eager training step: what the step asks of the device.

Counted outside the timed rounds on a step that is undone afterwards, so they cost no timing.
Unlike times they have no noise: the same code on the same library versions gives the same
counts, so any change is real and can be named ("+24 aten._to_copy per step"). They see what
a replayed CUDA graph hides (host-side work that issues more ops, syncs) and what an eager
round blurs (a few extra kernels in a noisy round time).

- ``aten_ops``: operator calls that reached the dispatcher (forward, backward, optimizer).
- ``casts``: dtype conversions among them (``aten._to_copy`` with a new dtype): what an
  autocast policy change moves.
- ``syncs``: host-device synchronisations. On CUDA, what torch's sync debug mode reports
  (``.item()``, ``nonzero``, host copies, explicit synchronize); elsewhere the ops that would
  synchronise on a GPU (``aten._local_scalar_dense``, ``aten.nonzero``).
- ``bytes_allocated``: bytes of the tensors the step's ops created (views excluded).
- ``kernel_launches``: CUDA kernels the step launched (torch.profiler); None off CUDA.
- ``python_ops``: Python bytecode instructions the calling thread executed: the host-side
  work of the step's Python (model code, hooks, framework wrappers), counted instead of timed
  because host CPU time drifts from process to process.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from ampcore.core.versions import is_older
from ampcore.measure.kernels import kernel_times, quiet_profiler

SYNC_OPS = frozenset({"aten._local_scalar_dense", "aten.nonzero", "aten.is_nonzero"})
CAST_OP = "aten._to_copy"
TEARDOWN = "TEARDOWN_CUPTI"  # read by the profiler (kineto) when it stops


@dataclass(frozen=True)
class StepCounts:
    aten_ops: int
    casts: int
    syncs: int
    bytes_allocated: int
    kernel_launches: int | None = None
    python_ops: int | None = None
    ops: dict[str, int] = field(default_factory=dict)  # per operator, to name what changed
    # microseconds per CUDA kernel of the profiled step (``measure.kernels``); empty off CUDA
    kernel_times: dict[str, float] = field(default_factory=dict)


class _OpCounter(TorchDispatchMode):
    """Counts every operator call and the bytes of the tensors they create."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter[str] = Counter()
        self.casts = 0
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = str(func.overloadpacket)
        self.ops[name] += 1
        if name == CAST_OP and args and "dtype" in kwargs and kwargs["dtype"] != args[0].dtype:
            self.casts += 1
        out = func(*args, **kwargs)
        for tensor in _tensors(out):
            if tensor._base is None and not _aliases_input(tensor, args):
                self.bytes += tensor.numel() * tensor.element_size()
        return out


def _tensors(value: object) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [v for v in value if isinstance(v, torch.Tensor)]
    return []


def _aliases_input(tensor: torch.Tensor, args: tuple) -> bool:
    """In-place and out= ops return an input: nothing was allocated."""
    return any(tensor is a for a in args)


# torch warns once per process, when sync debug mode is first set, that the mode is a prototype;
# the notice says "synchronizing" but is no sync: counted, it made the first run of every
# session (fp32 in the matrix) show one sync per step at torch/cuda/__init__.py.
SYNC_MODE_NOTICE = "Synchronization debug mode is a prototype feature"


def is_sync_warning(message: str) -> bool:
    """Whether a message of torch's sync debug mode (a warning under "warn", the RuntimeError
    under "error") reports a host-device sync."""
    return "synchroniz" in message and SYNC_MODE_NOTICE not in message


class _SyncCounter:
    """Counts torch's sync-debug warnings on CUDA (the mode is restored afterwards)."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.count = 0
        self.sites: list[str] = []  # file:line of the Python code each sync came from

    def __enter__(self) -> _SyncCounter:
        if self.cuda:
            self._saved = torch.cuda.get_sync_debug_mode()
            self._catch = warnings.catch_warnings(record=True)
            self._records = self._catch.__enter__()
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
        return self

    def __exit__(self, *exc_info) -> None:
        if self.cuda:
            torch.cuda.set_sync_debug_mode(self._saved)
            syncs = [w for w in self._records if is_sync_warning(str(w.message))]
            self.count = len(syncs)
            self.sites = sorted({f"{os.path.basename(w.filename)}:{w.lineno}" for w in syncs})
            self._catch.__exit__(*exc_info)


def count_step(step: Callable[[], object], device: torch.device) -> StepCounts:
    """Run ``step`` once and count what it did; the caller undoes its effects."""
    device = torch.device(device)
    kernels, kernel_times = None, {}
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        kernels, kernel_times = _count_kernels(step, device)  # a pass of its own: it adds ops
    python_ops = _count_python_ops(step)  # a separate pass: tracing is slow, not timed anyway
    with _SyncCounter(device) as syncs, _OpCounter() as counter:
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        sync_count = syncs.count
    else:
        sync_count = sum(counter.ops[name] for name in SYNC_OPS)
    return StepCounts(aten_ops=sum(counter.ops.values()), casts=counter.casts,
                      syncs=sync_count, bytes_allocated=counter.bytes,
                      kernel_launches=kernels, python_ops=python_ops,
                      ops=dict(sorted(counter.ops.items())), kernel_times=kernel_times)


def _count_python_ops(step: Callable[[], object]) -> int | None:
    """Bytecode instructions ``step`` runs on this thread; None if none could be counted.

    Python 3.12+ counts with ``sys.monitoring`` INSTRUCTION events: there ``sys.settrace``
    misses the opcodes of frames that were entered before tracing set ``f_trace_opcodes``
    (a first call counted 0).
    """
    me = threading.get_ident()
    count = 0
    if hasattr(sys, "monitoring"):
        mon = sys.monitoring
        tool = next((t for t in range(6) if mon.get_tool(t) is None), None)
        if tool is None:  # every tool id taken (a debugger, coverage, profilers)
            return None

        def instruction(code, offset):
            nonlocal count
            if threading.get_ident() == me:
                count += 1

        mon.use_tool_id(tool, "ampcore")
        try:
            mon.register_callback(tool, mon.events.INSTRUCTION, instruction)
            mon.set_events(tool, mon.events.INSTRUCTION)
            step()
        finally:
            mon.set_events(tool, 0)
            mon.register_callback(tool, mon.events.INSTRUCTION, None)
            mon.free_tool_id(tool)
        return count or None

    def trace(frame, event, arg):
        nonlocal count
        frame.f_trace_opcodes = True
        if event == "opcode":
            count += 1
        return trace

    previous = sys.gettrace()
    sys.settrace(trace)
    try:
        step()
    finally:
        sys.settrace(previous)
    return count or None


def _count_kernels(step: Callable[[], object], device: torch.device) -> tuple[int, dict]:
    """The CUDA kernels one step launched, and their device time by name (``measure.kernels``)."""
    from torch.profiler import ProfilerActivity, profile

    with _cupti_released(), quiet_profiler(), profile(activities=[ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize(device)
    launched = [event for event in prof.events()
                if event.device_type == torch.autograd.DeviceType.CUDA]
    times = kernel_times((event.name, event.time_range.elapsed_us()) for event in launched)
    return len(launched), times


@contextlib.contextmanager
def _cupti_released() -> Iterator[None]:
    """Have the profiler release CUPTI when it stops (``TEARDOWN_CUPTI=1``), for CUDA 12.6+.

    Left attached, CUPTI taxes every later kernel launch, by a different amount in each
    process, which made eager timings drift. Before CUDA 12.6 torch keeps CUPTI attached where CUDA graphs are used,
    as re-attaching it after a teardown crashed there."""
    version = torch.version.cuda
    if not version or is_older(version, "12.6"):
        yield
        return
    saved = os.environ.get(TEARDOWN)
    os.environ[TEARDOWN] = "1"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(TEARDOWN, None)
        else:
            os.environ[TEARDOWN] = saved
