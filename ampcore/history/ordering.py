"""The order of saved runs, oldest first: by their number within a storage, by date between
storages.

pytest-benchmark names the files of one storage directory ``NNNN_...json``, NNNN counting up
with every save: that number is the save order, whatever a runner's clock wrote into
``datetime``. A date in the future or one earlier than an earlier-numbered run's is a warning
naming the file, and does not move the run. Runs of several directories (and files without a
number) are interleaved by date, each directory's runs keeping their numbered order; a run
whose date cannot be trusted takes the date of the last trusted run before it.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Protocol, TypeVar

from ampcore.history.errors import Problem


class Saved(Protocol):
    """What ordering reads of a run (``storage.Run``, which imports this module)."""

    @property
    def path(self) -> Path: ...

    @property
    def datetime(self) -> datetime | None: ...


Run = TypeVar("Run", bound=Saved)

NUMBERED = re.compile(r"^(\d+)_")
# A runner's clock may run a little ahead of the reader's; a date further ahead is skew.
FUTURE_SLACK = timedelta(hours=1)
_OLDEST = datetime.min.replace(tzinfo=timezone.utc)


def run_number(path: Path) -> int | None:
    """The save number of a file named ``NNNN_...json``, None for any other name."""
    match = NUMBERED.match(path.name)
    return int(match.group(1)) if match else None


def order_runs(runs: Sequence[Run],
               now: datetime | None = None) -> tuple[list[Run], list[Problem]]:
    """``runs`` oldest first, and a warning for each date that disagrees with the order."""
    now = now or datetime.now(timezone.utc)
    problems: list[Problem] = []
    sequences: list[list[tuple[datetime, str, Run]]] = []
    for numbered in numbered_groups(runs).values():
        sequences.append(_placed(numbered, now, problems))
    for run in runs:
        if run_number(run.path) is None:
            if run.datetime is not None and run.datetime > now + FUTURE_SLACK:
                problems.append(_future(run, "ordered by that date"))
            sequences.append([(run.datetime or _OLDEST, str(run.path), run)])
    # heapq.merge keeps each sequence's own order: a directory's runs stay in number order
    merged = heapq.merge(*sequences, key=lambda item: item[:2])
    return [run for _, _, run in merged], problems


def numbered_groups(runs: Sequence[Run]) -> dict[Path, list[Run]]:
    """The numbered runs of each directory, in number order."""
    groups: dict[Path, list[Run]] = {}
    for run in runs:
        if run_number(run.path) is not None:
            groups.setdefault(run.path.parent.resolve(), []).append(run)
    for group in groups.values():
        group.sort(key=lambda r: (run_number(r.path), r.path.name))
    return groups


def undated_newest(runs: Sequence[Run]) -> list[Run]:
    """The newest-numbered run of each directory when it has no valid ``datetime``: it cannot
    be placed against other storages' runs, nor its date checked."""
    return [group[-1] for group in numbered_groups(runs).values() if group[-1].datetime is None]


def _placed(numbered: list[Run], now: datetime,
            problems: list[Problem]) -> list[tuple[datetime, str, Run]]:
    """Each run with the date it is merged by: its own, or the last trusted one before it."""
    placed = []
    trusted, trusted_run = _OLDEST, None
    for run in numbered:
        when = run.datetime
        if when is not None and when > now + FUTURE_SLACK:
            problems.append(_future(run, f"ordered by its number {run_number(run.path)}"))
        elif when is not None and trusted_run is not None and when < trusted:
            problems.append(Problem(run.path, (
                f"numbered after {trusted_run.path.name} but dated earlier ({when.isoformat()} "
                f"< {trusted.isoformat()}); ordered by its number (a clock changed?)"), "warning"))
        elif when is not None:
            trusted, trusted_run = when, run
        placed.append((trusted, str(run.path), run))
    return placed


def _future(run: Run, how: str) -> Problem:
    return Problem(run.path, f"'datetime' {run.datetime.isoformat()} is in the future (a "
                   f"runner's clock ahead?); {how}", "warning")
