"""``RunSpec``: every choice that defines one run, and the device it names."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from ampcore.core.errors import DeviceUnavailableError, UsageError
from ampcore.core.profiles import WorkloadConfig
from ampcore.core.registry import workload_entry


@dataclass(frozen=True)
class RunSpec:
    """Every choice that defines one run."""

    workload: str
    precision: str
    profile: str
    device: str = "cuda"
    data_dir: Path | None = None
    # Overrides the profile's model of the workload, for those whose registry entry accepts one.
    model: str | None = None
    max_length: int | None = None  # overrides the profile's max length
    allow_download: bool = False
    allow_random_init: bool = False
    max_grad_norm: float | None = None
    compile: bool = False
    # Capture each step shape in a CUDA graph (ampcore.train.graphs). The core does what it is told;
    # the CLI and the suite default to captured steps on CUDA (``resolve_cuda_graphs``).
    cuda_graphs: bool = False
    # A step that cannot be captured runs eagerly, recorded with the reason (--cuda-graphs
    # auto); False (--cuda-graphs on): the run stops with the reason instead.
    capture_fallback: bool = True
    # Regressions injected on purpose (ampcore.train.inject); never on the default path.
    injections: tuple[str, ...] = ()
    eval_samples: int | None = None  # overrides the profile's held-out set size
    train_seed: int | None = None  # overrides the training seed (weight init, batch order)

    def workload_config(self) -> WorkloadConfig:
        """The profile's experiment with this run's overrides; a UsageError when the workload
        has none for the profile or takes no model."""
        entry = workload_entry(self.workload)
        config = entry.config(self.profile)
        if self.model is not None and not entry.accepts("model"):
            raise UsageError(f"workload {self.workload!r} takes no model override "
                             f"(given {self.model!r}); its model is the profile's")
        # max_length is one option for the whole matrix: workloads without one ignore it.
        given = {"model": self.model, "max_length": self.max_length}
        overrides = {name: value for name, value in given.items()
                     if value is not None and entry.accepts(name)}
        for name in ("eval_samples", "train_seed"):  # every workload takes these
            if getattr(self, name) is not None:
                overrides[name] = getattr(self, name)
        return dataclasses.replace(config, **overrides)


def resolve_device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            f"device {name!r} was asked for but CUDA is not available here "
            f"(torch {torch.__version__}, CUDA build: {torch.version.cuda}); use --device cpu")
    return device
