"""``RunSpec``: every choice that defines one run, and the device it names."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from ampcore.core.errors import DeviceUnavailableError
from ampcore.core.profiles import WorkloadConfig, get_profile
from ampcore.core.registry import workload_entry


@dataclass(frozen=True)
class RunSpec:
    """Every choice that defines one run."""

    workload: str
    precision: str
    profile: str
    device: str = "cuda"
    data_dir: Path | None = None
    bert_model: str | None = None  # overrides the profile's model of bert
    llama_model: str | None = None  # overrides the profile's architecture of llama
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
        config = get_profile(self.profile).workloads[self.workload]
        entry = workload_entry(self.workload)
        model = getattr(self, entry.model_option) if entry.model_option else None
        given = {"model": model, "max_length": self.max_length}
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
