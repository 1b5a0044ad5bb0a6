"""How far a run's median round drifts between fresh processes, and how far once K processes
are merged (``--processes K``): the measurement behind docs/TRUST.md's fresh-process rows.

    python scripts/process-drift.py run OUT N [DEADLINE_S] -- AMPCORE_RUN_ARGS...
        N fresh processes, one after another, each ``python -m ampcore run ARGS --json
        OUT/process-I.json`` (one workload and precision); none starts after DEADLINE_S.
    python scripts/process-drift.py table OUT [K ...]       (OUT and every folder under it)
    python scripts/process-drift.py resample STORAGE [K ...]
        An estimate, not a measurement: the median round of each saved session in the
        pytest-benchmark STORAGE (one per fresh process), 2,000 sets of 10 sessions each the
        median of K of them drawn without replacement; the median spread over the sets.
        The spread (max/min - 1) and CV of the per-process median round, then for each K the
        same over consecutive groups of K processes merged by ``merge_process_results``, the
        merge ``--processes K`` applies. N fresh single processes regrouped are K-process
        sessions: the same processes, so one call measures both.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

from ampcore.launch.fresh import merge_process_results
from ampcore.train.result import read_json


def run(out: Path, count: int, args: list[str], deadline_s: float = float("inf")) -> None:
    out.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    for index in range(count):
        if time.monotonic() - began > deadline_s:
            print(f"deadline: processes {index}-{count - 1} not started", flush=True)
            return
        target = out / f"process-{index:03d}.json"
        command = [sys.executable, "-m", "ampcore", "run", *args, "--no-progress",
                   "--json", str(target)]
        code = subprocess.call(command, stdout=subprocess.DEVNULL)
        print(f"process {index}: exit {code}", flush=True)


def median_round_ms(result) -> float:
    return result.step_time_s * 1e3


def spread(values: list[float]) -> str:
    cv = statistics.stdev(values) / statistics.mean(values) if len(values) > 1 else 0.0
    return (f"{len(values):3d} values, median step {min(values):.2f}-{max(values):.2f} ms, "
            f"spread {100 * (max(values) / min(values) - 1):.1f}%, CV {100 * cv:.1f}%")


def table(out: Path, ks: list[int]) -> None:
    runs = [read_json(p)[0] for p in sorted(out.rglob("process-*.json"))]
    if not runs:
        raise SystemExit(f"no process-*.json under {out}")
    print(f"{runs[0].name} ({runs[0].profile}, {runs[0].device}), "
          f"cuda_graphs={runs[0].config.get('cuda_graphs')}")
    print(f"K=1: {spread([median_round_ms(r) for r in runs])}")
    for k in ks:
        groups = [runs[i:i + k] for i in range(0, len(runs) - k + 1, k)]
        merged = [median_round_ms(merge_process_results(g)) for g in groups]
        print(f"K={k}: {spread(merged)}")


def resample(storage: Path, ks: list[int], sets: int = 2000, sessions: int = 10) -> None:
    medians = [bench["stats"]["median"] * 1e3 for path in sorted(storage.rglob("*.json"))
               for bench in json.loads(path.read_text())["benchmarks"]]
    print(f"{len(medians)} saved sessions, median round {min(medians):.1f}-{max(medians):.1f} ms")
    rng = random.Random(0)
    for k in ks:
        spreads = []
        for _ in range(sets):
            drawn = [statistics.median(rng.sample(medians, k)) for _ in range(sessions)]
            spreads.append(max(drawn) / min(drawn) - 1)
        print(f"K={k}: median spread over {sessions} sessions "
              f"{100 * statistics.median(spreads):.1f}% (estimate)")


def main(argv: list[str]) -> None:
    if len(argv) >= 3 and argv[0] == "run" and "--" in argv:
        split = argv.index("--")
        deadline = float(argv[3]) if split == 4 else float("inf")
        run(Path(argv[1]), int(argv[2]), argv[split + 1:], deadline)
    elif len(argv) >= 2 and argv[0] in ("table", "resample"):
        command = table if argv[0] == "table" else resample
        command(Path(argv[1]), [int(k) for k in argv[2:]] or [3, 5])
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
