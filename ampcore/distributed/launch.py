"""The parent side of a distributed run: check what can be checked here, start torchrun on
``ampcore.distributed.worker``, stream its output, and turn its outcome into a ``RunResult``
or a ``DistributedRunError``.

Safety: workers never get NVLink multicast (``worker_environment`` turns it off unless the
environment already sets the variables). Collectives have a timeout and ``timeout_s`` bounds
the whole launch, so a broken run ends instead of hanging. Failures come back through the
elastic error files described in ``ampcore.distributed.protocol``.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from ampcore.distributed.merge import RankFailure, failure_message
from ampcore.distributed.protocol import (
    DEFAULT_COLLECTIVE_TIMEOUT_S, LAUNCHER_ERROR_FILE, LOG_DIR, RESULT_FILE, read_failures,
    write_spec,
)
from ampcore.errors import AmpcoreError, DeviceUnavailableError, UsageError
from ampcore.precision import get_precision
from ampcore.profiles import get_profile
from ampcore.result import RunResult, read_json
from ampcore.spec import RunSpec, resolve_device
from ampcore.workloads import get_workload

WORKER_MODULE = "ampcore.distributed.worker"
# NVLink multicast (NVLS) can put a host's GPUs, which others may share, out of service: the
# workers never get it unless whoever started us set these variables on purpose.
NVLINK_MULTICAST_OFF = {
    "NCCL_NVLS_ENABLE": "0",
    "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
    "NVSHMEM_DISABLE_NVLS": "1",
}
_OUTPUT_TAIL_CHARS = 20_000


class DistributedRunError(AmpcoreError):
    """A distributed run failed; the message names the failing rank(s) and exit code."""

    def __init__(self, message: str, failures: Sequence[RankFailure] = (),
                 exit_code: int = 1) -> None:
        super().__init__(message)
        self.failures = list(failures)
        self.exit_code = exit_code


def worker_environment(base: Mapping[str, str], nproc: int, cpu_count: int,
                       cuda_graphs: bool = False) -> dict[str, str]:
    """The environment for the workers: ``base`` with NVLink multicast off and a share of the
    CPU threads each.

    A multicast variable that ``base`` sets (non-empty) is kept as it is; an unset or empty one
    gets its safe value from ``NVLINK_MULTICAST_OFF``. ``OMP_NUM_THREADS`` defaults to an equal
    share of the cores, so N processes don't oversubscribe them (torchrun would pick 1).
    """
    env = dict(base)
    for name, safe in NVLINK_MULTICAST_OFF.items():
        if not env.get(name):
            env[name] = safe
    if not env.get("OMP_NUM_THREADS"):
        env["OMP_NUM_THREADS"] = str(max(1, cpu_count // max(1, nproc)))
    if cuda_graphs and not env.get("TORCH_NCCL_ASYNC_ERROR_HANDLING"):
        # PyTorch's recipe for capturing DDP's backward: NCCL's error watchdog off.
        env["TORCH_NCCL_ASYNC_ERROR_HANDLING"] = "0"
    return env


def cpu_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1


def check_nproc(nproc: int, device: str) -> None:
    """Raise ``UsageError`` (a count beyond the cores or visible GPUs: exit 2) or
    ``DeviceUnavailableError`` (no CUDA at all) unless ``nproc`` processes can run on ``device``
    (one GPU each on CUDA, at most one per core on the CPU)."""
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise UsageError(f"--nproc must be a whole number of processes, at least 1; got {nproc!r}")
    kind = torch.device(device)
    if kind.type == "cpu":
        cores = cpu_cores()
        if nproc > cores:  # more gloo processes than cores time the scheduler, not the work
            raise UsageError(
                f"--nproc {nproc} on cpu starts {nproc} processes, but {cores} CPU "
                f"core{'' if cores == 1 else 's'} {'is' if cores == 1 else 'are'} available "
                f"to this process; use --nproc {cores} or fewer")
        return
    if kind.type != "cuda":
        raise UsageError(f"--nproc runs on --device cuda (nccl) or cpu (gloo); got {device!r}")
    if kind.index is not None:
        raise UsageError(f"--nproc {nproc} uses one GPU per process (rank r on cuda:r); "
                         f"give --device cuda, not {device!r}, and choose GPUs with "
                         "CUDA_VISIBLE_DEVICES")
    if not torch.cuda.is_available():
        raise DeviceUnavailableError(
            f"--nproc {nproc} on cuda: CUDA is not available here (torch {torch.__version__}); "
            "use --device cpu to run the processes on the CPU with gloo")
    visible = torch.cuda.device_count()
    if nproc > visible:
        shown = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
        raise UsageError(
            f"--nproc {nproc} needs {nproc} GPUs, one per process, but {visible} "
            f"{'is' if visible == 1 else 'are'} visible (CUDA_VISIBLE_DEVICES={shown}); "
            f"use --nproc {visible} or fewer")


def launch_command(nproc: int, out_dir: Path, progress: bool = False,
                   collective_timeout_s: float = DEFAULT_COLLECTIVE_TIMEOUT_S,
                   python: str = sys.executable) -> list[str]:
    """The torchrun command line that runs ``nproc`` workers on ``out_dir``.

    ``--log-dir`` puts the per-rank error files under ``out_dir`` (not in a temporary
    directory torchrun would leave behind), where ``read_failures`` finds them."""
    command = [python, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={nproc}", "--max-restarts=0", "--monitor-interval=0.5",
               f"--log-dir={out_dir / LOG_DIR}",
               "-m", WORKER_MODULE, "--out", str(out_dir),
               "--collective-timeout", str(collective_timeout_s)]
    if progress:
        command.append("--progress")
    return command


def check_before_launch(spec: RunSpec) -> None:
    """What a parent can check of ``spec`` before it starts processes to train it (ids,
    profile, the precision on the device): the usual errors, at no process start's cost."""
    get_workload(spec.workload)
    get_profile(spec.profile)
    get_precision(spec.precision).check_supported(resolve_device(spec.device))


def run_distributed(spec: RunSpec, nproc: int, progress: bool = False, *,
                    collective_timeout_s: float = DEFAULT_COLLECTIVE_TIMEOUT_S,
                    timeout_s: float | None = None) -> RunResult:
    """Train ``spec`` with DDP on ``nproc`` local processes; one merged ``RunResult``.

    ``spec.device`` is ``cuda`` (one GPU per process, rank r on cuda:r) or ``cpu``.
    Workers' output streams to stderr as it comes. ``collective_timeout_s`` bounds each wait
    for the other ranks; ``timeout_s`` (None: no limit) bounds the whole launch.
    Raises ``DistributedRunError`` when a worker fails or the launch times out.
    """
    check_before_launch(spec)
    check_nproc(nproc, spec.device)
    what = f"distributed run of {spec.workload}/{spec.precision} on {nproc} processes"
    with tempfile.TemporaryDirectory(prefix="ampcore-ddp-") as tmp:
        out = Path(tmp)
        write_spec(spec, out)
        env = worker_environment(os.environ, nproc, os.cpu_count() or 1,
                                 cuda_graphs=spec.cuda_graphs)
        # torchrun's own error file: where it copies the first failed rank's error file.
        # (Each worker gets its own path from torchrun, which overrides this one.)
        env["TORCHELASTIC_ERROR_FILE"] = str(out / LAUNCHER_ERROR_FILE)
        command = launch_command(nproc, out, progress, collective_timeout_s)
        returncode, output = stream_process(command, env, timeout_s, what)
        recorded, root = read_failures(out)
        if returncode != 0 or recorded or root or not (out / RESULT_FILE).exists():
            raise _run_error(what, returncode, recorded, root, output)
        return read_json(out / RESULT_FILE)[0]


def _run_error(what: str, returncode: int, recorded: list[RankFailure],
               root: RankFailure | None, output: str) -> DistributedRunError:
    message, failures = failure_message(what, returncode, recorded, output, root)
    # The first failure's code: a worker's UsageError exits 2 from the CLI, as it would.
    code = failures[0].exit_code if failures and failures[0].exit_code > 0 else 1
    return DistributedRunError(message, failures, exit_code=code)


def stream_process(command: list[str], env: dict[str, str], timeout_s: float | None,
                   what: str, timeout_error: type[AmpcoreError] = DistributedRunError,
                   ) -> tuple[int, str]:
    """Run ``command`` (torchrun, or a fresh worker process), streaming its output to stderr;
    (return code, the output's tail). A timeout stops it and raises ``timeout_error``."""
    # Its own session: on a timeout or an interrupt, we stop torchrun and every worker at once.
    proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    tail = [""]  # the last _OUTPUT_TAIL_CHARS of the output, for a failure without error files
    reader = threading.Thread(target=_pump, args=(proc, tail), name="ampcore-ddp-output",
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
    """SIGTERM torchrun's process group (it stops its workers), then SIGKILL what is left."""
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
