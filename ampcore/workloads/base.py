"""What every workload hands to the training loop, and the check that it did (``check``)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from ampcore.core.errors import UnsupportedPrecisionError, WorkloadContractError


@dataclass
class PreparedWorkload:
    """Model, optimizer and device-resident data for one run of one workload (public:
    ``ampcore.api.PreparedWorkload``; docs/WORKLOADS.md describes each field).

    ``train_inputs``/``test_inputs`` map model-input names to tensors whose first dimension is
    the sample; the loop indexes them with device-side index tensors, so no host copy happens
    inside the timed steps. The loss is the cross-entropy of ``forward``'s logits (classes on
    the last dimension) against the labels (class indices), in float32.
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


_TENSOR = "a torch.Tensor on the run's device"
_LABEL_DTYPES = (torch.long, torch.uint8)  # the class-index dtypes cross_entropy takes
_TENSORS = "a dict of input name -> torch.Tensor on the run's device"
# Field -> (accepts the value, what it should be); the tensors are checked apart (device, size).
_PLAIN: dict[str, tuple[Callable[[object], bool], str]] = {
    "name": (lambda v: isinstance(v, str), "a string"),
    "model": (lambda v: isinstance(v, torch.nn.Module), "a torch.nn.Module"),
    "optimizer": (lambda v: isinstance(v, torch.optim.Optimizer), "a torch.optim.Optimizer"),
    "scheduler": (lambda v: v is None or isinstance(v, torch.optim.lr_scheduler.LRScheduler),
                  "None or a torch.optim.lr_scheduler.LRScheduler"),
    "forward": (callable, "a function (model, inputs) -> logits"),
    "data_source": (lambda v: isinstance(v, str), "a string"),
    "weights_source": (lambda v: isinstance(v, str), "a string"),
    "heldout_source": (lambda v: isinstance(v, str), "a string"),
    "accuracy_meaningful": (lambda v: isinstance(v, bool), "a bool"),
    "tokens_per_sample": (lambda v: v is None or (isinstance(v, int) and not isinstance(v, bool)
                                                  and v > 0),
                          "None or a positive int"),
    "flops_per_sample": (lambda v: v is None or (isinstance(v, (int, float)) and not
                                                 isinstance(v, bool) and math.isfinite(v) and v > 0),
                         "None or a positive finite number"),
    "details": (lambda v: isinstance(v, dict), "a dict"),
}


def check(prepared: object, workload: str, device: torch.device) -> PreparedWorkload:
    """``prepared``, if it is a ``PreparedWorkload`` the loop can train on ``device``; else a
    WorkloadContractError naming the workload and the first field that is wrong."""
    def wrong(what: str, expected: str) -> WorkloadContractError:
        return WorkloadContractError(f"workload {workload!r}: build returned {what}; expected "
                                     f"{expected}: fix the workload's build (docs/WORKLOADS.md)")

    if not isinstance(prepared, PreparedWorkload):
        raise wrong(f"a {type(prepared).__name__}", "an ampcore.api.PreparedWorkload")
    for name, (accepts, expected) in _PLAIN.items():
        value = getattr(prepared, name)
        if not accepts(value):
            raise wrong(f"{name} {value!r}" if isinstance(value, (int, float, str)) else
                        f"{name} of type {type(value).__name__}", expected)
    parameter = next(iter(prepared.model.parameters()), None)
    if parameter is not None and not _on(parameter, device):
        raise wrong(f"a model with parameters on {parameter.device}", f"it on {device}")
    for split in ("train", "test", "heldout"):
        labels = getattr(prepared, f"{split}_labels")
        inputs = getattr(prepared, f"{split}_inputs")
        if split == "heldout" and labels is None and inputs == {}:
            continue  # no held-out set
        for what, value in ((f"{split}_labels", labels), *(
                (f"{split}_inputs[{key!r}]", v) for key, v in _items(inputs, split, wrong))):
            if not isinstance(value, torch.Tensor) or value.dim() == 0:
                raise wrong(f"{what} of type {type(value).__name__}", _TENSOR + " (samples first)")
            if not _on(value, device):
                raise wrong(f"{what} on {value.device}", f"{_TENSOR} ({device})")
            if value is labels and value.dtype not in _LABEL_DTYPES:
                # cross-entropy takes class indices of these dtypes only: a float or int32
                # tensor would fail inside the first timed step.
                raise wrong(f"{what} of dtype {value.dtype}", "class indices of dtype "
                            "torch.long (or torch.uint8)")
            if len(value) != len(labels) or len(value) == 0:
                raise wrong(f"{what} with {len(value)} samples and {split}_labels with "
                            f"{len(labels)}", "the same number of samples, at least one")
    _check_forward(prepared, wrong)
    return prepared


def _check_forward(prepared: PreparedWorkload, wrong: Callable[[str, str], Exception]) -> None:
    """One forward of two training samples before any timing, without gradients and in eval
    mode (restored after), so a forward that returns something the loss cannot take is named
    now, not an AttributeError inside the first training step."""
    inputs = {name: t[:2] for name, t in prepared.train_inputs.items()}
    labels = prepared.train_labels[:2]
    training = prepared.model.training
    prepared.model.eval()
    try:
        with torch.no_grad():
            logits = prepared.forward(prepared.model, inputs)
    finally:
        prepared.model.train(training)
    if not isinstance(logits, torch.Tensor) or not logits.is_floating_point():
        got = f"{logits.dtype} tensor" if isinstance(logits, torch.Tensor) else (
            type(logits).__name__)
        raise wrong(f"a forward that returns a {got}",
                    "a forward returning logits, a floating-point torch.Tensor")
    if tuple(logits.shape[:-1]) != tuple(labels.shape):
        raise wrong(f"a forward whose logits have shape {tuple(logits.shape)} for labels of "
                    f"shape {tuple(labels.shape)}", "logits shaped as the labels plus a last "
                    "dimension of classes")


def _items(inputs: object, split: str, wrong: Callable[[str, str], Exception]) -> list:
    if not isinstance(inputs, dict) or not inputs or not all(isinstance(k, str) for k in inputs):
        raise wrong(f"{split}_inputs of type {type(inputs).__name__}"
                    + (" (empty)" if inputs == {} else ""), _TENSORS)
    return list(inputs.items())


def _on(tensor: torch.Tensor, device: torch.device) -> bool:
    """On ``device``: "cuda" (no index) takes any CUDA device, "cuda:1" only that one."""
    return tensor.device.type == device.type and (device.index is None
                                                   or tensor.device.index == device.index)


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


# Names torch gives a reduced dtype in "... not implemented for 'Half'" and the like.
_REDUCED_DTYPES = ("Half", "BFloat16", "Float8", "float16", "bfloat16", "float8")
Forward = Callable[[torch.nn.Module, dict[str, torch.Tensor]], torch.Tensor]


def precision_guard(name: str, forward: Forward) -> Forward:
    """``forward``, where an error naming a reduced dtype under autocast becomes an
    ``UnsupportedPrecisionError``: a model named by the user (a model family) that has an op
    without a kernel for that dtype cannot run in the precision, which the suite skips and
    ``ampcore run`` reports with torch's reason, instead of failing as a bug."""
    def guarded(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        try:
            return forward(model, inputs)
        except (RuntimeError, NotImplementedError) as exc:
            device = next(iter(inputs.values())).device.type
            if not (torch.is_autocast_enabled(device)
                    and any(word in str(exc) for word in _REDUCED_DTYPES)):
                raise
            dtype = str(torch.get_autocast_dtype(device)).replace("torch.", "")
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise UnsupportedPrecisionError(
                f"autocast to {dtype}", device,
                f"{name} has an operation without a {dtype} kernel here ({reason})") from exc
    return guarded
