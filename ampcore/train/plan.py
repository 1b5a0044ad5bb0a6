"""The step plan: which samples each optimizer step sees, and how the steps group into
rounds and epochs, planned up front from the seed for one process or one rank of many.

Rounds end on epoch boundaries, so evaluation can happen between rounds, outside any timed
region, without changing what is trained (``ampcore.train.loop`` runs the plan).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ampcore.core.errors import UsageError


@dataclass(frozen=True)
class StepPlan:
    """Which samples each optimizer step sees, and how steps group into rounds and epochs."""

    batches: list[torch.Tensor]  # device index tensors, one per step
    rounds: list[range]  # step indices of each round
    epoch_of_round: list[int]
    epoch_ends: frozenset[int]  # rounds after which an epoch is complete

    @property
    def total_steps(self) -> int:
        return len(self.batches)


def shard_batch(batch: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rank ``rank``'s share of a global batch of sample indices, dealt as DistributedSampler
    deals an epoch: the batch is padded to a multiple of ``world_size`` by repeating its first
    indices (only a last partial batch can need it), then rank r takes every
    ``world_size``-th index from r. Equal shares keep DDP's gradient average equal to the global
    batch mean, and give every rank the same step shapes (same warm-up, no empty shard)."""
    if world_size == 1:
        return batch
    padded = -(-len(batch) // world_size) * world_size
    if padded != len(batch):
        batch = batch.repeat(-(-padded // len(batch)))[:padded]
    return batch[rank::world_size]


def plan_steps(n_samples: int, batch_size: int, epochs: int, seed: int, min_rounds: int,
               device: torch.device, rank: int = 0, world_size: int = 1) -> StepPlan:
    """Shuffle each epoch with ``seed`` (keeping the last partial batch, as a DataLoader does)
    and split every epoch into ``ceil(min_rounds / epochs)`` rounds of near-equal length.

    A round holds at least one step, so an epoch with fewer steps than that gets one round per
    step, and a run with fewer than ``min_rounds`` steps in all has fewer than ``min_rounds``
    rounds (neither happens on the seed or smoke profiles).

    With ``world_size`` > 1, ``batch_size`` is the global batch: the steps, rounds and epochs
    are those of the single-process plan for that batch, and each step holds only rank
    ``rank``'s share of its global batch (``shard_batch``)."""
    if not 0 <= rank < world_size:
        raise UsageError(f"rank {rank} is outside a world of size {world_size}")
    generator = torch.Generator().manual_seed(seed)
    rounds_per_epoch = -(-min_rounds // epochs)
    batches: list[torch.Tensor] = []
    rounds: list[range] = []
    epoch_of_round: list[int] = []
    epoch_ends = set()
    for epoch in range(epochs):
        order = torch.randperm(n_samples, generator=generator)
        global_batches = order.split(batch_size)
        if world_size > 1:
            global_batches = [shard_batch(b, rank, world_size) for b in global_batches]
        epoch_batches = [b.to(device) for b in global_batches]
        first = len(batches)
        batches.extend(epoch_batches)
        n = len(epoch_batches)
        per_epoch = min(rounds_per_epoch, n)
        bounds = [first + (n * i) // per_epoch for i in range(per_epoch + 1)]
        for start, stop in zip(bounds, bounds[1:]):
            rounds.append(range(start, stop))
            epoch_of_round.append(epoch)
        epoch_ends.add(len(rounds) - 1)
    return StepPlan(batches, rounds, epoch_of_round, frozenset(epoch_ends))
