"""``RunConfig``: what one run trained, the typed form of a result's and a record's ``config``.

Saved flat, as it always was: the profile's ``WorkloadConfig`` fields, then the run's own
choices. ``from_dict`` reads a saved one of any age: a key written only by later versions is
None (or its default) in an older file, and a value of the wrong type reads as None rather
than as a wrong figure. Torch-free, so the history tools read it without importing torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, fields

from ampcore.core.profiles import WorkloadConfig
from ampcore.core.registry import run_name

_NUMBER = (int, float)


@dataclass(frozen=True)
class RunConfig:
    # The profile's workload configuration (``WorkloadConfig``, every field, flattened)
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    train_samples: int | None = None
    test_samples: int | None = None
    max_length: int | None = None
    model: str | None = None
    image_size: int | None = None
    weight_decay: float | None = None
    seed: int | None = None
    train_seed: int | None = None
    eval_samples: int | None = None
    accuracy_floor: float | None = None
    # The run's choices
    compile: bool | None = None
    cuda_graphs: bool | None = None
    max_grad_norm: float | None = None
    rounds: int | None = None
    warmup_steps: int | None = None
    steps_per_round: tuple[int, ...] = ()
    injections: tuple[str, ...] = ()
    processes: int = 1  # fresh processes the run was trained in, each round their median
    world_size: int = 1  # DDP processes, each training a batch of ``batch_size``
    global_batch_size: int | None = None  # DDP: batch_size x world_size

    @classmethod
    def of_run(cls, workload: WorkloadConfig, **choices: object) -> RunConfig:
        return cls(**dataclasses.asdict(workload), **choices)

    def to_dict(self) -> dict:
        """The saved form; the launchers' keys only where a launcher set them, as files have
        always had them."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["steps_per_round"] = list(self.steps_per_round)
        data["injections"] = list(self.injections)
        for name, default in _LAUNCHER_DEFAULTS.items():
            if data[name] == default:
                del data[name]
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> RunConfig:
        values = {}
        for f in fields(cls):
            if f.name in data:
                values[f.name] = _typed(f.type, data[f.name])
        for name in ("processes", "world_size"):
            if values.get(name) is None:
                values.pop(name, None)
        return cls(**{k: v for k, v in values.items() if v is not None or k not in _SEQUENCES})


class ConfiguredRun:
    """``name`` and the typed ``run_config`` of a run's result or record (each has
    ``workload``, ``precision`` and the saved ``config``)."""

    @property
    def name(self) -> str:
        return run_name(self.workload, self.precision)

    @property
    def run_config(self) -> RunConfig:
        return RunConfig.from_dict(self.config)


_SEQUENCES = {"steps_per_round", "injections"}
_LAUNCHER_DEFAULTS = {"processes": 1, "world_size": 1, "global_batch_size": None}


def _typed(annotation: str, value: object) -> object:
    if annotation.startswith("tuple[int"):
        ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool)
                                             for v in value)
        return tuple(value) if ok else None
    if annotation.startswith("tuple[str"):
        return tuple(str(v) for v in value) if isinstance(value, list) else None
    if annotation.startswith("bool"):
        return value if isinstance(value, bool) else None
    if annotation.startswith("str"):
        return value if isinstance(value, str) else None
    if isinstance(value, bool) or not isinstance(value, _NUMBER):
        return None
    return int(value) if annotation.startswith("int") and float(value).is_integer() else (
        None if annotation.startswith("int") else float(value))
