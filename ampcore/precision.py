"""Precision modes: one small immutable object per mode, owning everything the mode means.

A mode is activated on a device with ``with mode.activate(device) as amp:``. Inside, the TF32
backend flags are the mode's own (restored on exit), and ``amp`` owns the autocast context,
the backward pass and the optimizer step, so the training loop has one code path for every
mode: a disabled GradScaler is a no-op.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ampcore.errors import UnsupportedPrecisionError
from ampcore.registry import PrecisionEntry, load, precision_entry

if TYPE_CHECKING:
    from ampcore.workloads.base import PreparedWorkload


@dataclass(frozen=True)
class Precision:
    """What one precision mode means; immutable and device-independent."""

    id: str
    autocast_dtype: torch.dtype | None
    grad_scaler: bool
    tf32: bool
    description: str

    @classmethod
    def from_entry(cls, entry: PrecisionEntry) -> Precision:
        dtype = getattr(torch, entry.autocast) if entry.autocast else None
        return cls(entry.id, dtype, grad_scaler=entry.grad_scaler, tf32=entry.tf32,
                   description=entry.description)

    @property
    def is_mixed(self) -> bool:
        return self.autocast_dtype is not None

    def check_supported(self, device: torch.device) -> None:
        """Raise ``UnsupportedPrecisionError`` when ``device`` cannot run this mode."""
        reason = _unsupported_reason(self, torch.device(device))
        if reason:
            raise UnsupportedPrecisionError(self.id, str(device), reason)

    @contextlib.contextmanager
    def activate(self, device: torch.device | str) -> Iterator[ActivePrecision]:
        """Set this mode's backend flags on ``device`` and restore them afterwards."""
        device = torch.device(device)
        self.check_supported(device)
        with tf32_enabled(self.tf32):
            yield self.bind(device)

    def bind(self, device: torch.device) -> ActivePrecision:
        """This mode's runtime side on ``device`` (a mode with more to do subclasses it)."""
        return ActivePrecision(self, device)


class ActivePrecision:
    """A precision mode bound to a device for one run: owns autocast, scaling and stepping."""

    def __init__(self, precision: Precision, device: torch.device) -> None:
        self.precision = precision
        self.device = device
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision.grad_scaler)

    def prepare(self, workload: PreparedWorkload) -> PreparedWorkload:
        """Adapt a freshly built workload to the mode (float8 swaps its linear layers); the
        plain modes train it as built. May raise ``UnsupportedPrecisionError`` for a model
        the mode cannot take."""
        return workload

    def forward_context(self) -> contextlib.AbstractContextManager:
        dtype = self.precision.autocast_dtype
        # enabled=False still overrides any autocast a caller might have opened around us.
        return torch.autocast(self.device.type, dtype=dtype or torch.float32, enabled=dtype is not None)

    def backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()

    def optimizer_step(
        self, optimizer: torch.optim.Optimizer, max_grad_norm: float | None = None
    ) -> None:
        """Unscale and clip (when asked), step unless gradients are non-finite, update the scale."""
        if max_grad_norm is not None:
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(_parameters(optimizer), max_grad_norm)
        self.scaler.step(optimizer)
        self.scaler.update()

    def scaler_state(self) -> dict:
        """GradScaler health read once, after training (reading the scale synchronises)."""
        if not self.scaler.is_enabled():
            return {"enabled": False, "final_scale": None}
        return {"enabled": True, "final_scale": float(self.scaler.get_scale())}


def _parameters(optimizer: torch.optim.Optimizer) -> Iterable[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def get_precision(precision_id: str) -> Precision:
    """The runtime object of a registered precision mode (``ampcore.registry.PRECISIONS``)."""
    entry = precision_entry(precision_id)
    implementation = load(entry.implementation)
    return implementation.from_entry(entry)


# --- TF32 backend flags -------------------------------------------------------------------
# torch >= 2.9 has the ``fp32_precision`` API and refuses a mix of it with the legacy
# ``allow_tf32`` flags, so exactly one family is used, chosen by what this torch has.

def _has_fp32_precision_api() -> bool:
    return hasattr(torch.backends.cuda.matmul, "fp32_precision") and hasattr(
        torch.backends.cudnn, "conv"
    )


def tf32_flags() -> dict[str, bool]:
    """The effective TF32 settings for CUDA matmuls and cuDNN convolutions."""
    if _has_fp32_precision_api():
        matmul = torch.backends.cuda.matmul.fp32_precision
        if matmul == "none":  # inherits the global setting
            matmul = torch.backends.fp32_precision
        return {
            "matmul_tf32": matmul == "tf32",
            "cudnn_conv_tf32": torch.backends.cudnn.conv.fp32_precision == "tf32",
        }
    return {
        "matmul_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
        "cudnn_conv_tf32": bool(torch.backends.cudnn.allow_tf32),
    }


@contextlib.contextmanager
def tf32_enabled(enabled: bool) -> Iterator[None]:
    """Turn TF32 on or off for CUDA matmuls and cuDNN convolutions; restore on exit."""
    if _has_fp32_precision_api():
        matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
        saved = (matmul.fp32_precision, conv.fp32_precision)
        value = "tf32" if enabled else "ieee"
        matmul.fp32_precision = value
        conv.fp32_precision = value
        try:
            yield
        finally:
            matmul.fp32_precision, conv.fp32_precision = saved
    else:
        saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled
        try:
            yield
        finally:
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


# --- device support ---------------------------------------------------------------------

def _unsupported_reason(precision: Precision, device: torch.device) -> str | None:
    if device.type == "cuda" and not torch.cuda.is_available():
        return "CUDA is not available on this machine"
    if precision.tf32:
        if device.type != "cuda":
            return "TF32 exists only on NVIDIA GPUs"
        major, minor = torch.cuda.get_device_capability(device)
        if major < 8:
            return f"TF32 needs compute capability 8.0 or newer; this GPU has {major}.{minor}"
    dtype = precision.autocast_dtype
    if dtype is None:
        return None
    if device.type == "cuda" and dtype == torch.bfloat16 and not _cuda_bf16_native(device):
        name = torch.cuda.get_device_name(device)
        return f"{name} has no native bfloat16 support"
    if not _autocast_runs(device, dtype):
        return f"autocast to {dtype} is not available for {device.type} in torch {torch.__version__}"
    return None


def _cuda_bf16_native(device: torch.device) -> bool:
    with torch.cuda.device(device):
        try:
            return torch.cuda.is_bf16_supported(including_emulation=False)
        except TypeError:  # torch without the keyword
            return torch.cuda.is_bf16_supported()


def _autocast_runs(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether a matmul under autocast on ``device`` really produces ``dtype``."""
    try:
        with warnings.catch_warnings():
            # torch warns and silently disables autocast for unsupported dtypes.
            warnings.simplefilter("ignore")
            with torch.autocast(device.type, dtype=dtype):
                x = torch.ones(2, 2, device=device)
                return (x @ x).dtype == dtype
    except (RuntimeError, ValueError):
        return False
