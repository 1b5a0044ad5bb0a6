"""Errors a user can act on. The CLI prints their message without a traceback."""

from __future__ import annotations


class AmpcoreError(Exception):
    """Base class: the message says what went wrong and what to do about it."""

    exit_code = 1


class UsageError(AmpcoreError):
    """An unknown id or an invalid combination of options."""

    exit_code = 2


class UnsupportedPrecisionError(AmpcoreError):
    """The device cannot run this precision mode."""

    def __init__(self, precision: str, device: str, reason: str) -> None:
        self.precision = precision
        self.device = device
        self.reason = reason
        super().__init__(f"precision {precision!r} cannot run on device {device!r}: {reason}")


class DeviceUnavailableError(AmpcoreError):
    """A device was asked for that this machine does not have."""


class DataError(AmpcoreError):
    """Training data is missing, unreadable or has the wrong shape."""


class DataSizeError(DataError, ValueError):
    """A run asks for more samples than the data set holds. Also a ValueError, which callers
    of the smoke data caught before it was an AmpcoreError."""


class WeightsError(AmpcoreError):
    """A model source cannot provide the weights the run asked for."""


class UncapturableStepError(AmpcoreError):
    """A training step cannot be captured in a CUDA graph, and capture was required."""


class NonFiniteLossError(AmpcoreError):
    """The loss became NaN or infinite in a mode that has no GradScaler to absorb it."""

    def __init__(self, workload: str, precision: str, step: int, value: float) -> None:
        self.step = step
        super().__init__(
            f"{workload}/{precision}: loss is {value} at optimizer step {step} (0-based); "
            "training stopped. Lower the learning rate, enable --max-grad-norm, or check the data."
        )


class DeviceOutOfMemoryError(AmpcoreError):
    """The device ran out of memory; the message names the configuration that did it."""


class RegistrationError(UsageError):
    """A workload or precision mode that cannot be registered: a field of the wrong type, an id
    registered twice, or a plugin (entry point) that fails to load."""


class WorkloadContractError(AmpcoreError):
    """A workload's build returned something the training loop cannot use (``PreparedWorkload``
    fields of the wrong type or on the wrong device)."""
