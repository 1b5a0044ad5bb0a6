"""Profiles: which experiment a run reproduces.

``seed`` is the published experiment exactly and needs the real data sets. ``smoke`` is a
tiny, self-contained version for CPUs and CI that needs no network and no data directory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ampcore.core.errors import UsageError


TINY_MODEL = "builtin:tiny"


@dataclass(frozen=True)
class WorkloadConfig:
    """Everything that defines one workload's experiment in a profile."""

    epochs: int
    batch_size: int
    lr: float
    train_samples: int | None = None  # None: the whole split
    test_samples: int | None = None
    max_length: int = 256  # bert, llama and the hf-* families: tokens per sequence
    # bert: a Hugging Face id or a local directory; resnet18: "resnet18". TINY_MODEL: the smoke
    # profile's small model of the same family, which trains in seconds on a CPU. A model
    # family (``ampcore.core.families``): the model its workload id names, also the source of
    # its weights (a hub id or directory; a torchvision name, random init).
    model: str = "resnet18"
    # The torchvision family: the side, in pixels, the images are resized to (None: as stored).
    image_size: int | None = None
    weight_decay: float = 0.01
    seed: int = 42  # draws the data sample (and, unless train_seed is set, trains)
    # Weight init and batch order only; the data stay those of ``seed`` (--seeds varies it).
    train_seed: int | None = None
    # Held-out evaluation samples, disjoint from the training sample, evaluated once after
    # training for the parity and compare verdicts (None: every one the source holds; 0: none).
    eval_samples: int | None = None
    # The fp32 run must reach this test accuracy before an AMP-vs-fp32 parity check means
    # anything: two models that learned nothing always agree.
    accuracy_floor: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def training_seed(self) -> int:
        return self.seed if self.train_seed is None else self.train_seed


@dataclass(frozen=True)
class Profile:
    """How a profile runs every workload; each workload's experiment in it is the
    ``WorkloadConfig`` its registry entry holds for the profile (``Workload.configs``)."""

    name: str
    description: str
    real_data: bool  # True: refuse to run without the real data sets
    min_rounds: int = 10  # timed rounds per run; each a block of whole optimizer steps
    warmup_steps: int = 10  # untimed steps, undone before the timed run starts


PROFILES: dict[str, Profile] = {
    "seed": Profile(
        name="seed",
        description="the published experiment: BERT on 1,000 IMDB reviews (800/200), "
        "10 epochs, batch 64; ResNet18 on MNIST, 2 epochs, batch 64",
        real_data=True,
    ),
    "smoke": Profile(
        name="smoke",
        description="tiny models on embedded data (generated sentiment corpus, "
        "scikit-learn 8x8 digits) for CPUs and CI",
        real_data=False,
        warmup_steps=2,
    ),
}


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError:
        raise UsageError(f"unknown profile {name!r}; valid: {', '.join(PROFILES)}") from None


def default_profile_name() -> tuple[str, str]:
    """The profile to use when none is given, and why."""
    import torch  # here, so that the core stays importable without torch

    if torch.cuda.is_available():
        return "seed", "CUDA is available"
    return "smoke", "no CUDA device is available (the seed profile is meant for a GPU)"
