"""Which (workload, precision) cases the matrix generates, decided at collection.

A test that can never judge a case (a loss-judged workload in the accuracy test, a workload
whose speedup is reported, not asserted) is not generated for it at all: ``applies_to`` names
the cases a test function judges, from registry traits known before anything runs. What
depends on the run (the device lacking CUDA, a failed prerequisite, timing off) stays a skip
with its reason.

On a CPU the default matrix also leaves out the modes whose autocast there only emulates
the dtype (``CPU_EMULATED_AUTOCAST``): their timings measure the emulation, not AMP. Naming a
mode (``--amp-precisions`` / ``$AMPCORE_PRECISIONS``) still runs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ampcore.core import registry
from ampcore.options.settings import Settings

F = TypeVar("F", bound=Callable[..., object])
Predicate = Callable[[str, str], bool]  # (workload, precision) -> whether the test judges it

_ATTRIBUTE = "ampcore_applies_to"

# CPUs have no float16 matmul units in general: torch's CPU autocast to float16 runs, but its
# kernels convert and compute in float32, so a timing of it measures emulation, not AMP.
CPU_EMULATED_AUTOCAST = frozenset({"float16"})


def asserts_speedup(workload: str, precision: str) -> bool:
    """Its registry entry asserts that AMP beats fp32 (elsewhere the speedup is reported)."""
    return registry.workload_entry(workload).asserts_speedup


def judged_by_loss(workload: str, precision: str) -> bool:
    """Its parity is judged by held-out loss (a language model), not accuracy."""
    return registry.workload_entry(workload).quality == "loss"


def applies_to(predicate: Predicate) -> Callable[[F], F]:
    """Generate the decorated matrix test only for the cases ``predicate(workload,
    precision)`` accepts; the others are no test at all (not a skip)."""
    def mark(function: F) -> F:
        setattr(function, _ATTRIBUTE, predicate)
        return function
    return mark


def applies(function: object, workload: str, precision: str) -> bool:
    """Whether the test ``function`` judges this case (every case without ``applies_to``)."""
    predicate = getattr(function, _ATTRIBUTE, None)
    return predicate is None or bool(predicate(workload, precision))


def cpu_emulated(precision: str) -> bool:
    """Whether ``precision``'s autocast on a CPU only emulates its dtype."""
    return registry.get_precision(precision).autocast in CPU_EMULATED_AUTOCAST


def matrix_precisions(settings: Settings,
                      device: Callable[[], str]) -> tuple[list[str], list[str]]:
    """(the precisions the matrix runs, those left out as CPU emulation); a mode the user
    named is never left out. ``device`` gives the session's resolved device, asked only when
    a default mode is emulated on a CPU (resolving it may import torch)."""
    left_out = [p for p in settings.precisions if cpu_emulated(p)]
    if settings.given("precisions") is not None or not left_out or not device().startswith("cpu"):
        return list(settings.precisions), []
    return [p for p in settings.precisions if p not in left_out], left_out


def left_out_note(left_out: list[str]) -> str | None:
    """The collection report's line for the modes ``matrix_precisions`` left out."""
    if not left_out:
        return None
    return (f"ampcore: {', '.join(left_out)} left out of the CPU matrix (autocast on a CPU only "
            "emulates that dtype: its timings say nothing about AMP); name it with "
            "--amp-precisions to run it")
