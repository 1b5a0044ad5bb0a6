"""Precision ``fp8``: float8 training through torchao, under bfloat16 autocast.

The recipe is torchao's (``torchao.float8.Float8LinearConfig.from_recipe_name``):

- ``tensorwise`` (mode ``fp8``): one dynamic scale per tensor, inputs and weights cast to
  float8 e4m3, output gradients to e5m2; the forward GEMM accumulates fast, the backward ones
  in full precision. The default: measured faster than rowwise on the H200 at every shape tried.
- ``rowwise`` (mode ``fp8-rowwise``): one scale per row (axiswise), scales rounded to powers of 2.

Only ``nn.Linear`` layers become ``Float8Linear`` and only those whose in and out features
are multiples of 16 (``torch._scaled_mm`` takes no other shape); every other op runs under
bfloat16 autocast as in ``amp-bf16``. The parameters stay the float32 ``nn.Parameter``
objects the optimizer already holds (master weights): each forward casts them to float8.
A device or install that cannot run it (no torchao, no CUDA, compute capability below 8.9)
is refused before training with the reason; a model with no convertible layer is refused
when it is built (``UnsupportedPrecisionError``, which the suite turns into a skip).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import TYPE_CHECKING

import torch

from ampcore.errors import UnsupportedPrecisionError
from ampcore.precision import ActivePrecision, Precision

if TYPE_CHECKING:
    from ampcore.workloads.base import PreparedWorkload

MIN_CAPABILITY = (8, 9)  # Ada and Hopper have float8 tensor cores
MIN_TORCHAO = (0, 10)  # Float8LinearConfig.from_recipe_name with "tensorwise" and "rowwise"
DIM_MULTIPLE = 16  # torch._scaled_mm needs both GEMM dimensions of the weight divisible by 16
INSTALL_HINT = "pip install 'ampcore[fp8]'"


def torchao_version() -> str | None:
    try:
        return metadata.version("torchao")
    except metadata.PackageNotFoundError:
        return None


def _release(version: str) -> tuple[int, ...]:
    parts = []
    for piece in version.split("+")[0].split(".")[:2]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def float8_unsupported_reason(device_type: str, capability: tuple[int, int] | None,
                              torchao: str | None) -> str | None:
    """Why a device (its type and CUDA compute capability) and an install (torchao's version,
    None: not installed) cannot train in float8; None when they can."""
    need = ".".join(map(str, MIN_CAPABILITY))
    if device_type != "cuda":
        return (f"float8 training needs an NVIDIA GPU of compute capability {need} or newer "
                f"(Ada, Hopper); the device is a {device_type}")
    if capability is not None and tuple(capability) < MIN_CAPABILITY:
        return (f"float8 training needs compute capability {need} or newer; this GPU has "
                f"{capability[0]}.{capability[1]}")
    if torchao is None:
        return f"float8 training needs torchao, which is not installed: {INSTALL_HINT}"
    if _release(torchao) < MIN_TORCHAO:
        floor = ".".join(map(str, MIN_TORCHAO))
        return f"float8 training needs torchao >= {floor}; {torchao} is installed: {INSTALL_HINT}"
    return None


def convertible(module: torch.nn.Module) -> bool:
    """A layer float8 can take: an ``nn.Linear`` with both dimensions multiples of 16."""
    return (isinstance(module, torch.nn.Linear) and module.in_features % DIM_MULTIPLE == 0
            and module.out_features % DIM_MULTIPLE == 0)


def linear_layers(model: torch.nn.Module) -> tuple[list[str], list[str]]:
    """(names of the linear layers float8 can take, names of those it cannot)."""
    linears = [(name, m) for name, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    return ([n for n, m in linears if convertible(m)], [n for n, m in linears if not convertible(m)])


def convert(model: torch.nn.Module, recipe: str, emulate: bool = False) -> list[str]:
    """Swap every convertible linear of ``model`` for torchao's ``Float8Linear`` in place;
    the names converted. ``emulate``: float8 casts without float8 GEMMs (torchao's CPU path,
    for tests)."""
    from torchao.float8 import Float8LinearConfig, convert_to_float8_training

    names, _ = linear_layers(model)
    config = Float8LinearConfig.from_recipe_name(recipe)
    if emulate:
        import dataclasses

        config = dataclasses.replace(config, emulate=True)
    chosen = set(names)
    convert_to_float8_training(model, config=config,
                               module_filter_fn=lambda _module, fqn: fqn in chosen)
    return names


@dataclass(frozen=True)
class Float8Precision(Precision):
    """bfloat16 autocast (the entry's) plus torchao float8 linears with ``recipe`` scaling."""

    recipe: str = "tensorwise"

    def check_supported(self, device: torch.device) -> None:
        super().check_supported(device)
        device = torch.device(device)
        capability = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
        reason = float8_unsupported_reason(device.type, capability, torchao_version())
        if reason:
            raise UnsupportedPrecisionError(self.id, str(device), reason)

    def bind(self, device: torch.device) -> ActivePrecision:
        return Float8Active(self, device)


@dataclass(frozen=True)
class Float8RowwisePrecision(Float8Precision):
    recipe: str = "rowwise"


class Float8Active(ActivePrecision):
    """Converts the workload's model when the run prepares it; otherwise ``amp-bf16``."""

    def prepare(self, workload: PreparedWorkload) -> PreparedWorkload:
        names, others = linear_layers(workload.model)
        if not names:
            raise UnsupportedPrecisionError(
                self.precision.id, str(self.device),
                f"no linear layer of {workload.name} has in and out features divisible by "
                f"{DIM_MULTIPLE} ({len(others)} linear layers, none convertible): float8 "
                "would train exactly as amp-bf16")
        convert(workload.model, self.precision.recipe)
        workload.details["float8"] = {"recipe": self.precision.recipe, "converted": len(names),
                                      "kept_bf16": others, "torchao": torchao_version()}
        return workload
