"""``MergedRun``: how a result merged from several processes was made, and each process's part.

Two launchers merge processes into one ``RunResult``: DistributedDataParallel (``"ddp"``, one
part per rank, all training one run together) and fresh processes (``"fresh"``, one part per
process, each training the whole run). The merged result's own figures are the merge; its
``merged`` record keeps what each part measured, whether the parts agreed where they must, and
how they talked. The sizes (``world_size``, ``global_batch_size``, ``processes``) stay where
comparisons read them: the result's ``config``.

Saved as a versioned dict (``MERGED_VERSION``). Results saved before it kept these figures as
loose keys in ``details``; ``split_legacy_details`` reads those into the record.
Torch-free, like ``ampcore.train.config``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Literal

from ampcore.core.errors import AmpcoreError

MERGED_VERSION = 1

How = Literal["ddp", "fresh"]


@dataclass(frozen=True)
class Part:
    """What one process measured of a merged run: a DDP rank, or one fresh process."""

    device: str | None
    round_times_s: tuple[float, ...] = ()
    step_time_s: float | None = None  # the median per-step round time
    peak_memory_bytes: int | None = None
    final_scale: float | None = None  # the GradScaler's, None without one
    skipped_steps: int | None = None  # optimizer steps the GradScaler skipped
    heldout_accuracy: float | None = None

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)} | {
            "round_times_s": list(self.round_times_s)}

    @classmethod
    def from_dict(cls, data: Mapping) -> Part:
        values = {f.name: data[f.name] for f in fields(cls) if f.name in data}
        values["round_times_s"] = tuple(values.get("round_times_s") or ())
        return cls(**values)


@dataclass(frozen=True)
class MergedRun:
    """How a merged result was made: by which launcher, from which parts (in rank or run
    order), and whether the parts agreed where they must (``consistent``: a DDP run's ranks
    made the same GradScaler decisions; fresh processes counted the same per-step ops)."""

    how: How
    parts: tuple[Part, ...]
    consistent: bool
    backend: str | None = None  # DDP's process-group backend (nccl, gloo)

    def __post_init__(self) -> None:
        if self.how not in ("ddp", "fresh"):
            raise ValueError(f"a merged run is made by 'ddp' or 'fresh', not {self.how!r}")

    def to_dict(self) -> dict:
        return {"version": MERGED_VERSION, "how": self.how, "backend": self.backend,
                "consistent": self.consistent, "parts": [p.to_dict() for p in self.parts]}

    @classmethod
    def from_dict(cls, data: Mapping) -> MergedRun:
        version = data.get("version", 1)
        if isinstance(version, bool) or not isinstance(version, int) or version > MERGED_VERSION:
            raise AmpcoreError(f"a merged run's record has version {version!r}; this ampcore "
                               f"reads up to {MERGED_VERSION}: upgrade ampcore to read it")
        return cls(how=data["how"], parts=tuple(Part.from_dict(p) for p in data["parts"]),
                   consistent=bool(data.get("consistent")), backend=data.get("backend"))


# --- results saved before MergedRun ---------------------------------------------------------

# The keys each launcher put into ``details``; all of them leave it.
_DDP_KEYS = ("world_size", "backend", "per_rank_batch_size", "global_batch_size", "rank_devices",
             "per_rank_peak_memory_bytes", "per_rank_final_scale", "per_rank_skipped_steps",
             "scaler_consistent", "per_rank_round_times_s")
_FRESH_KEYS = ("processes", "per_process_round_times_s", "per_process_step_time_s",
               "per_process_heldout_accuracy", "counters_consistent")


def split_legacy_details(details: Mapping, device: str | None
                         ) -> tuple[MergedRun | None, dict, dict]:
    """An old result's ``details`` split three ways: the ``MergedRun`` its launcher's keys
    describe (None when no launcher wrote any), the details the workload itself wrote, and
    the launcher's sizes as ``config`` keys (for a result whose config lacks them).
    ``device``: the result's, each fresh process's (they kept no device of their own)."""
    if "world_size" in details:
        return _legacy_ddp(details), _without(details, _DDP_KEYS), {
            "world_size": int(details["world_size"]),
            "global_batch_size": details.get("global_batch_size")}
    if "per_process_round_times_s" in details:
        merged = _legacy_fresh(details, device)
        return merged, _without(details, _FRESH_KEYS), {"processes": len(merged.parts)}
    return None, dict(details), {}


def _legacy_ddp(details: Mapping) -> MergedRun:
    n = int(details["world_size"])
    devices, rounds, peaks, scales, skipped = (_column(details.get(key), n) for key in (
        "rank_devices", "per_rank_round_times_s", "per_rank_peak_memory_bytes",
        "per_rank_final_scale", "per_rank_skipped_steps"))
    parts = tuple(Part(d, tuple(r or ()), peak_memory_bytes=m, final_scale=f, skipped_steps=s)
                  for d, r, m, f, s in zip(devices, rounds, peaks, scales, skipped))
    return MergedRun("ddp", parts, bool(details.get("scaler_consistent")),
                     details.get("backend"))


def _legacy_fresh(details: Mapping, device: str | None) -> MergedRun:
    rounds = details["per_process_round_times_s"]
    steps, accuracies = (_column(details.get(key), len(rounds)) for key in (
        "per_process_step_time_s", "per_process_heldout_accuracy"))
    parts = tuple(Part(device, tuple(r), step_time_s=t, heldout_accuracy=a)
                  for r, t, a in zip(rounds, steps, accuracies))
    return MergedRun("fresh", parts, bool(details.get("counters_consistent")))


def _column(values: Sequence | None, n: int) -> list:
    """One value per part; Nones where an older file kept none (or not one per part)."""
    return list(values) if isinstance(values, list) and len(values) == n else [None] * n


def _without(details: Mapping, keys: Sequence[str]) -> dict:
    return {k: v for k, v in details.items() if k not in keys}
