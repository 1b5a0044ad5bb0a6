"""Workloads: one module each; the registry entry (``ampcore.core.registry.WORKLOADS``) names the
module's ``build`` function, which returns a ``PreparedWorkload``."""

from __future__ import annotations

from collections.abc import Callable

from ampcore.core import versions
from ampcore.core.registry import load, workload_entry
from ampcore.workloads.base import PreparedWorkload


def get_workload(name: str) -> Callable[..., PreparedWorkload]:
    """The build function of a registered workload. Every training run builds its workload
    here, so this is where a library below ampcore's floor stops it (before any model code)."""
    versions.check()
    return load(workload_entry(name).build)
