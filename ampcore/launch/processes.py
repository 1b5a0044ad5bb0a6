"""The launchers' parent side, shared by both (torchrun for DDP, fresh processes): check a spec
before starting anything, then run one command in its own session, streaming its output, and
stop it whole on a timeout or an interrupt."""

from __future__ import annotations

import codecs
import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable

from ampcore.core.errors import AmpcoreError
from ampcore.core.profiles import get_profile
from ampcore.core.registry import get_precision
from ampcore.train.precision import check_supported
from ampcore.train.spec import RunSpec, resolve_device
from ampcore.workloads import get_workload

_OUTPUT_TAIL_CHARS = 20_000


def check_before_launch(spec: RunSpec) -> None:
    """What a parent can check of ``spec`` before it starts processes to train it (ids,
    profile, the precision on the device): the usual errors, at no process start's cost."""
    get_workload(spec.workload)
    get_profile(spec.profile)
    check_supported(get_precision(spec.precision), resolve_device(spec.device))


def stream_process(command: list[str], env: dict[str, str], timeout_s: float | None, what: str,
                   timeout_error: Callable[[str], AmpcoreError]) -> tuple[int, str]:
    """Run ``command``, streaming its output to stderr; (return code, the output's tail).
    A timeout stops it, and every process it started, and raises ``timeout_error(message)``;
    so does Ctrl-C, and SIGTERM where ``ampcore.core.interrupts`` makes it one."""
    # Its own session: on a timeout or an interrupt, the command and its children stop at once.
    proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    tail = [""]  # the last _OUTPUT_TAIL_CHARS of the output, for a failure without error files
    reader = threading.Thread(target=_pump, args=(proc, tail), name="ampcore-process-output",
                              daemon=True)
    reader.start()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _stop(proc)
        raise timeout_error(f"{what} timed out after {timeout_s:g} s; every process was "
                            "stopped") from None
    except BaseException:
        _stop(proc)
        raise
    finally:
        # A worker's own children (compile workers) can hold the pipe open: don't wait on them.
        reader.join(timeout=10)
        proc.stdout.close()
    return proc.returncode, tail[0]


def _pump(proc: subprocess.Popen, tail: list[str]) -> None:
    """Copy ``proc``'s output to stderr as it comes, keeping its tail in ``tail[0]``."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    # os.read returns what is there: progress bars ('\r', no newline) show as they come.
    with contextlib.suppress(OSError, ValueError):  # the pipe closed under us: done
        while chunk := os.read(proc.stdout.fileno(), 65536):
            text = decoder.decode(chunk)
            sys.stderr.write(text)
            sys.stderr.flush()
            tail[0] = (tail[0] + text)[-_OUTPUT_TAIL_CHARS:]


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the command's process group (torchrun stops its workers on it), then SIGKILL
    what is left."""
    for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
