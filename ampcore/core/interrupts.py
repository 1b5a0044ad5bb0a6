"""SIGTERM handled as Ctrl-C while ampcore trains.

A CI job that is cancelled or runs out of time gets SIGTERM, whose default action ends the
process at once: the runs that finished are lost, and a launcher's child processes (started in
sessions of their own) are orphaned. Raised as ``Terminated``, a ``KeyboardInterrupt``, it
takes Ctrl-C's path instead: the finished runs are saved marked partial, children are stopped.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived; handled wherever Ctrl-C is."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated(f"terminated by signal {signal.Signals(signum).name}")


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises ``Terminated`` in the main thread; the previous
    handler is restored after. Elsewhere than the main thread (where Python cannot set
    handlers) it changes nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:  # None: a handler set outside Python, which cannot be put back; the default can
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
