"""Regressions injected on purpose, so a team can measure what its own runner detects.

Each kind stands for a real regression an upgrade or a change has caused, and is applied to a
prepared workload (model, optimizer) before training. Injections never touch the default
path: only a run whose ``RunSpec.injections`` names them changes, and such a run is recorded
with its injections, which ``ampcore compare`` refuses as a baseline.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ampcore.core.entries import Precision
from ampcore.core.errors import UsageError
from ampcore.workloads.base import PreparedWorkload

# Python work per block forward: a fixed amount (not a time), so it costs the same on every
# host relative to that host's speed. About 0.1 ms per block on a current server core.
HOST_WORK_ITERATIONS = 2_000


@dataclass(frozen=True)
class Injection:
    kind: str
    stands_for: str  # the real-world regression it imitates
    seen_by: str  # the metric that should flag it
    apply: Callable[..., PreparedWorkload]  # (workload) or (workload, argument)
    argument: str | None = None  # what follows "kind:", for kinds that take one
    # Acts only under autocast (it changes what autocast does): refused for a mode without it,
    # where the run would be recorded as injected while nothing changed.
    needs_autocast: bool = False


def _blocks(model: nn.Module) -> list[nn.Module]:
    """The repeated blocks of a model: non-leaf children of one container that share a type
    with a sibling (bert's encoder layers, resnet's residual blocks)."""
    found: list[nn.Module] = []
    for module in model.modules():
        children = [c for c in module.children() if any(True for _ in c.children())]
        types = [type(c) for c in children]
        found.extend(c for c in children if types.count(type(c)) > 1)
    return found


def _cannot(kind: str, workload: PreparedWorkload, why: str) -> UsageError:
    return UsageError(f"injection {kind!r} cannot apply to workload {workload.name!r}: {why}")


def _attention_fallback(workload: PreparedWorkload) -> PreparedWorkload:
    """Scaled-dot-product attention forced onto its unfused math kernels."""
    if not any("attention" in type(m).__name__.lower() for m in workload.model.modules()):
        raise _cannot("attention-fallback", workload, "the model has no attention layers")
    forward = workload.forward

    def math_attention(model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel(SDPBackend.MATH):
            return forward(model, inputs)

    return dataclasses.replace(workload, forward=math_attention)


def _fp32_feed_forward(workload: PreparedWorkload) -> PreparedWorkload:
    """The feed-forward up-projections run in float32 under autocast."""
    targets = [m for m in workload.model.modules()
               if isinstance(m, nn.Linear) and m.out_features >= 2 * m.in_features]
    if not targets:
        raise _cannot("autocast-fp32-op", workload, "the model has no feed-forward "
                      "up-projection (a Linear layer widening its input 2x or more)")
    for module in targets:
        module.forward = _float32_forward(module)
    return workload


def _float32_forward(module: nn.Linear) -> Callable[[torch.Tensor], torch.Tensor]:
    original = module.forward

    def forward(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return original(x.float())

    return forward


def _host_overhead(workload: PreparedWorkload) -> PreparedWorkload:
    """Python work before every block's forward (a slower framework or hook on the host)."""
    blocks = _blocks(workload.model)
    if not blocks:
        raise _cannot("host-overhead", workload, "the model has no repeated blocks")

    def busy(module: nn.Module, args: tuple) -> None:
        total = 0
        for i in range(HOST_WORK_ITERATIONS):
            total += i * i
        module._ampcore_host_work = total

    for block in blocks:
        block.register_forward_pre_hook(busy)
    return workload


def _extra_sync(workload: PreparedWorkload) -> PreparedWorkload:
    """A host read of the logits in every forward (a logging or a check calling .item())."""
    def read_back(module: nn.Module, args: tuple, output: object) -> None:
        if torch.cuda.is_available() and torch.cuda.is_current_stream_capturing():
            return  # a captured graph cannot hold a sync: captured steps do not see this kind
        logits = getattr(output, "logits", output)
        module._ampcore_last_logit = float(logits.detach().float().mean())

    workload.model.register_forward_hook(read_back)
    return workload


def _host_check(workload: PreparedWorkload) -> PreparedWorkload:
    """A finiteness check in the forward written as a Python ``if`` on a tensor: a host-device
    sync every step, which also makes the step impossible to capture in a CUDA graph."""
    def check(module: nn.Module, args: tuple, output: object) -> None:
        logits = getattr(output, "logits", output)
        if not torch.isfinite(logits).all():
            raise FloatingPointError(f"{workload.name}: non-finite logits")

    workload.model.register_forward_hook(check)
    return workload


def _unfused_optimizer(workload: PreparedWorkload) -> PreparedWorkload:
    """The optimizer falls back from one fused kernel to a loop over parameters."""
    old = workload.optimizer
    if not isinstance(old, torch.optim.AdamW):
        raise _cannot("optimizer-unfused", workload, f"its optimizer is {type(old).__name__}, "
                      "not AdamW")
    group = old.param_groups[0]
    params = [p for g in old.param_groups for p in g["params"]]
    optimizer = torch.optim.AdamW(params, lr=float(group["lr"]), weight_decay=group["weight_decay"],
                                  fused=False, foreach=False)
    scheduler = workload.scheduler
    if scheduler is not None:
        if not isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
            raise _cannot("optimizer-unfused", workload, "its LR schedule is not a LambdaLR")
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, scheduler.lr_lambdas)
    return dataclasses.replace(workload, optimizer=optimizer, scheduler=scheduler)


def _activation_memory(workload: PreparedWorkload) -> PreparedWorkload:
    """Every block keeps a copy of its output until the next forward (a leak of activations)."""
    blocks = _blocks(workload.model)
    if not blocks:
        raise _cannot("activation-memory", workload, "the model has no repeated blocks")
    kept: list[torch.Tensor] = []

    def clear(module: nn.Module, args: tuple) -> None:
        kept.clear()

    def keep(module: nn.Module, args: tuple, output: object) -> None:
        tensor = output[0] if isinstance(output, tuple) else output
        if isinstance(tensor, torch.Tensor):
            kept.append(tensor.detach().clone())

    workload.model.register_forward_pre_hook(clear)
    for block in blocks:
        block.register_forward_hook(keep)
    return workload


def _master_weights_bf16(workload: PreparedWorkload) -> PreparedWorkload:
    """fp32 master weights lost: every parameter rounded to bfloat16 after each optimizer step,
    as when a model is cast with ``.to(torch.bfloat16)`` for "pure" bf16 training. Updates
    smaller than half a bfloat16 step (2^-9 of the weight) are rounded away."""
    masters = [p for group in workload.optimizer.param_groups for p in group["params"]
               if p.dtype == torch.float32]
    if not masters:
        raise _cannot("accuracy-loss", workload, "the optimizer holds no float32 parameters")

    @torch.no_grad()
    def round_to_bf16(optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        for p in masters:
            p.copy_(p.to(torch.bfloat16))

    # Runs inside ``optimizer.step()``, so a captured step (CUDA graph) replays it too.
    workload.optimizer.register_step_post_hook(round_to_bf16)
    return workload


def _gpu_work(workload: PreparedWorkload, microseconds: str) -> PreparedWorkload:
    """A fixed amount of device time added to every forward: a spin kernel, so captured and
    eager steps run it alike. The spin is counted in GPU clock cycles; the cycles per
    microsecond are measured once here, with the clock under load."""
    device = next(workload.model.parameters()).device
    if device.type != "cuda":
        raise _cannot("gpu-work", workload, f"it runs on {device.type}; the spin kernel needs CUDA")
    cycles = int(float(microseconds) * _cycles_per_microsecond(device))

    def spin(module: nn.Module, args: tuple) -> None:
        torch.cuda._sleep(cycles)

    workload.model.register_forward_pre_hook(spin)
    workload.details["gpu_work"] = {"microseconds": float(microseconds), "cycles": cycles}
    return workload


def _cycles_per_microsecond(device: torch.device, cycles: int = 20_000_000) -> float:
    with torch.cuda.device(device):
        torch.cuda._sleep(cycles)  # raise the clock before it is measured
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        torch.cuda._sleep(cycles)
        end.record()
        end.synchronize()
    return cycles / (start.elapsed_time(end) * 1000.0)


def _microseconds(value: str) -> str:
    try:
        amount = float(value)
    except ValueError:
        amount = -1.0
    if not 0 < amount <= 1e6:
        raise UsageError(f"gpu-work takes the device time to add per step in microseconds, "
                         f"a number in (0, 1000000], e.g. gpu-work:1000; got {value!r}")
    return value


INJECTIONS: dict[str, Injection] = {i.kind: i for i in (
    Injection("attention-fallback", "a fused attention kernel lost after an upgrade "
              "(unsupported mask or dtype, a kernel disabled)",
              "time (captured: GPU work), aten ops, kernel launches",
              _attention_fallback),
    Injection("autocast-fp32-op", "an op moved to float32 by an autocast policy change",
              "time (captured: GPU work), casts", _fp32_feed_forward, needs_autocast=True),
    Injection("host-overhead", "host-side Python overhead per layer (a slower framework "
              "path, a hook)", "Python bytecodes; host time and eager time", _host_overhead),
    Injection("extra-sync", "an extra host-device sync per step (.item() in a logging path)",
              "syncs, aten ops; eager time", _extra_sync),
    Injection("host-check", "a Python `if` on a tensor in the forward (a finiteness check): "
              "a sync every step, and a step that cannot be captured",
              "syncs; captured steps fall back to eager, recorded with the line", _host_check),
    Injection("optimizer-unfused", "the optimizer falling back from fused to per-parameter "
              "kernels", "time, aten ops, kernel launches", _unfused_optimizer),
    Injection("activation-memory", "activation memory growth (tensors kept alive)",
              "peak memory, bytes allocated", _activation_memory),
    Injection("accuracy-loss", "fp32 master weights lost (parameters rounded to bfloat16 "
              "after every optimizer step, as in pure-bf16 training)", "accuracy",
              _master_weights_bf16),
    Injection("gpu-work", "slower device work at the same launches (a slower kernel after a "
              "library upgrade): MICROSECONDS of spin per forward, e.g. gpu-work:1000",
              "time (captured: GPU work); eager time", _gpu_work, argument="MICROSECONDS"),
)}


def _split(kind: str) -> tuple[Injection, str | None]:
    name, _, argument = kind.partition(":")
    injection = INJECTIONS.get(name)
    if injection is None:
        raise UsageError(f"unknown injection {kind!r}; valid: {', '.join(INJECTIONS)}")
    if injection.argument is None and argument:
        raise UsageError(f"injection {name!r} takes no argument; got {kind!r}")
    if injection.argument is not None:
        if not argument:
            raise UsageError(f"injection {name!r} needs {injection.argument}: {name}:"
                             f"{injection.argument}")
        _microseconds(argument)
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
