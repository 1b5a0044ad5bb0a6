"""Regressions injected on purpose, so a team can measure what its own runner detects.

Each kind stands for a real regression an upgrade or a change has caused, and is applied to a
prepared workload (model, optimizer) before training. Injections never touch the default
path: only a run whose ``RunSpec.injections`` names them changes, and such a run is recorded
with its injections, which ``ampcore compare`` refuses as a baseline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ampcore.core.entries import Precision
from ampcore.core.errors import UsageError
from ampcore.train import regressions
from ampcore.workloads.base import PreparedWorkload


@dataclass(frozen=True)
class Injection:
    kind: str
    stands_for: str  # the real-world regression it imitates
    seen_by: str  # the metric that should flag it
    apply: Callable[..., PreparedWorkload]  # (workload) or (workload, argument)
    argument: str | None = None  # what follows "kind:", for kinds that take one
    # Checks the argument (a UsageError saying what it takes); with ``optional`` the bare kind
    # is allowed too and applied without one.
    check_argument: Callable[[str], object] | None = None
    optional: bool = False
    # Acts only under autocast (it changes what autocast does): refused for a mode without it,
    # where the run would be recorded as injected while nothing changed.
    needs_autocast: bool = False


INJECTIONS: dict[str, Injection] = {i.kind: i for i in (
    Injection("attention-fallback", "a fused attention kernel lost after an upgrade "
              "(unsupported mask or dtype, a kernel disabled)",
              "time (captured: GPU work), aten ops, kernel launches",
              regressions.attention_fallback),
    Injection("autocast-fp32-op", "an op moved to float32 by an autocast policy change",
              "time (captured: GPU work), casts", regressions.fp32_feed_forward,
              needs_autocast=True),
    Injection("host-overhead", "host-side Python overhead per layer (a slower framework "
              "path, a hook)", "Python bytecodes; host time and eager time",
              regressions.host_overhead),
    Injection("extra-sync", "an extra host-device sync per step (.item() in a logging path)",
              "syncs, aten ops; eager time", regressions.extra_sync),
    Injection("host-check", "a Python `if` on a tensor in the forward (a finiteness check): "
              "a sync every step, and a step that cannot be captured",
              "syncs; captured steps fall back to eager, recorded with the line",
              regressions.host_check),
    Injection("optimizer-unfused", "the optimizer falling back from fused to per-parameter "
              "kernels", "time, aten ops, kernel launches", regressions.unfused_optimizer),
    Injection("activation-memory", "activation memory growth (tensors kept alive)",
              "peak memory, bytes allocated", regressions.activation_memory),
    Injection("accuracy-loss", "fp32 master weights lost (parameters rounded to bfloat16 "
              "after every optimizer step, as in pure-bf16 training); accuracy-loss:BITS keeps "
              "BITS mantissa bits (7 is bfloat16's; more bits, a smaller loss)", "accuracy",
              regressions.master_weights_rounded, argument="BITS",
              check_argument=regressions.mantissa_bits, optional=True),
    Injection("gpu-work", "slower device work at the same launches (a slower kernel after a "
              "library upgrade): MICROSECONDS of spin per forward, e.g. gpu-work:1000",
              "time (captured: GPU work); eager time", regressions.gpu_work,
              argument="MICROSECONDS", check_argument=regressions.microseconds),
)}

def _split(kind: str) -> tuple[Injection, str | None]:
    name, _, argument = kind.partition(":")
    injection = INJECTIONS.get(name)
    if injection is None:
        raise UsageError(f"unknown injection {kind!r}; valid: {', '.join(INJECTIONS)}")
    if injection.argument is None and argument:
        raise UsageError(f"injection {name!r} takes no argument; got {kind!r}")
    if injection.argument is not None and argument:
        injection.check_argument(argument)
    elif injection.argument is not None and not injection.optional:
        raise UsageError(f"injection {name!r} needs {injection.argument}: {name}:"
                         f"{injection.argument}")
    return injection, argument or None


def check_kinds(kinds: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """Known kinds (with their argument where they take one), in order, without repeats; an
    unknown one is a usage error listing them."""
    for kind in kinds:
        _split(kind)
    return tuple(dict.fromkeys(kinds))


def check_applicable(kinds: tuple[str, ...] | list[str], precision: Precision) -> None:
    """A UsageError when one of ``kinds`` cannot act on a run in ``precision``."""
    for kind in check_kinds(kinds):
        if _split(kind)[0].needs_autocast and precision.autocast is None:
            raise UsageError(
                f"injection {kind!r} cannot act on precision {precision.id!r}: it changes what "
                "autocast does, and that mode runs without autocast; name only mixed "
                "precisions with it (e.g. --precision amp-bf16)")


def apply(kinds: tuple[str, ...], workload: PreparedWorkload,
          precision: Precision | None = None) -> PreparedWorkload:
    """The workload with each injection applied, in order (each checked against
    ``precision`` when given)."""
    if precision is not None:
        check_applicable(kinds, precision)
    for kind in check_kinds(kinds):
        injection, argument = _split(kind)
        workload = (injection.apply(workload) if argument is None
                    else injection.apply(workload, argument))
    return workload
