"""One rank of a distributed run: what each process torchrun starts executes.

Started as ``python -m torch.distributed.run ... -m ampcore.launch.worker --out DIR`` by
``ampcore.launch.run_distributed``; torchrun sets RANK, LOCAL_RANK and WORLD_SIZE.

- Backend: nccl on CUDA, rank r on ``cuda:LOCAL_RANK``; gloo on the CPU.
- Data: every rank holds the whole data set, and it is rank 0's (``broadcast_data``); rank r
  trains its DistributedSampler-style share of each global batch (``ampcore.train.plan.shard_batch``).
- Evaluation: every rank evaluates the whole test split with its replica (DDP's buffer
  broadcast makes each forward a collective, so all ranks must run it); rank 0's is reported.
- Result: gathered to rank 0, merged (``merge.merge_rank_results``) and written to ``--out``.
- Failures: the body runs under elastic's ``record``, which writes the exception to this rank's
  error file (``protocol.RankErrorHandler``); the rank then exits at once and torchrun stops
  the others.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import functools
import os
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import torch
import torch.distributed as dist
from torch.distributed.elastic.multiprocessing.errors import record

from ampcore.launch.merge import global_samples_per_round, merge_rank_results
from ampcore.launch.protocol import (
    DEFAULT_COLLECTIVE_TIMEOUT_S, RESULT_FILE, SPEC_FILE, RankErrorHandler, exit_code_of,
    read_spec, write_result,
)
from ampcore.core.errors import AmpcoreError, DataError
from ampcore.train.result import RunResult
from ampcore.train.run import Experiment
from ampcore.train.spec import RunSpec
from ampcore.workloads.base import PreparedWorkload


def rank_device(device: str, local_rank: int) -> torch.device:
    """The device of local rank ``local_rank``: ``cuda:LOCAL_RANK`` on CUDA, else ``device``."""
    kind = torch.device(device).type
    return torch.device("cuda", local_rank) if kind == "cuda" else torch.device(kind)


def barrier(device: torch.device) -> None:
    """A barrier of the default group (on this rank's GPU under nccl)."""
    if device.type == "cuda":
        dist.barrier(device_ids=[device.index])
    else:
        dist.barrier()


@contextlib.contextmanager
def process_group(device: torch.device,
                  timeout_s: float = DEFAULT_COLLECTIVE_TIMEOUT_S) -> Iterator[str]:
    """Join the default process group from torchrun's environment (nccl on CUDA, gloo
    elsewhere); yields the backend. ``timeout_s`` bounds the rendezvous and every collective.

    It is destroyed on success only: after an error, a clean shutdown could wait on
    collectives the other ranks will never join, and the failed rank must exit now."""
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


def broadcast_data(workload: PreparedWorkload, world_size: int) -> None:
    """Make every rank's train and test tensors rank 0's, in place.

    Each rank builds its data itself, and a builder need not give the same tensors in every
    process: the smoke profile's WordPiece tokenizer orders its vocabulary differently from one
    process to the next, which would give the ranks different token ids for the same text."""
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


@functools.partial(record, error_handler=RankErrorHandler())
def run_worker(out: Path, rank: int, local_rank: int, world_size: int, progress: bool,
               collective_timeout_s: float) -> None:
    """The recorded body: an exception raised here lands in this rank's elastic error file."""
    spec = read_spec(out)
    result = run_rank(spec, rank, local_rank, world_size, progress=progress,
                      collective_timeout_s=collective_timeout_s)
    if result is not None:
        write_result(result, out)


def _exit_after(exc: BaseException, rank: int) -> None:
    """Say what failed on this rank's stderr and exit at once (the error file is written)."""
    if isinstance(exc, AmpcoreError):
        print(f"ampcore: rank {rank}: error: {exc}", file=sys.stderr)
    else:
        traceback.print_exception(exc)
    sys.stdout.flush()
    sys.stderr.flush()
    # Without interpreter shutdown: that could wait on collectives the other ranks never
    # join. torchrun sees the exit and stops them.
    os._exit(exit_code_of(exc))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ampcore.launch.worker",
        description="One rank of a distributed ampcore run, started by torchrun from "
        "ampcore.launch.run_distributed (`ampcore run --nproc N`).")
    parser.add_argument("--out", type=Path, required=True,
                        help=f"directory with {SPEC_FILE}; rank 0 writes {RESULT_FILE} there")
    parser.add_argument("--progress", action="store_true", help="progress bars on rank 0")
    parser.add_argument("--collective-timeout", type=float, default=DEFAULT_COLLECTIVE_TIMEOUT_S)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """A worker's entry point; torchrun sets RANK, LOCAL_RANK and WORLD_SIZE."""
    args = _parser().parse_args(argv)
    try:
        rank, local_rank, world_size = (int(os.environ[name])
                                        for name in ("RANK", "LOCAL_RANK", "WORLD_SIZE"))
    except KeyError as exc:
        print(f"ampcore.launch.worker: error: {exc.args[0]} is not set: this module is "
              "started by torchrun; use `ampcore run --nproc N`", file=sys.stderr)
        return 2
    try:
        run_worker(args.out, rank, local_rank, world_size, args.progress,
                   args.collective_timeout)
    except BaseException as exc:  # noqa: BLE001 - every failure ends this rank now
        _exit_after(exc, rank)
    return 0


if __name__ == "__main__":
    sys.exit(main())
