"""``Settings``: one face's resolved option values, as a typed object.

A class written out rather than one made at run time from the option table
(``dataclasses.make_dataclass``): a type checker sees only the fields a class states, so this
one states them, and ``tests/test_options.py`` keeps them in step with the table (one field per
option key, of the type its parser returns). ``ampcore.options.table.resolve`` builds it, so a
row without a field, or a field without a row, also fails the first resolve. Torch-free, as the
table is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """Every option's value for ``command`` (``run`` or ``suite``): its flag, else its
    environment variable, else its default; the options only the other command takes hold
    their defaults. ``given(key)`` is the raw value a flag or variable gave (None: default)."""

    command: str
    workloads: list[str]
    precisions: list[str]
    profile: str | None  # None: chosen by the device (ampcore.options.request)
    device: str | None  # None: cuda when available, else cpu
    data_dir: Path | None
    download: bool
    # Model overrides by workload id, from the table's model options (``Option.model_of``).
    models: Mapping[str, str]
    max_length: int | None
    eval_samples: int | None
    seeds: int
    allow_random_init: bool
    max_grad_norm: float | None
    compile: bool
    cuda_graphs: str
    inject: tuple[str, ...]
    nproc: int
    processes: int
    min_speedup: float
    acc_tol: float
    require_cuda: bool
    loss_tol: float
    summary: Path | None
    json: Path | None
    no_progress: bool
    raw: Mapping[str, object] = field(default_factory=dict, repr=False, compare=False)

    def given(self, key: str) -> object:
        """What the flag or environment variable of option ``key`` gave; None: neither did."""
        return self.raw.get(key)
