"""Data-parallel runs: one workload trained with DistributedDataParallel by N local processes.

``run_distributed(spec, nproc)`` starts ``python -m torch.distributed.run --standalone
--nproc-per-node N -m ampcore.distributed`` and returns one ``RunResult`` for the whole run.

Semantics, chosen so that N processes are N single-device runs working as one:

- Batch: every process trains the profile's batch size (64 on seed), so the global batch is
  batch x N (weak scaling, the usual DDP recipe). Each GPU does the work of one single-GPU
  step, which makes ``scaling_efficiency`` (samples/s at N over N x samples/s at 1) the
  measure of what distribution costs. The learning rate is not rescaled; the LR schedule
  follows the global step plan.
- Data: every rank holds the whole data set on its device, as a single process does, and it
  is rank 0's (``broadcast_data``): a builder need not be deterministic across processes (the
  smoke tokenizer is not). The step plan is the single-process plan for the global batch (the
  same seed and shuffle), and rank r trains its DistributedSampler-style share of each global
  batch (``ampcore.loop.shard_batch``).
- Evaluation: every rank evaluates the whole test split with its replica (replicas are equal
  after every all-reduced step, and DDP's buffer broadcast makes each forward a collective,
  so all ranks must run it); rank 0's evaluation is reported.
- Result: gathered to rank 0 and merged into one ``RunResult`` (``merge_rank_results``): a
  round's time is the slowest rank's (every round starts at a barrier), ``samples_per_round``
  counts global samples (not the padding of an uneven last batch), a step's train loss is the
  mean of the ranks' losses (the global batch mean: shares are equal), and
  ``peak_memory_bytes`` is the largest rank's. ``details`` adds ``world_size``, ``backend``,
  the per-rank peak memory, GradScaler final scale and skipped steps, and
  ``scaler_consistent``: whether every rank's scaler made the same decisions (all-reduced
  gradients make them so; a difference would be a bug worth seeing).
- Backend: nccl on CUDA, rank r on ``cuda:LOCAL_RANK``; gloo on the CPU.
- Safety: workers never get NVLink multicast: ``worker_environment`` turns it off unless the
  environment already sets the variables.
- Failures: a rank that raises records its error next to the result and exits at once;
  torchrun then stops the other ranks, and the parent raises ``DistributedRunError`` naming
  the rank, its exit code and the error. Collectives have a timeout and ``timeout_s`` bounds
  the whole launch, so a broken run ends instead of hanging.
"""

from __future__ import annotations

import argparse
import codecs
import contextlib
import dataclasses
import datetime
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from ampcore.errors import AmpcoreError, DataError, DeviceUnavailableError, UsageError
from ampcore.precision import get_precision
from ampcore.profiles import get_profile
from ampcore.result import RunResult, read_json, write_json
from ampcore.run import Experiment, RunSpec, resolve_device
from ampcore.workloads import get_workload
from ampcore.workloads.base import PreparedWorkload

SPEC_FILE = "spec.json"
RESULT_FILE = "result.json"
FAILURE_SUFFIX = ".failure.json"
DEFAULT_COLLECTIVE_TIMEOUT_S = 600.0
# NVLink multicast (NVLS) can put a host's GPUs, which others may share, out of service: the
# workers never get it unless whoever started us set these variables on purpose.
NVLINK_MULTICAST_OFF = {
    "NCCL_NVLS_ENABLE": "0",
    "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
    "NVSHMEM_DISABLE_NVLS": "1",
}
_OUTPUT_TAIL_CHARS = 20_000


# --- pure helpers -------------------------------------------------------------------------

def scaling_efficiency(samples_per_s_n: float, samples_per_s_1: float, n: int) -> float:
    """Throughput on ``n`` processes as a fraction of ``n`` x the single-process throughput
    (1.0 is linear scaling)."""
    if n < 1:
        raise UsageError(f"scaling efficiency needs at least 1 process; got n={n}")
    if not samples_per_s_1 > 0:
        raise UsageError(f"single-process throughput must be positive; got {samples_per_s_1}")
    return samples_per_s_n / (n * samples_per_s_1)


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


def check_nproc(nproc: int, device: str) -> None:
    """Raise ``UsageError``/``DeviceUnavailableError`` unless ``nproc`` processes can run on
    ``device`` (one GPU each on CUDA)."""
    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise UsageError(f"--nproc must be a whole number of processes, at least 1; got {nproc!r}")
    kind = torch.device(device)
    if kind.type == "cuda":
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
            raise DeviceUnavailableError(
                f"--nproc {nproc} needs {nproc} GPUs, one per process, but {visible} "
                f"{'is' if visible == 1 else 'are'} visible (CUDA_VISIBLE_DEVICES={shown}); "
                f"use --nproc {visible} or fewer")
    elif kind.type != "cpu":
        raise UsageError(f"--nproc runs on --device cuda (nccl) or cpu (gloo); got {device!r}")


def global_samples_per_round(n_samples: int, global_batch: int,
                             rounds: Sequence[range]) -> list[int]:
    """Samples of the global batches in each round, as ``plan_steps`` cuts them: every epoch is
    the same sequence of batch sizes (full batches, then the remainder), so step i trains
    ``sizes[i % steps_per_epoch]`` samples; the padding of a rank's share is not counted."""
    sizes = [min(global_batch, n_samples - start) for start in range(0, n_samples, global_batch)]
    return [sum(sizes[i % len(sizes)] for i in steps) for steps in rounds]


def mean_losses(per_rank: Sequence[Sequence[float]]) -> list[float]:
    """Step-wise mean of the ranks' loss curves: the global batch's loss, shares being equal."""
    return [math.fsum(step) / len(step) for step in zip(*per_rank, strict=True)]


def merge_rank_results(results: Sequence[RunResult], samples_per_round: Sequence[int],
                       device: str, backend: str) -> RunResult:
    """One ``RunResult`` for the whole run from every rank's own, in rank order."""
    first, n = results[0], len(results)
    losses = mean_losses([r.train_losses for r in results])
    peaks = [r.peak_memory_bytes for r in results]
    scales = [r.grad_scaler.get("final_scale") for r in results]
    skipped = [r.skipped_steps for r in results]
    per_rank_batch = first.config["batch_size"]
    known_peaks = [p for p in peaks if p is not None]
    details = {
        **first.details,
        "world_size": n,
        "backend": backend,
        "per_rank_batch_size": per_rank_batch,
        "global_batch_size": per_rank_batch * n,
        "rank_devices": [r.device for r in results],
        "per_rank_peak_memory_bytes": peaks,
        "per_rank_final_scale": scales,
        "per_rank_skipped_steps": skipped,
        "scaler_consistent": len(set(scales)) == 1 and len(set(skipped)) == 1,
        "per_rank_round_times_s": [r.round_times_s for r in results],
    }
    return dataclasses.replace(
        first,
        device=device,
        # The world size changes what is measured: comparisons must see it in the config too.
        config={**first.config, "world_size": n, "global_batch_size": per_rank_batch * n},
        round_times_s=[max(t) for t in zip(*(r.round_times_s for r in results), strict=True)],
        samples_per_round=list(samples_per_round),
        train_losses=losses,
        peak_memory_bytes=max(known_peaks) if known_peaks else None,
        nonfinite_losses=sum(not math.isfinite(x) for x in losses),
        details=details,
    )


def describe(result: RunResult) -> str:
    """One line on how a merged result was distributed, for under the results table."""
    d = result.details
    world, per_rank = d["world_size"], d.get("per_rank_batch_size")
    scaler = "equal on every rank" if d.get("scaler_consistent") else (
        f"DIFFERENT across ranks: final scales {d.get('per_rank_final_scale')}, "
        f"skipped steps {d.get('per_rank_skipped_steps')}")
    return (f"{result.name}: DDP on {world} processes ({d.get('backend')}), global batch "
            f"{d.get('global_batch_size')} = {world} x {per_rank}; GradScaler decisions {scaler}")


# --- failures -----------------------------------------------------------------------------

@dataclass(frozen=True)
class RankFailure:
    """What one failed rank recorded before exiting (or what torchrun said about it)."""

    rank: int
    exit_code: int
    error: str  # exception class name; "" when only torchrun's summary named the rank
    message: str
    time: float = 0.0


class DistributedRunError(AmpcoreError):
    """A distributed run failed; the message names the failing rank(s) and exit code."""

    def __init__(self, message: str, failures: Sequence[RankFailure] = (),
                 exit_code: int = 1) -> None:
        super().__init__(message)
        self.failures = list(failures)
        self.exit_code = exit_code


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


_TORCHRUN_FAILURE = re.compile(r"rank\s*:\s*(\d+)[^\n]*\n\s*exitcode\s*:\s*(-?\d+)")


def torchrun_failures(output: str) -> list[tuple[int, int]]:
    """(rank, exit code) of each failed rank in torchrun's failure summary, the root cause
    (first observed failure) first."""
    others, _, root = output.rpartition("Root Cause")
    if not _:
        others, root = output, ""
    found: list[tuple[int, int]] = []
    for rank, code in _TORCHRUN_FAILURE.findall(root) + _TORCHRUN_FAILURE.findall(others):
        if int(rank) not in {r for r, _ in found}:
            found.append((int(rank), int(code)))
    return found


def failure_message(what: str, returncode: int, recorded: Sequence[RankFailure],
                    output_tail: str) -> tuple[str, list[RankFailure]]:
    """The error message for a failed launch, and the failures it names, first failure first.

    A rank that raised recorded its error; one that died without raising (a signal, a crash in
    native code) is known only from torchrun's summary at the end of ``output_tail``, whose
    order (first observed exit first) also puts a root cause before the ranks it took down."""
    by_rank = {f.rank: f for f in recorded}
    failures = [by_rank.pop(rank, RankFailure(rank, code, "", ""))
                for rank, code in torchrun_failures(output_tail)]
    failures += sorted(by_rank.values(), key=lambda f: (f.time, f.rank))
    if not failures:
        if returncode == 0:
            return f"{what}: every process exited cleanly but rank 0 wrote no result", []
        return (f"{what}: torchrun {_describe_exit(returncode)} and no rank reported an error; "
                f"its last output:\n{output_tail[-2000:]}"), []
    groups: dict[tuple, list[int]] = {}
    for f in failures:
        groups.setdefault((f.exit_code, f.error, f.message), []).append(f.rank)
    parts = []
    for (code, error, message), ranks in groups.items():
        ranks = sorted(ranks)
        who = f"rank {ranks[0]}" if len(ranks) == 1 else f"ranks {', '.join(map(str, ranks))}"
        detail = (f": {error}: {message}" if error
                  else " without reporting an error (see its output above)")
        parts.append(f"{who} {_describe_exit(code)}{detail}")
    return f"{what} failed: " + "; then ".join(parts), failures


# --- the parent ---------------------------------------------------------------------------

def launch_command(nproc: int, out_dir: Path, progress: bool = False,
                   collective_timeout_s: float = DEFAULT_COLLECTIVE_TIMEOUT_S,
                   python: str = sys.executable) -> list[str]:
    """The torchrun command line that runs ``nproc`` workers of this module on ``out_dir``."""
    command = [python, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={nproc}", "--max-restarts=0", "--monitor-interval=0.5",
               "-m", "ampcore.distributed", "--out", str(out_dir),
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
    # What the parent can check costs no process start; check it here, with the usual errors.
    get_workload(spec.workload)
    get_profile(spec.profile)
    get_precision(spec.precision).check_supported(resolve_device(spec.device))
    check_nproc(nproc, spec.device)
    what = f"distributed run of {spec.workload}/{spec.precision} on {nproc} processes"
    with tempfile.TemporaryDirectory(prefix="ampcore-ddp-") as tmp:
        out = Path(tmp)
        (out / SPEC_FILE).write_text(json.dumps(_spec_to_dict(spec)), encoding="utf-8")
        command = launch_command(nproc, out, progress, collective_timeout_s)
        env = worker_environment(os.environ, nproc, os.cpu_count() or 1,
                                 cuda_graphs=spec.cuda_graphs)
        returncode, output = _launch(command, env, timeout_s, what)
        recorded = _read_failures(out)
        if returncode != 0 or recorded or not (out / RESULT_FILE).exists():
            message, failures = failure_message(what, returncode, recorded, output)
            # The first failure's code: a worker's UsageError exits 2 from the CLI, as it would.
            code = failures[0].exit_code if failures and failures[0].exit_code > 0 else 1
            raise DistributedRunError(message, failures, exit_code=code)
        return read_json(out / RESULT_FILE)[0]


def _launch(command: list[str], env: dict[str, str], timeout_s: float | None,
            what: str) -> tuple[int, str]:
    """Run torchrun, streaming its output to stderr; (return code, the output's tail)."""
    # Its own session: on a timeout or an interrupt, we stop torchrun and every worker at once.
    proc = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    tail = [""]  # the last _OUTPUT_TAIL_CHARS of the output, for the failure summary

    def pump() -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        # os.read returns what is there: progress bars ('\r', no newline) show as they come.
        with contextlib.suppress(OSError, ValueError):  # the pipe closed under us: done
            while chunk := os.read(proc.stdout.fileno(), 65536):
                text = decoder.decode(chunk)
                sys.stderr.write(text)
                sys.stderr.flush()
                tail[0] = (tail[0] + text)[-_OUTPUT_TAIL_CHARS:]

    reader = threading.Thread(target=pump, name="ampcore-ddp-output", daemon=True)
    reader.start()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _stop(proc)
        raise DistributedRunError(f"{what} timed out after {timeout_s:g} s; every process was "
                                  "stopped") from None
    except BaseException:
        _stop(proc)
        raise
    finally:
        # A worker's own children (compile workers) can hold the pipe open: don't wait on them.
        reader.join(timeout=10)
        proc.stdout.close()
    return proc.returncode, tail[0]


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


def _spec_to_dict(spec: RunSpec) -> dict:
    data = dataclasses.asdict(spec)
    data["data_dir"] = None if spec.data_dir is None else str(spec.data_dir)
    return data


def _spec_from_dict(data: dict) -> RunSpec:
    if data.get("data_dir") is not None:
        data = {**data, "data_dir": Path(data["data_dir"])}
    return RunSpec(**data)


def _read_failures(out: Path) -> list[RankFailure]:
    failures = []
    for path in sorted(out.glob("*" + FAILURE_SUFFIX)):
        try:
            failures.append(RankFailure(**json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, TypeError):
            continue  # half-written by a rank that was killed meanwhile: torchrun's summary tells
    return failures


# --- the workers --------------------------------------------------------------------------

def rank_device(device: str, local_rank: int) -> torch.device:
    """The device of local rank ``local_rank``: ``cuda:LOCAL_RANK`` on CUDA, else ``device``."""
    kind = torch.device(device).type
    return torch.device("cuda", local_rank) if kind == "cuda" else torch.device(kind)


@contextlib.contextmanager
def process_group(device: torch.device,
                  timeout_s: float = DEFAULT_COLLECTIVE_TIMEOUT_S) -> Iterator[str]:
    """Join the default process group from torchrun's environment (nccl on CUDA, gloo
    elsewhere); yields the backend. ``timeout_s`` bounds the rendezvous and every collective.

    It is destroyed on success only: after an error, a clean shutdown could wait on
    collectives the other ranks will never join, and the failed rank must exit now."""
    import torch.distributed as dist

    backend = "nccl" if device.type == "cuda" else "gloo"
    kwargs = {}
    if device.type == "cuda":
        torch.cuda.set_device(device)
        kwargs["device_id"] = device  # binds the rank to its GPU, for barriers and NCCL init
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s), **kwargs)
    yield backend
    # Every rank done with its last collective before any tears down: a rank that destroys
    # the group while a peer still receives (rank 0 gathering results) can abort gloo's
    # transport threads ("terminate called without an active exception").
    barrier(device)
    dist.destroy_process_group()


def ddp_wrapper(device: torch.device) -> Callable[[torch.nn.Module], torch.nn.Module]:
    """``Trainer``'s ``wrap_model``: DistributedDataParallel on ``device``, default group."""
    from torch.nn.parallel import DistributedDataParallel

    def wrap(model: torch.nn.Module) -> torch.nn.Module:
        return DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)

    return wrap


def barrier(device: torch.device) -> None:
    import torch.distributed as dist

    if device.type == "cuda":
        dist.barrier(device_ids=[device.index])
    else:
        dist.barrier()


def broadcast_data(workload: PreparedWorkload, world_size: int) -> None:
    """Make every rank's train and test tensors rank 0's, in place.

    Each rank builds its data itself, and a builder need not give the same tensors in every
    process: the smoke profile's WordPiece tokenizer orders its vocabulary differently from one
    process to the next, which would give the ranks different token ids for the same text."""
    import torch.distributed as dist

    for inputs in (workload.train_inputs, workload.test_inputs):
        for name, tensor in inputs.items():
            inputs[name] = tensor.contiguous()  # broadcast writes in place
    workload.train_labels = workload.train_labels.contiguous()
    workload.test_labels = workload.test_labels.contiguous()
    tensors = {**{f"train {k}": t for k, t in workload.train_inputs.items()},
               "train labels": workload.train_labels,
               **{f"test {k}": t for k, t in workload.test_inputs.items()},
               "test labels": workload.test_labels}
    layout = [(name, tuple(t.shape), str(t.dtype)) for name, t in tensors.items()]
    layouts: list = [None] * world_size
    dist.all_gather_object(layouts, layout)
    for rank, other in enumerate(layouts):
        if other != layouts[0]:
            raise DataError(f"ranks built differently shaped data: rank 0 has {layouts[0]}, "
                            f"rank {rank} has {other}")
    for tensor in tensors.values():
        dist.broadcast(tensor, src=0)


def run_rank(spec: RunSpec, rank: int, local_rank: int, world_size: int, progress: bool = False,
             collective_timeout_s: float = DEFAULT_COLLECTIVE_TIMEOUT_S) -> RunResult | None:
    """One rank's whole run inside torchrun; rank 0 returns the merged result, others None."""
    import torch.distributed as dist

    device = rank_device(spec.device, local_rank)
    with process_group(device, collective_timeout_s) as backend:
        rank_spec = dataclasses.replace(spec, device=str(device))
        with Experiment(rank_spec, rank=rank, world_size=world_size,
                        wrap_model=ddp_wrapper(device)) as experiment:
            broadcast_data(experiment.workload, world_size)
            experiment.start()
            # The barrier, untimed, starts every rank's round together: a round's time is then
            # the slowest rank's time for it, not a wait for a rank still in the last round.
            experiment.run_rounds(progress=progress and rank == 0,
                                  before_round=lambda _: barrier(device))
            local = experiment.result()
            samples = global_samples_per_round(experiment.workload.train_size,
                                               experiment.config.batch_size * world_size,
                                               experiment.plan.rounds)
        gathered: list[RunResult | None] = [None] * world_size
        dist.all_gather_object(gathered, local)
    if rank != 0:
        return None
    return merge_rank_results(gathered, samples, str(torch.device(spec.device)), backend)


def main(argv: Sequence[str] | None = None) -> int:
    """A worker's entry point; torchrun sets RANK, LOCAL_RANK and WORLD_SIZE."""
    parser = argparse.ArgumentParser(
        prog="python -m ampcore.distributed",
        description="One rank of a distributed ampcore run, started by torchrun from "
        "ampcore.distributed.run_distributed (`ampcore run --nproc N`).")
    parser.add_argument("--out", type=Path, required=True,
                        help=f"directory with {SPEC_FILE}; rank 0 writes {RESULT_FILE} there")
    parser.add_argument("--progress", action="store_true", help="progress bars on rank 0")
    parser.add_argument("--collective-timeout", type=float, default=DEFAULT_COLLECTIVE_TIMEOUT_S)
    args = parser.parse_args(argv)
    try:
        rank, local_rank, world_size = (int(os.environ[name])
                                        for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))
    except KeyError as exc:
        print(f"ampcore.distributed: error: {exc.args[0]} is not set: this module is started by "
              "torchrun; use `ampcore run --nproc N`", file=sys.stderr)
        return 2
    try:
        spec = _spec_from_dict(json.loads((args.out / SPEC_FILE).read_text(encoding="utf-8")))
        result = run_rank(spec, rank, local_rank, world_size, progress=args.progress,
                          collective_timeout_s=args.collective_timeout)
        if result is not None:
            write_json([result], args.out / RESULT_FILE)
    except BaseException as exc:  # noqa: BLE001 - every failure must be reported, then exit
        code = 130 if isinstance(exc, KeyboardInterrupt) else getattr(exc, "exit_code", 1)
        code = code if isinstance(code, int) and code > 0 else 1
        if isinstance(exc, AmpcoreError):
            print(f"ampcore: rank {rank}: error: {exc}", file=sys.stderr)
        else:
            traceback.print_exc()
        failure = RankFailure(rank, code, type(exc).__name__, str(exc), time.time())
        path = args.out / f"rank{rank}{FAILURE_SUFFIX}"
        with contextlib.suppress(OSError):  # written whole, then renamed: never read half-done
            path.with_suffix(".tmp").write_text(json.dumps(dataclasses.asdict(failure)),
                                                encoding="utf-8")
            path.with_suffix(".tmp").replace(path)
        sys.stdout.flush()
        sys.stderr.flush()
        # Exit now, without interpreter shutdown: that could wait on collectives the other
        # ranks never join. torchrun sees the exit and stops them.
        os._exit(code)
    return 0


if __name__ == "__main__":
    sys.exit(main())
