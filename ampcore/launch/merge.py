"""Pure functions that turn what the ranks produced into one answer: their ``RunResult``s into
one merged result, their failures into one error message. No processes, no collectives.

Merge semantics (N processes are N single-device runs working as one):

- a round's time is the slowest rank's (every round starts at a barrier);
- ``samples_per_round`` counts global samples, without the padding of an uneven last batch;
- a step's train loss is the mean of the ranks' losses (the global batch mean: shares are
  equal); ``peak_memory_bytes`` is the largest rank's; rank 0 reports the evaluation;
- ``config`` gains ``world_size`` and ``global_batch_size``; ``merged``
  (``ampcore.train.merged.MergedRun``, ``"ddp"``) keeps the backend, each rank's own figures
  (device, round times, peak memory, GradScaler final scale and skipped steps), and
  ``consistent``: whether every rank's scaler made the same decisions (all-reduced gradients
  make them so; a difference would be a bug worth seeing).
"""

from __future__ import annotations

import dataclasses
import math
import signal
from collections.abc import Sequence

from ampcore.launch.protocol import WorkerFailure
from ampcore.train.merged import MergedRun
from ampcore.train.result import RunResult


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
    parts = tuple(r.as_part() for r in results)
    consistent = (len({p.final_scale for p in parts}) == 1
                  and len({p.skipped_steps for p in parts}) == 1)
    rank_batch = first.run_config.batch_size
    known_peaks = [p.peak_memory_bytes for p in parts if p.peak_memory_bytes is not None]
    return dataclasses.replace(
        first,
        device=device,
        # The world size changes what is measured: comparisons must see it in the config too.
        config=dataclasses.replace(first.run_config, world_size=n,
                                   global_batch_size=rank_batch * n).to_dict(),
        round_times_s=[max(t) for t in zip(*(r.round_times_s for r in results), strict=True)],
        samples_per_round=list(samples_per_round),
        train_losses=losses,
        peak_memory_bytes=max(known_peaks) if known_peaks else None,
        nonfinite_losses=sum(not math.isfinite(x) for x in losses),
        merged=MergedRun("ddp", parts, consistent, backend),
    )


def describe(result: RunResult) -> str:
    """One line on how a merged result was distributed, for under the results table."""
    merged, config = result.merged, result.run_config
    if merged is None or merged.how != "ddp":
        raise ValueError(f"{result.name} was not trained with DDP")
    world = result.world_size
    scaler = "equal on every rank" if merged.consistent else (
        f"DIFFERENT across ranks: final scales {[p.final_scale for p in merged.parts]}, "
        f"skipped steps {[p.skipped_steps for p in merged.parts]}")
    return (f"{result.name}: DDP on {world} processes ({merged.backend}), global batch "
            f"{config.global_batch_size} = {world} x {config.batch_size}; "
            f"GradScaler decisions {scaler}")


# --- failures -----------------------------------------------------------------------------

def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with code {code}"


def order_failures(recorded: Sequence[WorkerFailure],
                   root: WorkerFailure | None) -> list[WorkerFailure]:
    """Every failure once, first failure first: torchrun's root cause (the copy it made of the
    first failed rank's error file, which carries the real exit code) leads, then the other
    ranks by time and rank."""
    rest = sorted((f for f in recorded if root is None or f.process != root.process),
                  key=lambda f: (f.time, -1 if f.process is None else f.process))
    return ([root] if root is not None else []) + rest


def _group(failures: Sequence[WorkerFailure]) -> list[str]:
    """"ranks 0, 1 exited with code 1: DataError: ..." parts, equal failures as one."""
    groups: dict[tuple, list[int | None]] = {}
    for f in failures:
        groups.setdefault((f.exit_code, f.error, f.message), []).append(f.process)
    parts = []
    for (code, error, message), ranks in groups.items():
        if ranks == [None]:
            parts.append(f"torchrun raised {error}: {message}")
            continue
        ranks = sorted(r for r in ranks if r is not None)
        who = f"rank {ranks[0]}" if len(ranks) == 1 else f"ranks {', '.join(map(str, ranks))}"
        parts.append(f"{who} {_describe_exit(code)}: {error}: {message}")
    return parts


def failure_message(what: str, returncode: int, recorded: Sequence[WorkerFailure],
                    output_tail: str, root: WorkerFailure | None = None
                    ) -> tuple[str, list[WorkerFailure]]:
    """The error message for a failed launch, and the failures it names, first failure first.

    ``recorded`` holds the ranks' error files, ``root`` torchrun's copy of the first failure's.
    A rank that dies without raising (a signal, a crash in native code) writes no error file;
    when such a death came first, torchrun has no root cause to copy (``root`` is None), and
    the message says so: torchrun's own summary, printed above, names that rank."""
    failures = order_failures(recorded, root)
    if not failures:
        if returncode == 0:
            return f"{what}: every process exited cleanly but rank 0 wrote no result", []
        return (f"{what}: torchrun {_describe_exit(returncode)} and no rank left an error "
                f"file; its last output:\n{output_tail[-2000:]}"), []
    parts = _group(failures)
    if root is None and returncode != 0:
        parts.insert(0, "a process that left no error file failed first (killed by a signal "
                        "or crashed in native code; torchrun's summary above names it)")
    return f"{what} failed: " + "; then ".join(parts), failures
