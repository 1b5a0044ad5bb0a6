"""Eager vs CUDA-graph steps on the seed profile's bert (random init), one GPU; a table last.

Usage: python scripts/investigations/step-modes.py DATA_DIR BERT_CONFIG_DIR OUT_DIR VARIANTS
  VARIANTS: comma-separated labels of VARIANTS below (eager, graph, eager2, graph2, pinned,
  graphcompile), or all.
Each variant is one ``run_experiment`` (what ``ampcore run`` does), written to OUT_DIR as JSON.
The figures in docs/PERFORMANCE.md ("Step modes") come from this script.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
from pathlib import Path

from ampcore.train.result import RunResult, write_json
from ampcore.train.run import run_experiment
from ampcore.train.spec import RunSpec

# (label, precision, RunSpec overrides, CPU cores to pin the process to or None), in run order.
VARIANTS = [
    ("eager", "amp-bf16", {}, None),
    ("graph", "amp-bf16", {"cuda_graphs": True}, None),
    ("graph", "amp-fp16", {"cuda_graphs": True}, None),
    ("eager2", "amp-bf16", {}, None),
    ("graph2", "amp-bf16", {"cuda_graphs": True}, None),
    ("pinned", "amp-bf16", {}, {2, 3}),  # does host-thread placement explain eager noise?
    ("eager", "amp-fp16", {}, None),
    ("graph", "fp32", {"cuda_graphs": True}, None),
    ("eager", "fp32", {}, None),
    ("graphcompile", "amp-bf16", {"cuda_graphs": True, "compile": True}, None),
]


@contextlib.contextmanager
def pinned_to(cores: set[int] | None):
    saved = os.sched_getaffinity(0)
    if cores:
        os.sched_setaffinity(0, cores)
    try:
        yield
    finally:
        os.sched_setaffinity(0, saved)


def describe(result: RunResult, wall_s: float) -> str:
    rounds = result.round_times_s
    losses = result.train_losses
    return (f"{result.samples_per_s:8.1f} sps  train {result.train_time_s:6.2f}s  "
            f"cv {result.round_cv * 100:5.2f}%  rounds ms {min(rounds) * 1e3:.0f}-{max(rounds) * 1e3:.0f}  "
            f"loss0 {losses[0]:.4f} {losses[1]:.4f} last {result.final_train_loss:.4f}  "
            f"mem {result.peak_memory_bytes / 2**20:.0f}MiB skipped {result.skipped_steps} wall {wall_s:.0f}s")


def main(data_dir: Path, bert: str, out_dir: Path, chosen: list[str]) -> None:
    rows = []
    for label, precision, overrides, cores in VARIANTS:
        if label not in chosen and "all" not in chosen:
            continue
        spec = RunSpec(workload="bert", precision=precision, profile="seed", device="cuda",
                       data_dir=data_dir, model=bert, allow_random_init=True, **overrides)
        start = time.perf_counter()
        try:
            with pinned_to(cores):
                result = run_experiment(spec)
        except Exception as exc:  # one failed variant must not hide the others' figures
            traceback.print_exc()
            rows.append((label, precision, f"FAILED: {type(exc).__name__}: {str(exc)[:200]}"))
            continue
        write_json([result], out_dir / f"{label}-{precision}.json")
        rows.append((label, precision, describe(result, time.perf_counter() - start)))
        print(rows[-1], flush=True)
    print("\n".join(" | ".join(row) for row in rows))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4].split(","))
