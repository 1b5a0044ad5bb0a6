"""The runtime side of a precision mode (``ampcore.core.registry.Precision``) on a device.

A mode is activated with ``with activate(precision, device) as amp:``. Inside, the TF32
backend flags are the mode's own (restored on exit), and ``amp``, an instance of the mode's
``implementation`` class, owns the autocast context, the backward pass and the optimizer step,
so the training loop has one code path for every mode: a disabled GradScaler is a no-op.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import torch

from ampcore.core.errors import UnsupportedPrecisionError
from ampcore.core.entries import Precision
from ampcore.measure.environment import _has_fp32_precision_api
from ampcore.train.loss_scale import ScaleHealth

if TYPE_CHECKING:
    from ampcore.workloads.base import PreparedWorkload


def autocast_dtype(precision: Precision) -> torch.dtype | None:
    """The torch dtype the mode autocasts to; None: it does not autocast."""
    return getattr(torch, precision.autocast) if precision.autocast else None


def check_supported(precision: Precision, device: torch.device | str) -> None:
    """Raise ``UnsupportedPrecisionError`` when ``device`` cannot run the mode."""
    device = torch.device(device)
    reason = (_unsupported_reason(precision, device)
              or _implementation(precision).unsupported_reason(precision, device))
    if reason:
        raise UnsupportedPrecisionError(precision.id, str(device), reason)


@contextlib.contextmanager
def activate(precision: Precision, device: torch.device | str) -> Iterator[ActivePrecision]:
    """Set the mode's backend flags, bind it to ``device``, and restore the flags afterwards."""
    device = torch.device(device)
    check_supported(precision, device)
    with tf32_enabled(precision.tf32):
        yield _implementation(precision)(precision, device)


def _implementation(precision: Precision) -> type[ActivePrecision]:
    return precision.implementation_class()


class ActivePrecision:
    """A precision mode bound to a device for one run: owns autocast, scaling and stepping.
    A mode with more to do (float8) subclasses it and names the subclass as its
    ``implementation``."""

    def __init__(self, precision: Precision, device: torch.device) -> None:
        self.precision = precision
        self.device = device
        self.dtype = autocast_dtype(precision)
        self.scaler = torch.amp.GradScaler(device.type, enabled=precision.grad_scaler)
        self.scale_health = ScaleHealth(self.scaler)  # reads the configuration: no step yet

    @classmethod
    def unsupported_reason(cls, precision: Precision, device: torch.device) -> str | None:
        """Why ``device`` cannot run the mode, beyond the checks every mode gets; None: it can."""
        return None

    def prepare(self, workload: PreparedWorkload) -> PreparedWorkload:
        """Adapt a freshly built workload to the mode (float8 swaps its linear layers); the
        plain modes train it as built. May raise ``UnsupportedPrecisionError`` for a model
        the mode cannot take."""
        return workload

    def abandon_step(self) -> None:
        """Forget a step that stopped half-way: a GradScaler that unscaled for it would refuse
        the next step. A new scaler with the old one's state (nothing has captured it yet)."""
        state = self.scaler.state_dict()
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.scaler.is_enabled())
        if state:
            self.scaler.load_state_dict(state)

    def forward_context(self) -> contextlib.AbstractContextManager:
        # enabled=False still overrides any autocast a caller might have opened around us.
        return torch.autocast(self.device.type, dtype=self.dtype or torch.float32,
                              enabled=self.dtype is not None)

    def backward(self, loss: torch.Tensor) -> None:
        self.scaler.scale(loss).backward()

    def optimizer_step(
        self, optimizer: torch.optim.Optimizer, max_grad_norm: float | None = None
    ) -> None:
        """Unscale and clip (when asked), step unless gradients are non-finite, update the
        scale, counting on the device how it moved."""
        if max_grad_norm is not None:
            self.scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(_parameters(optimizer), max_grad_norm)
        self.scaler.step(optimizer)
        self.scale_health.before_update(self.scaler)
        self.scaler.update()
        self.scale_health.after_update(self.scaler)

    def restart_scale_health(self) -> None:
        """Count the scale's moves from now on (after the warm-up's state was restored)."""
        self.scale_health.reset(self.scaler)

    def scaler_state(self) -> dict:
        """GradScaler configuration and health (``ampcore.train.loss_scale``), read once after
        training (reading the scale synchronises)."""
        return self.scale_health.read(self.scaler)


def _parameters(optimizer: torch.optim.Optimizer) -> Iterable[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]


# --- TF32 backend flags: read by ``measure.environment.tf32_flags`` ---------------------

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
    dtype = autocast_dtype(precision)
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
