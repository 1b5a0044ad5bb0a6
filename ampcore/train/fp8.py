"""Precision ``fp8``: float8 training through torchao, under bfloat16 autocast.

The recipe is torchao's (``torchao.float8.Float8LinearConfig.from_recipe_name``):

- ``tensorwise`` (mode ``fp8``): one dynamic scale per tensor, inputs and weights cast to
  float8 e4m3, output gradients to e5m2; the forward GEMM accumulates fast, the backward ones
  in full precision. The default, as the faster of the two at every shape measured.
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

from typing import TYPE_CHECKING

import torch

from ampcore.core.errors import UnsupportedPrecisionError
from ampcore.core.registry import Precision
from ampcore.core.versions import installed_version
from ampcore.train.precision import ActivePrecision

if TYPE_CHECKING:
    from ampcore.workloads.base import PreparedWorkload

MIN_CAPABILITY = (8, 9)  # Ada and Hopper have float8 tensor cores
MIN_TORCHAO = (0, 10)  # Float8LinearConfig.from_recipe_name with "tensorwise" and "rowwise"
DIM_MULTIPLE = 16  # torch._scaled_mm needs both GEMM dimensions of the weight divisible by 16
INSTALL_HINT = "pip install 'ampcore[fp8]'"


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


class Float8Active(ActivePrecision):
    """bfloat16 autocast (the mode's) plus torchao float8 linears, with the scaling recipe of
    the mode's ``recipe`` option; converts the workload's model when the run prepares it."""

    @classmethod
    def unsupported_reason(cls, precision: Precision, device: torch.device) -> str | None:
        capability = torch.cuda.get_device_capability(device) if device.type == "cuda" else None
        return float8_unsupported_reason(device.type, capability, installed_version("torchao"))

    def prepare(self, workload: PreparedWorkload) -> PreparedWorkload:
        names, others = linear_layers(workload.model)
        if not names:
            raise UnsupportedPrecisionError(
                self.precision.id, str(self.device),
                f"no linear layer of {workload.name} has in and out features divisible by "
                f"{DIM_MULTIPLE} ({len(others)} linear layers, none convertible): float8 "
                "would train exactly as amp-bf16")
        recipe = self.precision.option("recipe")
        convert(workload.model, recipe)
        workload.details["float8"] = {"recipe": recipe, "converted": len(names),
                                      "kept_bf16": others, "torchao": installed_version("torchao")}
        return workload
