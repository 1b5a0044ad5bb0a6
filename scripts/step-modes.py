"""Eager vs CUDA-graph steps on the seed profile's bert (random init), one GPU; a table last.

Usage: python scripts/step-modes.py DATA_DIR BERT_CONFIG_DIR OUT_DIR VARIANTS
  VARIANTS: comma-separated labels below (eager, graph, eager2, graph2, pinned, graphcompile) or all.
Each variant is one ``run_experiment`` (what ``ampcore run`` does), written to OUT_DIR as JSON.
The figures in docs/PERFORMANCE.md ("Step modes") come from this script.
"""
import os
import sys
import time
import traceback
from pathlib import Path
from ampcore.run import RunSpec, run_experiment
from ampcore.result import write_json

data, bert, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
which = sys.argv[4].split(",")
rows = []
def go(label, precision, **kw):
    if label.split(":")[0] not in which and "all" not in which:
        return
    pin = kw.pop("pin", None)
    saved_aff = os.sched_getaffinity(0)
    if pin: os.sched_setaffinity(0, pin)
    spec = RunSpec(workload="bert", precision=precision, profile="seed", device="cuda",
                   data_dir=data, bert_model=bert, allow_random_init=True, **kw)
    t0 = time.perf_counter()
    try:
        r = run_experiment(spec)
    except Exception as exc:
        traceback.print_exc()
        rows.append((label, precision, f"FAILED: {type(exc).__name__}: {str(exc)[:200]}"))
        return
    finally:
        if pin: os.sched_setaffinity(0, saved_aff)
    wall = time.perf_counter() - t0
    write_json([r], out / f"{label.replace(':','-')}-{precision}.json")
    rt = r.round_times_s
    rows.append((label, precision, f"{r.samples_per_s:8.1f} sps  train {r.train_time_s:6.2f}s  cv {r.round_cv*100:5.2f}%  "
                 f"rounds ms {min(rt)*1e3:.0f}-{max(rt)*1e3:.0f}  loss0 {r.train_losses[0]:.4f} {r.train_losses[1]:.4f} last {r.final_train_loss:.4f}  "
                 f"mem {r.peak_memory_bytes/2**20:.0f}MiB skipped {r.skipped_steps} wall {wall:.0f}s"))
    print(rows[-1], flush=True)

go("eager", "amp-bf16")
go("graph", "amp-bf16", cuda_graphs=True)
go("graph", "amp-fp16", cuda_graphs=True)
go("eager2", "amp-bf16")
go("graph2", "amp-bf16", cuda_graphs=True)
go("pinned", "amp-bf16", pin={2, 3})
go("eager", "amp-fp16")
go("graph", "fp32", cuda_graphs=True)
go("eager", "fp32")
go("graphcompile", "amp-bf16", cuda_graphs=True, compile=True)
print("\n".join(" | ".join(r) for r in rows))
