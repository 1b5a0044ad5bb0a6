"""Who else is training on this device: a lock file per device, held while a run trains, so a
second ampcore process on the same device is told that both runs' timings are disturbed.

A warning, not a refusal: on a shared runner the user may accept it, and CI machines have one
tenant. The lock is advisory (``filelock``), released when the run ends or its process dies.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout


class SharedDeviceWarning(UserWarning):
    """Another ampcore process was training on the same device when this run started."""


def lock_path(device: str) -> Path:
    """The lock file of ``device`` ("cuda:0", "cpu"), in the machine's temporary directory
    (``AMPCORE_LOCK_DIR`` overrides it, e.g. for a container that shares the device only)."""
    root = Path(os.environ.get("AMPCORE_LOCK_DIR") or tempfile.gettempdir())
    return root / f"ampcore-training-{device.replace(':', '-')}.lock"


@contextlib.contextmanager
def sole_tenant(device: str, what: str) -> Iterator[bool]:
    """Hold ``device``'s lock while the body trains; yields whether it was free. When another
    process holds it, warn (naming ``what`` and the lock) and train anyway."""
    lock = FileLock(lock_path(device))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        warnings.warn(f"{what}: another ampcore process is training on {device} (lock "
                      f"{lock.lock_file}); both runs' timings are disturbed: run one at a time "
                      "on a device to measure it", SharedDeviceWarning, stacklevel=3)
        yield False
        return
    try:
        yield True
    finally:
        lock.release()
