"""The public workload API (version ``API_VERSION``): what a workload provides, and how it joins
the registries without editing ampcore (docs/WORKLOADS.md).

    from ampcore.api import Workload, PreparedWorkload, register_workload, WorkloadConfig

A ``Workload`` names its ``build`` (a function, or a ``module:function`` path) and holds a
``WorkloadConfig`` per profile; ``build(config, device, *, real_data, data_dir, allow_download,
allow_random_init)`` returns a ``PreparedWorkload``, which every run checks (a field of the
wrong type or on the wrong device stops the run, naming the workload and the field). Register
it with ``register_workload`` (from a conftest.py, or any code imported before the run), or
declare it as an entry point of the group ``ampcore.workloads`` (``WORKLOAD_GROUP``) in an
installed package: the object, or a zero-argument function returning one or a list. Precision
modes join the same way (``Precision``, ``register_precision``, ``PRECISION_GROUP``).

Torch-free to import: ``PreparedWorkload`` and the helpers that build one (``make_adamw``,
``linear_schedule``) import torch when first used. Within one ``API_VERSION`` fields are only
added, with defaults; a change that breaks a workload written for it raises the version.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ampcore.core.entries import Precision, Workload
from ampcore.core.errors import UsageError
from ampcore.core.plugins import PRECISION_GROUP, WORKLOAD_GROUP
from ampcore.core.profiles import WorkloadConfig
from ampcore.core.registry import register_precision, register_workload

if TYPE_CHECKING:
    from ampcore.workloads.base import PreparedWorkload, linear_schedule, make_adamw

API_VERSION = 1

__all__ = ["API_VERSION", "PRECISION_GROUP", "WORKLOAD_GROUP", "Precision", "PreparedWorkload",
           "UsageError", "Workload", "WorkloadConfig", "linear_schedule", "make_adamw",
           "register_precision", "register_workload"]

_WITH_TORCH = ("PreparedWorkload", "linear_schedule", "make_adamw")


def __getattr__(name: str) -> object:
    # The names that need torch, imported on first use (PEP 562).
    if name in _WITH_TORCH:
        from ampcore.workloads import base

        return getattr(base, name)
    raise AttributeError(f"module 'ampcore.api' has no attribute {name!r}")
