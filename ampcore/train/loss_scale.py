"""Loss-scale health of a GradScaler: its configuration, and how its scale moved over the
timed training (growths, backoffs, the minimum).

Captured steps are replayed from CUDA graphs, so nothing here reads a value back inside a
step: each update compares the scale with its value before, into small device tensors
allocated on the first (eager) step and reset in place afterwards, never reallocated (a
replay writes to the addresses it captured). They are read once, after training.
"""

from __future__ import annotations

import torch

from ampcore.train.result import SCALER_CONFIG, SCALER_HEALTH


def scaler_config(scaler: torch.amp.GradScaler) -> dict:
    """Whether scaling is on and how it moves, read before the first step (``state_dict``'s
    scale is then the initial scale, read without a sync). Off: None for the rest."""
    if not scaler.is_enabled():
        return {"enabled": False, **dict.fromkeys(SCALER_CONFIG)}
    return {"enabled": True, "init_scale": float(scaler.state_dict()["scale"]),
            "growth_factor": float(scaler.get_growth_factor()),
            "backoff_factor": float(scaler.get_backoff_factor()),
            "growth_interval": int(scaler.get_growth_interval())}


def scale_tensor(scaler: torch.amp.GradScaler) -> torch.Tensor | None:
    """The device tensor holding the scale; None until the first ``scale()`` creates it.

    Private (``_scale``) because the public ``get_scale()`` copies the value to the host, a
    sync that a captured step cannot contain."""
    return scaler._scale


class ScaleHealth:
    """Counts, on the device, the growths and backoffs of a scaler's scale and its minimum.

    ``optimizer_step`` calls ``before_update`` and ``after_update`` around
    ``scaler.update()``; ``reset`` starts the count afresh (in place) after the trainer
    restored the scaler; ``read`` syncs once, after training."""

    def __init__(self, scaler: torch.amp.GradScaler) -> None:
        self.config = scaler_config(scaler)
        self._previous: torch.Tensor | None = None  # the scale before this update
        self._minimum: torch.Tensor | None = None
        self._growths: torch.Tensor | None = None
        self._backoffs: torch.Tensor | None = None

    def before_update(self, scaler: torch.amp.GradScaler) -> None:
        if not scaler.is_enabled():
            return
        scale = scale_tensor(scaler)
        if self._previous is None:  # the first step, always eager: allocating is allowed
            self._previous = scale.detach().clone()
            self._minimum = scale.detach().clone()
            self._growths = torch.zeros_like(scale, dtype=torch.int64)
            self._backoffs = torch.zeros_like(scale, dtype=torch.int64)
        else:
            self._previous.copy_(scale)

    def after_update(self, scaler: torch.amp.GradScaler) -> None:
        if not scaler.is_enabled() or self._previous is None:
            return
        scale = scale_tensor(scaler)
        self._growths.add_(scale > self._previous)
        self._backoffs.add_(scale < self._previous)
        torch.minimum(self._minimum, scale, out=self._minimum)

    def reset(self, scaler: torch.amp.GradScaler) -> None:
        """Count from the scaler's current scale again, writing into the same tensors."""
        if self._minimum is None:
            return
        # Outside the timed steps: get_scale() may sync here (the scale tensor may not exist
        # yet when the warm-up abandoned a step and replaced the scaler).
        self._minimum.fill_(scaler.get_scale())
        self._growths.zero_()
        self._backoffs.zero_()

    def read(self, scaler: torch.amp.GradScaler) -> dict:
        """The configuration and what the scale did since the first step or the last reset;
        off: None for everything but ``enabled``. Synchronises."""
        if not self.config["enabled"]:
            return {**self.config, **dict.fromkeys(SCALER_HEALTH)}
        final = float(scaler.get_scale())
        if self._minimum is None:  # nothing stepped: the scale never moved
            return {**self.config, "final_scale": final, "min_scale": final, "growths": 0,
                    "backoffs": 0}
        return {**self.config, "final_scale": final, "min_scale": float(self._minimum.min()),
                "growths": int(self._growths.sum()), "backoffs": int(self._backoffs.sum())}
