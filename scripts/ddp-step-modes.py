"""DDP on 2 GPUs, eager vs CUDA-graph steps, with single-GPU baselines on the same host.

Usage: python scripts/ddp-step-modes.py DATA_DIR BERT_CONFIG_DIR OUT_DIR
Each line is ``run_distributed`` (``ampcore run --nproc 2``) or ``run_experiment`` (1 GPU);
scaling efficiency = samples/s on 2 GPUs / (2 x samples/s on 1 GPU). Figures in
docs/BENCHMARKS.md ("DistributedDataParallel") come from this script.
"""
import sys
import time
import traceback
from pathlib import Path
from ampcore.run import RunSpec, run_experiment
from ampcore.distributed import run_distributed, scaling_efficiency
from ampcore.result import write_json

data, bert, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
rows, sps = [], {}
def go(label, precision, nproc, **kw):
    spec = RunSpec(workload="bert", precision=precision, profile="seed", device="cuda",
                   data_dir=data, bert_model=bert, allow_random_init=True, **kw)
    t0 = time.perf_counter()
    try:
        r = run_distributed(spec, nproc, timeout_s=400) if nproc > 1 else run_experiment(spec)
    except Exception as exc:
        traceback.print_exc()
        rows.append(f"{label} {precision} x{nproc}: FAILED {type(exc).__name__}: {str(exc)[-600:]}")
        print(rows[-1], flush=True)
        return
    write_json([r], out / f"{label}-{precision}-x{nproc}.json")
    sps[(label, precision, nproc)] = r.samples_per_s
    rt = r.round_times_s
    mem = r.details.get("per_rank_peak_memory_bytes") or [r.peak_memory_bytes]
    eff = ""
    if nproc > 1 and (label, precision, 1) in sps:
        eff = f" eff {scaling_efficiency(r.samples_per_s, sps[(label, precision, 1)], nproc):.3f}"
    rows.append(f"{label} {precision} x{nproc}: {r.samples_per_s:8.1f} sps{eff} train {r.train_time_s:6.2f}s "
                f"cv {r.round_cv*100:5.2f}% rounds {min(rt)*1e3:.0f}-{max(rt)*1e3:.0f}ms loss0 {r.train_losses[0]:.4f} "
                f"last {r.final_train_loss:.4f} mem {[round(m/2**20) for m in mem]}MiB "
                f"consistent {r.details.get('scaler_consistent')} wall {time.perf_counter()-t0:.0f}s")
    print(rows[-1], flush=True)

go("graph", "amp-bf16", 1, cuda_graphs=True)
go("graph", "amp-bf16", 2, cuda_graphs=True)
go("eager", "amp-bf16", 1)
go("eager", "amp-bf16", 2)
go("graph", "fp32", 2, cuda_graphs=True)
go("graph", "amp-fp16", 2, cuda_graphs=True)
print("\n".join(rows))
