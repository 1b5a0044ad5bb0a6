"""Progress on stderr while a run trains: one bar per epoch, advanced round by round.

Whether to draw them is ``ampcore.core.quiet.bars_wanted``, the one rule for every bar:
stderr is a terminal and ``--no-progress`` was not given, so redirected logs and pipes get
none. The process that owns the terminal decides (``ampcore run``); worker processes, whose
stderr is a pipe to it, draw bars when told to."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ampcore.train.plan import StepPlan


class EpochBars:
    """One progress bar per epoch on stderr, advanced as each round's checks finish; an
    epoch's bar closes showing ``accuracy()``, the evaluation that ended it."""

    def __init__(self, plan: StepPlan, name: str, epochs: int,
                 accuracy: Callable[[], float]) -> None:
        self.plan, self.name, self.epochs, self.accuracy = plan, name, epochs, accuracy
        self.bar = self._open(0)

    def _open(self, epoch: int) -> Any:
        from tqdm import tqdm

        plan = self.plan
        steps = sum(len(r) for r, e in zip(plan.rounds, plan.epoch_of_round) if e == epoch)
        desc = f"{self.name} epoch {epoch + 1}/{self.epochs}"
        return tqdm(total=steps, file=sys.stderr, unit="step", desc=desc)

    def round_checked(self, r: int) -> None:
        plan = self.plan
        self.bar.update(len(plan.rounds[r]))
        if r in plan.epoch_ends:
            self.bar.set_postfix(acc=f"{self.accuracy():.3f}")
            self.bar.close()
            if r + 1 < len(plan.rounds):
                self.bar = self._open(plan.epoch_of_round[r + 1])

    def close(self) -> None:
        self.bar.close()  # tqdm closes once; a second close does nothing
