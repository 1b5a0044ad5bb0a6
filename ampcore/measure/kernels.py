"""Where a step's device time goes: per CUDA kernel and per kernel class, from one profiled
eager step outside the timed rounds (the kernel counter's pass, ``counters.count_step``).

When captured time regresses and no counter moved (a slower kernel after a cuBLAS or cuDNN
upgrade), ``changes`` names the kernels whose time changed most, the new ones and the lost
ones. Kernel names are long C++ signatures: they are kept whole, so that two runs of one
library name them alike, and shortened only for display.
"""

from __future__ import annotations

import contextlib
import re
import statistics
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence

TOP_KERNELS = 40  # kept by name per run; the rest summed under OTHER
OTHER = "(other kernels)"
# First match wins: attention before GEMM (fused attention kernels contain "gemm" too).
CLASSES = (
    ("attention", re.compile(r"flash|fmha|attention|sdpa|softmax", re.I)),
    ("gemm", re.compile(r"gemm|xmma|cutlass|wgmma|matmul|cublas|dot_kernel", re.I)),
    ("optimizer", re.compile(r"adam|multi_tensor|foreach|fused_sgd|lamb", re.I)),
    ("normalization", re.compile(r"norm", re.I)),
    ("copy", re.compile(r"copy|memcpy|memset|cat_|transpose|permute|index", re.I)),
    ("reduction", re.compile(r"reduce|sum_|mean|max_|min_|argmax", re.I)),
    ("elementwise", re.compile(r"elementwise|vectorized|unrolled|pointwise|triton_poi", re.I)),
)


# torch.profiler's note when a profiler object starts a second cycle: ampcore reads each
# profile's events once, so the note concerns nothing a user can act on. Only this message,
# only from torch.profiler, is hidden.
PROFILER_CLEARS_EVENTS = r"Warning: Profiler clears events at the end of each cycle"


@contextlib.contextmanager
def quiet_profiler() -> Iterator[None]:
    """Around a torch.profiler use: its "Profiler clears events" UserWarning is dropped, every
    other warning passes (the filters are restored on exit)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=PROFILER_CLEARS_EVENTS, category=UserWarning,
                                module=r"torch\.profiler")
        yield


def kernel_class(name: str) -> str:
    return next((label for label, pattern in CLASSES if pattern.search(name)), "other")


def kernel_times(events: Iterable[tuple[str, float]], top: int = TOP_KERNELS) -> dict[str, float]:
    """Total microseconds per kernel name over ``(name, us)`` events: the ``top`` longest by
    name, the rest summed under ``OTHER``."""
    totals: dict[str, float] = {}
    for name, micros in events:
        totals[name] = totals.get(name, 0.0) + float(micros)
    ranked = sorted(totals.items(), key=lambda item: -item[1])
    kept = dict(ranked[:top])
    rest = sum(micros for _, micros in ranked[top:])
    if rest:
        kept[OTHER] = kept.get(OTHER, 0.0) + rest
    return kept


def by_class(times: Mapping[str, float]) -> dict[str, float]:
    """Microseconds per kernel class (``CLASSES``; ``other`` for the rest)."""
    classes: dict[str, float] = {}
    for name, micros in times.items():
        label = kernel_class(name)
        classes[label] = classes.get(label, 0.0) + micros
    return dict(sorted(classes.items(), key=lambda item: -item[1]))


def short(name: str, width: int = 60) -> str:
    """A kernel's name for display: its template arguments and parameters dropped."""
    # Up to the first template or parameter list; "(anonymous namespace)::" is a scope, not
    # the parameter list, and would otherwise cut the name short.
    base = name.removeprefix("void ").replace("(anonymous namespace)::", "")
    base = re.split(r"[<(]", base, maxsplit=1)[0].strip() or name
    return base if len(base) <= width else base[:width - 3] + "..."


def changes(baseline: Sequence[Mapping[str, float]], candidate: Mapping[str, float],
            top: int = 5, min_share: float = 0.005) -> list[str]:
    """The kernels whose time per step moved most from the baseline runs (the median over
    them) to the candidate, largest first: new kernels, lost ones and changed ones, each at
    least ``min_share`` of the baseline step's kernel time. Empty when either side has no
    kernel times."""
    if not baseline or not candidate or not all(baseline):
        return []
    names = {n for times in baseline for n in times} | set(candidate)
    before = {n: statistics.median(t.get(n, 0.0) for t in baseline) for n in names}
    total = sum(before.values()) or 1.0
    moved = [(n, candidate.get(n, 0.0) - before[n]) for n in names]
    moved = [(n, d) for n, d in moved if abs(d) >= min_share * total and n != OTHER]
    moved.sort(key=lambda item: -abs(item[1]))
    lines = []
    for name, delta in moved[:top]:
        label = f"{kernel_class(name)} {short(name)}"
        if before[name] == 0:
            lines.append(f"new {label}: {candidate[name] / 1e3:.3f} ms")
        elif candidate.get(name, 0.0) == 0:
            lines.append(f"lost {label}: was {before[name] / 1e3:.3f} ms")
        else:
            lines.append(f"{label}: {delta / 1e3:+.3f} ms ({delta / before[name]:+.1%})")
    return lines
