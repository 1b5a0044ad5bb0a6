"""Profiles: which experiment a run reproduces.

``seed`` is the published experiment exactly and needs the real data sets. ``smoke`` is a
tiny, self-contained version for CPUs and CI that needs no network and no data directory.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


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
    max_length: int = 256  # bert and llama: tokens per sequence
    # bert: a Hugging Face id or a local directory; resnet18: "resnet18". TINY_MODEL: the smoke
    # profile's small model of the same family, which trains in seconds on a CPU.
    model: str = "resnet18"
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
    name: str
    description: str
    real_data: bool  # True: refuse to run without the real data sets
    workloads: dict[str, WorkloadConfig] = field(default_factory=dict)
    min_rounds: int = 10  # timed rounds per run; each a block of whole optimizer steps
    warmup_steps: int = 10  # untimed steps, undone before the timed run starts


PROFILES: dict[str, Profile] = {
    "seed": Profile(
        name="seed",
        description="the published experiment: BERT on 1,000 IMDB reviews (800/200), "
        "10 epochs, batch 64; ResNet18 on MNIST, 2 epochs, batch 64",
        real_data=True,
        workloads={
            # 1,000 reviews sampled with the seed, split 800 train / 200 test.
            "bert": WorkloadConfig(epochs=10, batch_size=64, lr=2e-5, train_samples=800,
                                   test_samples=200, max_length=256, model="bert-base-cased",
                                   accuracy_floor=0.75, eval_samples=5000),
            # Held out: the 10,000 MNIST test digits (the test split; training uses 60,000).
            "resnet18": WorkloadConfig(epochs=2, batch_size=64, lr=1e-3, accuracy_floor=0.97),
            # ~134M-parameter Llama on 2,048 packed IMDB sequences of 1,024 tokens (2.1M
            # tokens, 128 steps of 16K tokens), held-out loss on 64 test-split sequences.
            "llama": WorkloadConfig(epochs=1, batch_size=16, lr=3e-4, train_samples=2048,
                                    test_samples=64, max_length=1024, model="llama-125m",
                                    weight_decay=0.1),
        },
    ),
    "smoke": Profile(
        name="smoke",
        description="tiny models on embedded data (generated sentiment corpus, "
        "scikit-learn 8x8 digits) for CPUs and CI",
        real_data=False,
        workloads={
            # Enough steps for fp32 and AMP to converge (~0.97-0.99 measured on a CPU), so the
            # parity check compares trained models, and 256 test reviews so one review is 0.4%.
            "bert": WorkloadConfig(epochs=8, batch_size=32, lr=3e-3, train_samples=640,
                                   test_samples=256, max_length=32, model=TINY_MODEL,
                                   accuracy_floor=0.80, eval_samples=512),
            "resnet18": WorkloadConfig(epochs=2, batch_size=64, lr=1e-3, train_samples=640,
                                       test_samples=256, model=TINY_MODEL, accuracy_floor=0.75,
                                       eval_samples=512),
            # A tiny Llama on the generated reviews as text: 20 steps of 16 x 32 tokens.
            "llama": WorkloadConfig(epochs=2, batch_size=16, lr=1e-2, train_samples=160,
                                    test_samples=32, max_length=32, model=TINY_MODEL),
        },
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
