"""Progress bars for the slow history commands (report, calibrate): tqdm on stderr, only when
stderr is a terminal and ``--no-progress`` was not given (``ampcore.core.quiet.bars_wanted``,
the callers' rule), so logs and pipes stay clean."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["track"]

T = TypeVar("T")


def track(items: Iterable[T], description: str, enabled: bool,
          total: int | None = None) -> Iterator[T] | Iterable[T]:
    """``items``, with a progress bar on stderr while they are consumed when ``enabled``."""
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=description, total=total, file=sys.stderr, leave=False,
                dynamic_ncols=True)
