"""Workloads: one module each; the registry entry (``ampcore.core.registry.WORKLOADS``) names the
module's ``build`` function, which returns a ``PreparedWorkload``."""

from __future__ import annotations

from collections.abc import Callable

import torch

from ampcore.core import versions
from ampcore.core.registry import workload_entry
from ampcore.workloads.base import PreparedWorkload, check


def get_workload(name: str) -> Callable[..., PreparedWorkload]:
    """The build function of a registered workload, its result checked against the contract
    (``base.check``). Every training run builds its workload here, so this is where a library
    below ampcore's floor stops it (before any model code)."""
    versions.check()
    build = workload_entry(name).build_function()

    def checked(config: object, device: torch.device, **options: object) -> PreparedWorkload:
        return check(build(config, device, **options), name, device)

    return checked
