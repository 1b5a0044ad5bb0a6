"""Workload registry: adding a workload is one module plus one entry here."""

from __future__ import annotations

from collections.abc import Callable

from ampcore.errors import UsageError
from ampcore.workloads import bert, resnet18
from ampcore.workloads.base import PreparedWorkload

WORKLOADS: dict[str, Callable[..., PreparedWorkload]] = {
    "bert": bert.build,
    "resnet18": resnet18.build,
}


def get_workload(name: str) -> Callable[..., PreparedWorkload]:
    try:
        return WORKLOADS[name]
    except KeyError:
        raise UsageError(f"unknown workload {name!r}; valid: {', '.join(WORKLOADS)}") from None
