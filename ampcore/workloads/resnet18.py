"""ResNet18 on MNIST (seed), or a tiny ResNet on scikit-learn's 8x8 digits (smoke).

The stem is adapted to small grey images, the usual choice for 28x28 inputs: a 3x3 stride-1
first convolution on 1 channel and no max-pool, so the 28x28 image is not shrunk to 7x7
before the first residual stage. The rest is torchvision's ResNet18 with a 10-class head.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ampcore.data import mnist, smoke
from ampcore.core.errors import DataSizeError, UsageError
from ampcore.core.profiles import TINY_MODEL, WorkloadConfig
from ampcore.workloads.base import PreparedWorkload, make_adamw


def build_model(num_classes: int = 10) -> nn.Module:
    """torchvision's ResNet18 with the small-image stem."""
    from torchvision.models import resnet18

    model = resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(1, 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model


def build_tiny_model(num_classes: int = 10, width: int = 16) -> nn.Module:
    """Three of torchvision's residual blocks at 1/4 of ResNet18's width: the smoke model.

    Reduced-precision convolutions on CPUs without bf16/fp16 units are emulated and about 30x
    slower than float32, which makes full ResNet18 take minutes a step there.
    """
    from torchvision.models.resnet import BasicBlock, conv1x1

    def downsample(cin: int, cout: int) -> nn.Module:
        return nn.Sequential(conv1x1(cin, cout, stride=2), nn.BatchNorm2d(cout))

    return nn.Sequential(
        nn.Conv2d(1, width, kernel_size=3, stride=1, padding=1, bias=False),
        nn.BatchNorm2d(width), nn.ReLU(inplace=True),
        BasicBlock(width, width),
        BasicBlock(width, 2 * width, stride=2, downsample=downsample(width, 2 * width)),
        BasicBlock(2 * width, 4 * width, stride=2, downsample=downsample(2 * width, 4 * width)),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4 * width, num_classes),
    )


ARCHITECTURES = {"resnet18": build_model, TINY_MODEL: build_tiny_model}


def _forward(model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    return model(inputs["pixels"])


def _first(images: torch.Tensor, labels: torch.Tensor, count: int | None, split: str,
           source: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``count`` samples (None: all); a slice past the end would silently train or
    evaluate on fewer samples than the profile and its record say."""
    if count is not None and count > len(labels):
        raise DataSizeError(f"the profile asks for {count} {split} images but the {split} split "
                            f"of {source} holds {len(labels)}; use a complete data set.")
    return images[:count], labels[:count]


def _heldout(splits, count: int | None) -> tuple[torch.Tensor | None, torch.Tensor | None, str]:
    """The held-out images: the smoke digits' own set, else the first ``count`` (None: all)
    of the test split, which MNIST keeps apart from its 60,000 training images."""
    if count == 0:
        return None, None, ""
    if splits.heldout_images is not None:
        return (splits.heldout_images, splits.heldout_labels,
                f"{len(splits.heldout_labels)} more digits of {splits.source}, disjoint from "
                "the sample")
    if count is not None and count > len(splits.test_labels):
        raise DataSizeError(f"--eval-samples {count} asks for {count} held-out images but the "
                            f"test split of {splits.source} holds {len(splits.test_labels)} (the "
                            f"held-out set is drawn from it); pass --eval-samples "
                            f"{len(splits.test_labels)} or less")
    images, labels = splits.test_images[:count], splits.test_labels[:count]
    return images, labels, f"{len(labels)} test images of {splits.source}"


@dataclass(frozen=True)
class Images:
    """One run's images, each split on the host at its stored size (N x 1 x H x W)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    held_x: torch.Tensor | None
    held_y: torch.Tensor | None
    held_source: str
    source: str
    num_classes: int


def images(config: WorkloadConfig, real_data: bool, data_dir: Path | None,
           allow_download: bool) -> Images:
    """MNIST (seed) or the smoke digits, cut to the profile's sample counts."""
    if real_data:
        splits = mnist.load_mnist(data_dir, allow_download)
    else:
        heldout = config.test_samples if config.eval_samples is None else config.eval_samples
        splits = smoke.digits(config.train_samples, config.test_samples, config.seed, heldout)
    train_x, train_y = _first(splits.train_images, splits.train_labels, config.train_samples,
                              "train", splits.source)
    test_x, test_y = _first(splits.test_images, splits.test_labels, config.test_samples,
                            "test", splits.source)
    held_x, held_y, held_source = _heldout(splits, config.eval_samples)
    return Images(train_x, train_y, test_x, test_y, held_x, held_y, held_source, splits.source,
                  splits.num_classes)


def image_workload(name: str, config: WorkloadConfig, device: torch.device, data: Images,
                   model: nn.Module, weights_source: str, details: dict,
                   flops_per_sample: float | None = None) -> PreparedWorkload:
    """An image classifier trained on ``data``: resnet18's, and a torchvision family's."""
    model = model.to(device)
    return PreparedWorkload(
        name=name, model=model,
        optimizer=make_adamw(model, config.lr, config.weight_decay, device), scheduler=None,
        forward=_forward,
        train_inputs={"pixels": data.train_x.to(device)}, train_labels=data.train_y.to(device),
        test_inputs={"pixels": data.test_x.to(device)}, test_labels=data.test_y.to(device),
        heldout_inputs={"pixels": data.held_x.to(device)} if data.held_x is not None else {},
        heldout_labels=data.held_y.to(device) if data.held_y is not None else None,
        heldout_source=data.held_source, data_source=data.source, weights_source=weights_source,
        accuracy_meaningful=True,  # training from scratch is this workload's experiment
        flops_per_sample=flops_per_sample,
        details={**details, "parameters": sum(p.numel() for p in model.parameters())},
    )


def build(config: WorkloadConfig, device: torch.device, *, real_data: bool,
          data_dir: Path | None, allow_download: bool, **_: object) -> PreparedWorkload:
    if config.model not in ARCHITECTURES:
        raise UsageError(f"unknown resnet18 architecture {config.model!r}; valid: {', '.join(ARCHITECTURES)}")
    data = images(config, real_data, data_dir, allow_download)
    torch.manual_seed(config.training_seed)  # the same initial weights for every precision
    model = ARCHITECTURES[config.model](data.num_classes)
    return image_workload(
        "resnet18", config, device, data, model,
        f"random init ({config.model}, trained from scratch)",
        {"architecture": config.model, "image_size": list(data.train_x.shape[-2:]),
         "stem": "3x3 stride 1, no max-pool"})
