"""The parent side of a distributed run: check what can be checked here, start torchrun on
``ampcore.launch.worker``, stream its output, and turn its outcome into a ``RunResult``
or a ``DistributedRunError``.

Safety: workers never get NVLink multicast (``worker_environment`` turns it off unless the
environment already sets the variables). Collectives have a timeout and ``timeout_s`` bounds
the whole launch, so a broken run ends instead of hanging. Failures come back through the
elastic error files described in ``ampcore.launch.protocol``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from ampcore.core.errors import AmpcoreError, DeviceUnavailableError, UsageError
from ampcore.launch.merge import failure_message
from ampcore.launch.processes import check_before_launch, stream_process
from ampcore.launch.protocol import (
    DEFAULT_COLLECTIVE_TIMEOUT_S, LAUNCHER_ERROR_FILE, LOG_DIR, WorkerFailure, read_failures,
    read_result, write_spec,
)
from ampcore.train.result import RunResult
from ampcore.train.spec import RunSpec

WORKER_MODULE = "ampcore.launch.worker"
# NVLink multicast (NVLS) can put a host's GPUs, which others may share, out of service: the
# workers never get it unless whoever started us set these variables on purpose.
NVLINK_MULTICAST_OFF = {
    "NCCL_NVLS_ENABLE": "0",
    "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
    "NVSHMEM_DISABLE_NVLS": "1",
}


class DistributedRunError(AmpcoreError):
    """A distributed run failed; the message names the failing rank(s) and exit code."""

    def __init__(self, message: str, failures: Sequence[WorkerFailure] = (),
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
        returncode, output = stream_process(command, env, timeout_s, what,
                                            timeout_error=DistributedRunError)
        recorded, root = read_failures(out)
        result = read_result(out)
        if returncode != 0 or recorded or root or result is None:
            raise _run_error(what, returncode, recorded, root, output)
        return result


def _run_error(what: str, returncode: int, recorded: list[WorkerFailure],
               root: WorkerFailure | None, output: str) -> DistributedRunError:
    message, failures = failure_message(what, returncode, recorded, output, root)
    # The first failure's code: a worker's UsageError exits 2 from the CLI, as it would.
    code = failures[0].exit_code if failures and failures[0].exit_code > 0 else 1
    return DistributedRunError(message, failures, exit_code=code)
