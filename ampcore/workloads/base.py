"""What every workload hands to the training loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch


@dataclass
class PreparedWorkload:
    """Model, optimizer and device-resident data for one run of one workload.

    ``train_inputs``/``test_inputs`` map model-input names to tensors whose first dimension is
    the sample; the loop indexes them with device-side index tensors, so no host copy happens
    inside the timed steps.
    """

    name: str
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    forward: Callable[[torch.nn.Module, dict[str, torch.Tensor]], torch.Tensor]  # -> logits
    train_inputs: dict[str, torch.Tensor]
    train_labels: torch.Tensor
    test_inputs: dict[str, torch.Tensor]
    test_labels: torch.Tensor
    data_source: str
    weights_source: str
    accuracy_meaningful: bool  # False for random-init bert on the seed: speed only
    tokens_per_sample: int | None = None  # sequence workloads: padded tokens per sample
    flops_per_sample: float | None = None  # analytical training FLOPs per sample
    details: dict = field(default_factory=dict)
    # The held-out evaluation set (disjoint from the training sample), evaluated once after
    # training; empty when the run has none (eval_samples 0, or a workload built without).
    heldout_inputs: dict[str, torch.Tensor] = field(default_factory=dict)
    heldout_labels: torch.Tensor | None = None
    heldout_source: str = ""

    @property
    def train_size(self) -> int:
        return len(self.train_labels)


def make_adamw(model: torch.nn.Module, lr: float, weight_decay: float,
               device: torch.device) -> torch.optim.Optimizer:
    """AdamW; fused on CUDA (one kernel for all parameters, and GradScaler steps without a
    host sync because fused optimizers take the inf check on the device)."""
    fused = device.type == "cuda"
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay, fused=fused)


def linear_schedule(optimizer: torch.optim.Optimizer, total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Linear decay to zero over the run, as transformers' default schedule without warm-up."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: max(0.0, 1.0 - step / max(1, total_steps))
    )
