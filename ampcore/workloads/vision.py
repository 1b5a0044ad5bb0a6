"""Any torchvision classification model on MNIST (seed) or scikit-learn's 8x8 digits (smoke):
the ``torchvision:<name>[@size]`` model family (``ampcore.core.families``).

The model is torchvision's, built by name with random weights (none are downloaded: training
from scratch on the digits is the experiment, as resnet18's is) and a 10-class head. Its first
module (``GreyToRGB``) resizes the grey images to ``config.image_size`` and repeats them to the
3 channels torchvision's stems take: the images stay on the device at their stored size, since
MNIST at 224 pixels and 3 channels would fill 36 GB, and the resize counts in the step like a
data pipeline's on the device would. The ViTs and MaxViT are built for that size (their
position embeddings and partitions depend on it); the other networks pool adaptively.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import torch
from torch import nn

from ampcore.core.errors import UsageError
from ampcore.core.profiles import WorkloadConfig
from ampcore.workloads.base import PreparedWorkload, precision_guard
from ampcore.workloads.resnet18 import image_workload, images

FAMILY = "torchvision"
# Builders whose architecture depends on the input size, and the argument that sets it.
SIZE_ARGUMENTS = {"vit_": "image_size", "maxvit_": "input_size"}
# Built without their auxiliary classifiers (outputs the loss would not use).
AUXILIARY = ("googlenet", "inception_v3")
EXAMPLES = ("resnet50", "convnext_tiny", "efficientnet_b0", "mobilenet_v3_large", "vit_b_16")
EVERY_MODEL_SIZE = 224  # the size torchvision's classification models are designed for


class GreyToRGB(nn.Module):
    """Grey images (N x 1 x H x W) resized to ``size`` x ``size`` and repeated to 3 channels."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        if tuple(pixels.shape[-2:]) != (self.size, self.size):
            pixels = nn.functional.interpolate(pixels, size=(self.size, self.size),
                                               mode="bilinear", align_corners=False)
        return pixels.expand(-1, 3, -1, -1)


def classification_models() -> list[str]:
    """torchvision's classification models (not detection, segmentation, video, ...)."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def check_name(workload_id: str, name: str) -> None:
    """A UsageError for a name torchvision has no classification model of, with close ones."""
    models = classification_models()
    if name in models:
        return
    import torchvision

    close = difflib.get_close_matches(name, models, n=5, cutoff=0.6)
    hint = (f"did you mean {', '.join(close)}?" if close
            else f"for example {', '.join(EXAMPLES)}")
    raise UsageError(f"workload {workload_id!r}: {name!r} is not a torchvision classification "
                     f"model; {hint} (torchvision {torchvision.__version__} has {len(models)}: "
                     "torchvision.models.list_models(module=torchvision.models))")


def build_model(name: str, size: int, num_classes: int) -> nn.Module:
    """``GreyToRGB`` then torchvision's ``name`` with random weights and ``num_classes``."""
    import torchvision

    kwargs: dict = {"weights": None, "num_classes": num_classes}
    for prefix, argument in SIZE_ARGUMENTS.items():
        if name.startswith(prefix):
            kwargs[argument] = size if argument == "image_size" else (size, size)
    if name in AUXILIARY:
        kwargs.update(aux_logits=False, init_weights=True)
    return nn.Sequential(GreyToRGB(size), torchvision.models.get_model(name, **kwargs))


def _forward(model: nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    return model(inputs["pixels"])


def _sized_model(workload_id: str, name: str, size: int, sample: torch.Tensor,
                 num_classes: int) -> tuple[nn.Module, float]:
    """The model and its training FLOPs per image (3 x one forward's, counted on ``sample``
    in eval mode: no batch statistics move, no random numbers are drawn). A model that cannot
    be built for, or take, images of ``size`` is a UsageError naming the fix."""
    from torch.utils.flop_counter import FlopCounterMode

    try:
        model = build_model(name, size, num_classes).to(sample.device)
        model.eval()
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(sample)
    except (RuntimeError, ValueError, AssertionError, IndexError) as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise UsageError(f"workload {workload_id!r}: torchvision's {name} cannot take "
                         f"{size}x{size} images ({type(exc).__name__}: {reason}); give another "
                         f"size, e.g. {FAMILY}:{name}@{EVERY_MODEL_SIZE} (every torchvision "
                         "classification model takes that)") from exc
    model.train()
    return model, 3.0 * counter.get_total_flops()


def build(config: WorkloadConfig, device: torch.device, *, real_data: bool,
          data_dir: Path | None, allow_download: bool, **_: object) -> PreparedWorkload:
    name, size = config.model, config.image_size
    workload_id = f"{FAMILY}:{name}@{size}"
    if size is None:
        raise UsageError(f"workload {workload_id!r}: the config has no image_size; give one")
    check_name(workload_id, name)
    data = images(config, real_data, data_dir, allow_download)
    torch.manual_seed(config.training_seed)  # the same initial weights for every precision
    model, flops = _sized_model(workload_id, name, size, data.train_x[:1].to(device),
                                data.num_classes)
    stored = "x".join(map(str, data.train_x.shape[-2:]))
    workload = image_workload(
        workload_id, config, device, data, model,
        f"random init (torchvision {name}, trained from scratch at {size}x{size})",
        {"architecture": name, "image_size": [size, size],
         "input": f"grey {stored} resized to {size}x{size}, repeated to 3 channels"},
        flops_per_sample=flops or None)
    workload.forward = precision_guard(workload_id, _forward)
    return workload
