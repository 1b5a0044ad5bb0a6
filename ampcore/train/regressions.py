"""What each injected regression does to a prepared workload (``ampcore.train.inject`` names
them and applies them): hooks and wrappers on the model and optimizer that imitate a real
regression, and the checks of the kinds' arguments."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import nn

from ampcore.core.errors import UsageError
from ampcore.workloads.base import PreparedWorkload

# Python work per block forward: a fixed amount (not a time), so it costs the same on every
# host relative to that host's speed. About 0.1 ms per block on a current server core.
HOST_WORK_ITERATIONS = 2_000


def repeated_blocks(model: nn.Module) -> list[nn.Module]:
    """The repeated blocks of a model: non-leaf children of one container that share a type
    with a sibling (bert's encoder layers, resnet's residual blocks)."""
    found: list[nn.Module] = []
    for module in model.modules():
        children = [c for c in module.children() if any(True for _ in c.children())]
        types = [type(c) for c in children]
        found.extend(c for c in children if types.count(type(c)) > 1)
    return found


def cannot(kind: str, workload: PreparedWorkload, why: str) -> UsageError:
    return UsageError(f"injection {kind!r} cannot apply to workload {workload.name!r}: {why}")


def attention_fallback(workload: PreparedWorkload) -> PreparedWorkload:
    """Scaled-dot-product attention forced onto its unfused math kernels."""
    if not any("attention" in type(m).__name__.lower() for m in workload.model.modules()):
        raise cannot("attention-fallback", workload, "the model has no attention layers")
    forward = workload.forward

    def math_attention(model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel(SDPBackend.MATH):
            return forward(model, inputs)

    return dataclasses.replace(workload, forward=math_attention)


def fp32_feed_forward(workload: PreparedWorkload) -> PreparedWorkload:
    """The feed-forward up-projections run in float32 under autocast."""
    targets = [m for m in workload.model.modules()
               if isinstance(m, nn.Linear) and m.out_features >= 2 * m.in_features]
    if not targets:
        raise cannot("autocast-fp32-op", workload, "the model has no feed-forward "
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


def host_overhead(workload: PreparedWorkload) -> PreparedWorkload:
    """Python work before every block's forward (a slower framework or hook on the host)."""
    blocks = repeated_blocks(workload.model)
    if not blocks:
        raise cannot("host-overhead", workload, "the model has no repeated blocks")

    def busy(module: nn.Module, args: tuple) -> None:
        total = 0
        for i in range(HOST_WORK_ITERATIONS):
            total += i * i
        module._ampcore_host_work = total

    for block in blocks:
        block.register_forward_pre_hook(busy)
    return workload


def extra_sync(workload: PreparedWorkload) -> PreparedWorkload:
    """A host read of the logits in every forward (a logging or a check calling .item())."""
    def read_back(module: nn.Module, args: tuple, output: object) -> None:
        if torch.cuda.is_available() and torch.cuda.is_current_stream_capturing():
            return  # a captured graph cannot hold a sync: captured steps do not see this kind
        logits = getattr(output, "logits", output)
        module._ampcore_last_logit = float(logits.detach().float().mean())

    workload.model.register_forward_hook(read_back)
    return workload


def host_check(workload: PreparedWorkload) -> PreparedWorkload:
    """A finiteness check in the forward written as a Python ``if`` on a tensor: a host-device
    sync every step, which also makes the step impossible to capture in a CUDA graph."""
    def check(module: nn.Module, args: tuple, output: object) -> None:
        logits = getattr(output, "logits", output)
        if not torch.isfinite(logits).all():
            raise FloatingPointError(f"{workload.name}: non-finite logits")

    workload.model.register_forward_hook(check)
    return workload


def unfused_optimizer(workload: PreparedWorkload) -> PreparedWorkload:
    """The optimizer falls back from one fused kernel to a loop over parameters."""
    old = workload.optimizer
    if not isinstance(old, torch.optim.AdamW):
        raise cannot("optimizer-unfused", workload, f"its optimizer is {type(old).__name__}, "
                      "not AdamW")
    group = old.param_groups[0]
    params = [p for g in old.param_groups for p in g["params"]]
    optimizer = torch.optim.AdamW(params, lr=float(group["lr"]), weight_decay=group["weight_decay"],
                                  fused=False, foreach=False)
    scheduler = workload.scheduler
    if scheduler is not None:
        if not isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
            raise cannot("optimizer-unfused", workload, "its LR schedule is not a LambdaLR")
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, scheduler.lr_lambdas)
    return dataclasses.replace(workload, optimizer=optimizer, scheduler=scheduler)


def activation_memory(workload: PreparedWorkload) -> PreparedWorkload:
    """Every block keeps a copy of its output until the next forward (a leak of activations)."""
    blocks = repeated_blocks(workload.model)
    if not blocks:
        raise cannot("activation-memory", workload, "the model has no repeated blocks")
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


def master_weights_rounded(workload: PreparedWorkload, bits: str = "7") -> PreparedWorkload:
    """fp32 master weights lost: every parameter rounded to ``bits`` mantissa bits (7, the
    default, is bfloat16's; 10 is float16's) after each optimizer step, as when a model is cast
    with ``.to(torch.bfloat16)`` for "pure" bf16 training. Updates smaller than half a step of
    that precision (2^-(bits+1) of the weight) are rounded away: more bits, a smaller loss."""
    masters = [p for group in workload.optimizer.param_groups for p in group["params"]
               if p.dtype == torch.float32]
    if not masters:
        raise cannot("accuracy-loss", workload, "the optimizer holds no float32 parameters")
    kept = int(bits)

    @torch.no_grad()
    def round_masters(optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        for p in masters:
            round_mantissa_(p, kept)

    # Runs inside ``optimizer.step()``, so a captured step (CUDA graph) replays it too.
    workload.optimizer.register_step_post_hook(round_masters)
    workload.details["accuracy_loss"] = {"mantissa_bits": kept}
    return workload


def round_mantissa_(tensor: torch.Tensor, bits: int) -> torch.Tensor:
    """Round a float32 tensor in place to ``bits`` of its 23 mantissa bits, to nearest, ties
    to even: bfloat16's rounding at 7 bits, float16's (in its normal range) at 10. Integer ops
    on the bit pattern, so the exponent range stays float32's and CUDA graphs can capture it."""
    dropped = 23 - bits
    if dropped == 0:
        return tensor
    pattern = tensor.view(torch.int32)
    lsb = (pattern >> dropped) & 1  # the last kept bit: a tie rounds to make it 0
    rounded = (pattern + lsb + ((1 << (dropped - 1)) - 1)) & -(1 << dropped)
    pattern.copy_(rounded)
    return tensor


def mantissa_bits(value: str) -> int:
    bits = int(value) if value.isdigit() else -1
    if not 1 <= bits <= 22:
        raise UsageError(f"accuracy-loss takes the mantissa bits the master weights keep, a "
                         f"whole number in [1, 22] (7: bfloat16's, the default; 10: float16's), "
                         f"e.g. accuracy-loss:10; got {value!r}")
    return bits


def gpu_work(workload: PreparedWorkload, microseconds: str) -> PreparedWorkload:
    """A fixed amount of device time added to every forward: a spin kernel, so captured and
    eager steps run it alike. The spin is counted in GPU clock cycles; the cycles per
    microsecond are measured once here, with the clock under load."""
    device = next(workload.model.parameters()).device
    if device.type != "cuda":
        raise cannot("gpu-work", workload, f"it runs on {device.type}; the spin kernel needs CUDA")
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


def microseconds(value: str) -> str:
    try:
        amount = float(value)
    except ValueError:
        amount = -1.0
    if not 0 < amount <= 1e6:
        raise UsageError(f"gpu-work takes the device time to add per step in microseconds, "
                         f"a number in (0, 1000000], e.g. gpu-work:1000; got {value!r}")
    return value
