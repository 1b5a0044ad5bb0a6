"""Where eager round times drift from, in one fresh process (docs/TRUST.md, issue 11).

Builds the suite's run (bert seed profile, eager steps, no probe), then times blocks of eager
rounds (the timed call of the suite: one epoch's steps, device drained at the end) around the
passes a run makes outside its rounds, so each pass's after-effect on the rounds shows:

    before -> sync-debug pass -> after-sync -> profiler pass -> after-profiler
           -> bytecode pass -> after-bytecodes -> dispatch pass -> after-dispatch

Per block: median wall ms per step, process CPU ms per step (every thread), the main thread's
CPU ms per step, involuntary context switches per step. It also names where a step synchronises:
the Python line of each sync-debug warning, and (after the blocks) the stack of the first sync.
Prints one JSON line; ``--table FILE...`` prints the lines of many processes as a table.

Usage: python scripts/eager-drift.py DATA_DIR BERT_MODEL [--label L] [--rounds N] [--profile P]
                                     [--precision P]
       python scripts/eager-drift.py --table LINES.jsonl
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time

BLOCKS = ("before", "after-sync", "after-profiler", "after-bytecodes", "after-dispatch")


def _time_rounds(exp, rounds: int) -> dict:
    from ampcore.measure.timing import synchronize

    walls, cpus, threads, switches = [], [], [], []
    for i in range(rounds):
        r = i % exp.n_rounds
        steps = len(exp.plan.rounds[r])
        synchronize(exp.device)
        ru = resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw
        wall, cpu, thread = time.perf_counter(), time.process_time(), time.thread_time()
        exp.train_round(r)  # drains the device at the end
        walls.append((time.perf_counter() - wall) / steps * 1e3)
        cpus.append((time.process_time() - cpu) / steps * 1e3)
        threads.append((time.thread_time() - thread) / steps * 1e3)
        switches.append((resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw - ru) / steps)
    return {"wall_ms": statistics.median(walls), "cpu_ms": statistics.median(cpus),
            "thread_ms": statistics.median(threads), "nivcsw": statistics.median(switches)}


def _sync_sites(step, device) -> list[str]:
    from ampcore.measure import counters

    with counters._SyncCounter(device) as syncs:
        step()
    return syncs.sites


def _sync_stack(step) -> list[str]:
    """Where the step's first sync is, as a Python stack: sync-debug mode "error" raises there
    (the aborted step is never timed)."""
    import traceback

    import torch

    torch.cuda.set_sync_debug_mode("error")
    try:
        step()
    except RuntimeError as exc:
        frames = traceback.extract_tb(exc.__traceback__)
        return [f"{f.filename}:{f.lineno} {f.name}" for f in frames][-8:]
    finally:
        torch.cuda.set_sync_debug_mode(0)
    return []


def measure(data_dir: str, bert: str, label: str, rounds: int, profile: str,
            precision: str = "amp-bf16") -> dict:
    import torch

    from ampcore.measure import counters
    from ampcore.options.request import build_request
    from ampcore.options.table import RUN, resolve
    from ampcore.train.run import Experiment

    # The run `ampcore run` would make of these options (device: cuda when available).
    settings = resolve(RUN, {"profile": profile, "data_dir": data_dir,
                             "bert_model": None if bert == "-" else bert,
                             "allow_random_init": True, "cuda_graphs": "off",
                             "eval_samples": "0"}, environ={})
    spec = build_request(settings).spec("bert", precision)
    out: dict = {"label": label, "pid": os.getpid(), "affinity": len(os.sched_getaffinity(0)),
                 "torch_threads": torch.get_num_threads(),
                 "teardown_cupti": os.environ.get("TEARDOWN_CUPTI")}
    with Experiment(spec) as exp:
        exp.trainer.probe_steps = 0
        exp.start()
        trainer, batch = exp.trainer, exp.plan.batches[0]

        def step():
            trainer._finish_step(0, trainer._train_step(batch))

        out["before"] = _time_rounds(exp, rounds)
        cuda = exp.device.type == "cuda"
        out["sync_sites"] = _sync_sites(step, exp.device) if cuda else []
        out["after-sync"] = _time_rounds(exp, rounds)
        if cuda:
            counters._count_kernels(step, exp.device)
        out["after-profiler"] = _time_rounds(exp, rounds)
        counters._count_python_ops(step)
        out["after-bytecodes"] = _time_rounds(exp, rounds)
        with counters._OpCounter():
            step()
        out["after-dispatch"] = _time_rounds(exp, rounds)
        out["sync_stack"] = _sync_stack(step) if cuda else []
    return out


def table(paths: list[str]) -> None:
    rows = [json.loads(line) for p in paths for line in open(p) if line.startswith("{")]
    print(f"{'label':>10} " + " ".join(f"{b:>24}" for b in BLOCKS))
    print(f"{'':>10} " + " ".join(f"{'wall/cpu/thr ms  csw':>24}" for _ in BLOCKS))
    for row in rows:
        cells = [f"{row[b]['wall_ms']:6.1f}/{row[b]['cpu_ms']:5.1f}/{row[b]['thread_ms']:5.1f} "
                 f"{row[b]['nivcsw']:4.1f}" for b in BLOCKS]
        print(f"{row['label']:>10} " + " ".join(f"{c:>24}" for c in cells))
    for label in sorted({r["label"] for r in rows}):
        for b in BLOCKS:
            walls = [r[b]["wall_ms"] for r in rows if r["label"] == label]
            print(f"{label:>10} {b:>16}: {len(walls)} processes, wall {min(walls):.1f}-"
                  f"{max(walls):.1f} ms/step ({(max(walls) / min(walls) - 1) * 100:.1f}% spread)")
    print("sync sites:", sorted({s for r in rows for s in r["sync_sites"]}))


if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["--table"]:
        table(args[1:])
    else:
        label = args[args.index("--label") + 1] if "--label" in args else "plain"
        n = int(args[args.index("--rounds") + 1]) if "--rounds" in args else 4
        profile = args[args.index("--profile") + 1] if "--profile" in args else "seed"
        precision = args[args.index("--precision") + 1] if "--precision" in args else "amp-bf16"
        print(json.dumps(measure(args[0], args[1], label, n, profile, precision)))
