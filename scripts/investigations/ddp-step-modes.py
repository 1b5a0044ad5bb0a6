"""DDP on 2 GPUs, eager vs CUDA-graph steps, with single-GPU baselines on the same host.

Usage: python scripts/investigations/ddp-step-modes.py DATA_DIR BERT_CONFIG_DIR OUT_DIR
Each line is ``run_distributed`` (``ampcore run --nproc 2``) or ``run_experiment`` (1 GPU);
scaling efficiency = samples/s on 2 GPUs / (2 x samples/s on 1 GPU). Figures in
docs/BENCHMARKS.md ("DDP step modes") come from this script.
"""
from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path

from ampcore.launch import run_distributed, scaling_efficiency
from ampcore.train.result import RunResult, write_json
from ampcore.train.run import run_experiment
from ampcore.train.spec import RunSpec

# (label, precision, processes, captured steps), in run order: each 1-GPU baseline first.
VARIANTS = [
    ("graph", "amp-bf16", 1, True),
    ("graph", "amp-bf16", 2, True),
    ("eager", "amp-bf16", 1, False),
    ("eager", "amp-bf16", 2, False),
    ("graph", "fp32", 2, True),
    ("graph", "amp-fp16", 2, True),
]


def describe(result: RunResult, efficiency: float | None, wall_s: float) -> str:
    rounds = result.round_times_s
    parts = result.merged.parts if result.merged else ()
    memory = [p.peak_memory_bytes for p in parts] or [result.peak_memory_bytes]
    eff = f" eff {efficiency:.3f}" if efficiency is not None else ""
    return (f"{result.samples_per_s:8.1f} sps{eff} train {result.train_time_s:6.2f}s "
            f"cv {result.round_cv * 100:5.2f}% rounds {min(rounds) * 1e3:.0f}-{max(rounds) * 1e3:.0f}ms "
            f"loss0 {result.train_losses[0]:.4f} last {result.final_train_loss:.4f} "
            f"mem {[round(m / 2**20) for m in memory]}MiB "
            f"consistent {result.merged.consistent if result.merged else None} wall {wall_s:.0f}s")


def main(data_dir: Path, bert: str, out_dir: Path) -> None:
    rows, single_gpu = [], {}
    for label, precision, nproc, cuda_graphs in VARIANTS:
        spec = RunSpec(workload="bert", precision=precision, profile="seed", device="cuda",
                       data_dir=data_dir, model=bert, allow_random_init=True,
                       cuda_graphs=cuda_graphs)
        name = f"{label} {precision} x{nproc}"
        start = time.perf_counter()
        try:
            result = (run_distributed(spec, nproc, timeout_s=400) if nproc > 1
                      else run_experiment(spec))
        except Exception as exc:  # one failed variant must not hide the others' figures
            traceback.print_exc()
            rows.append(f"{name}: FAILED {type(exc).__name__}: {str(exc)[-600:]}")
            print(rows[-1], flush=True)
            continue
        write_json([result], out_dir / f"{label}-{precision}-x{nproc}.json")
        if nproc == 1:
            single_gpu[(label, precision)] = result.samples_per_s
        baseline = single_gpu.get((label, precision)) if nproc > 1 else None
        efficiency = scaling_efficiency(result.samples_per_s, baseline, nproc) if baseline else None
        rows.append(f"{name}: {describe(result, efficiency, time.perf_counter() - start)}")
        print(rows[-1], flush=True)
    print("\n".join(rows))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3]))
