"""The same run in other processes: data-parallel (one workload trained with
DistributedDataParallel by N local processes), or repeated in N fresh processes (``fresh``).

``run_distributed(spec, nproc)`` starts ``python -m torch.distributed.run --standalone
--nproc-per-node N -m ampcore.launch.worker`` and returns one ``RunResult`` for the run.

DDP semantics, chosen so that N processes are N single-device runs working as one:

- Batch: every process trains the profile's batch size (64 on seed), so the global batch is
  batch x N (weak scaling, the usual DDP recipe). Each GPU does the work of one single-GPU
  step, which makes the scaling efficiency (samples/s at N over N x samples/s at 1,
  ``ampcore.judge.speedup.scaling_efficiency``) the measure of what distribution costs. The
  learning rate is not rescaled; the LR schedule follows the global step plan.
- Data: rank 0's on every rank; the step plan is the single-process plan for the global batch
  (the same seed and shuffle), each rank training its share of every global batch.
- Result: gathered to rank 0 and merged into one ``RunResult`` (``merge_rank_results``).
- Failures: a rank's exception reaches the parent through torch elastic's error files, and
  the parent raises ``DistributedRunError`` naming the rank, its exit code and the error.

Modules: ``torchrun`` (the parent: torchrun, its environment, its outcome), ``worker`` (one
rank), ``merge`` (pure functions over the ranks' results and failures); ``fresh`` (the same run
in N fresh processes, one after another, ``--processes N``); shared by both launchers,
``protocol`` (the run directory's files and the error-file format a launcher and its workers
share) and ``processes`` (the parent's side: check the spec, run a command, stream its output).
"""

from __future__ import annotations

from typing import Any

from ampcore.launch.torchrun import (
    NVLINK_MULTICAST_OFF, DistributedRunError, check_nproc, launch_command, run_distributed,
    worker_environment,
)
from ampcore.launch.merge import (
    describe, failure_message, global_samples_per_round, mean_losses, merge_rank_results,
)
from ampcore.launch.protocol import (
    DEFAULT_COLLECTIVE_TIMEOUT_S, RESULT_FILE, SPEC_FILE, WorkerFailure,
)

__all__ = [
    "DEFAULT_COLLECTIVE_TIMEOUT_S", "NVLINK_MULTICAST_OFF", "RESULT_FILE", "SPEC_FILE",
    "DistributedRunError", "WorkerFailure", "broadcast_data", "check_nproc", "ddp_wrapper",
    "describe", "failure_message", "global_samples_per_round", "launch_command", "mean_losses",
    "merge_rank_results", "process_group", "rank_device", "run_distributed", "run_rank",
    "worker_environment",
]

_WORKER_NAMES = {"barrier", "broadcast_data", "ddp_wrapper", "process_group", "rank_device",
                 "run_rank"}


def __getattr__(name: str) -> Any:
    # The worker's names load the worker on first use. Importing it here would put it in
    # sys.modules before `python -m ampcore.launch.worker` runs it, which runpy warns of.
    if name in _WORKER_NAMES:
        from ampcore.launch import worker

        return getattr(worker, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
