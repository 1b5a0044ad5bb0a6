"""The A/A and detection tables of docs/TRUST.md, from the storages scripts/gpu/gpu-trust.sh
saved (docs/runs/gpu/trust*).

Usage: python -m scripts.tables.trust_matrix STORE_ROOT [--mode on|off] [--drop-zero-counters]
       [--config PYPROJECT] [--names-from-benchmarks]

A/A: every ordered pair of the MODE-aa sessions (earlier one the baseline) judged as `ampcore
compare` judges them (its function, in-process), with the thresholds of --config or the
working directory's pyproject.toml; an alarm is any metric judged a regression. Detection:
each injected session against each A/A session as the baseline; a detection is a regression
verdict, and the table names the metrics that gave it.
--drop-zero-counters: a relative counter saved as 0 means the counter did not run (the Python
bytecode counter on Python 3.12 before it used sys.monitoring); it is set to null in temporary
copies so that compare judges the other metrics instead of skipping the benchmark.
"""

from __future__ import annotations

import argparse
import functools
import json
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

from ampcore.history.compare import REGRESSION, compare
from ampcore.history.config import GateConfig, load_config
from ampcore.history.storage import read_run

COUNTERS = ("python_ops_per_step", "aten_ops_per_step", "kernel_launches_per_step",
            "bytes_allocated_per_step")


@functools.lru_cache(maxsize=None)
def _run(path: Path):
    run, problems = read_run(path)
    if run is None:
        raise SystemExit(f"{path}: unreadable: {'; '.join(map(str, problems))}")
    return run


@functools.lru_cache(maxsize=None)
def _config(path: Path | None) -> GateConfig:
    return load_config(path)  # None: the nearest pyproject.toml, as ampcore compare reads it


def regressions(baseline: Path, candidate: Path, config: Path | None = None) -> list[str]:
    """The metrics ``ampcore compare BASELINE CANDIDATE`` judges regressions (in-process: the
    same function the command calls, without a process per pair)."""
    comparison = compare([_run(baseline)], _run(candidate), _config(config))
    if comparison.env_differences:
        raise SystemExit(f"compare {baseline.name} {candidate.name}: other environments: "
                         f"{'; '.join(comparison.env_differences)}")
    return [m.metric for v in comparison.verdicts for m in v.metrics if m.status == REGRESSION]


def drop_zero_counters(root: Path, zero_counters: bool = True, names: bool = False) -> Path:
    """A temporary copy of ``root`` with zero counters set to null and (``names``) every
    benchmark named from its ``benchmarks/`` folder on: sessions run from a copy of the tree
    in a subfolder saved names that start with that subfolder's path."""
    copy = Path(tempfile.mkdtemp(prefix="trust-")) / "store"
    shutil.copytree(root, copy)
    for path in copy.glob("*/*/*.json"):
        data = json.loads(path.read_text())
        for bench in data["benchmarks"]:
            for name in COUNTERS if zero_counters else ():
                if bench["extra_info"].get(name) == 0:
                    bench["extra_info"][name] = None
            if names and "benchmarks/" in bench["fullname"]:
                bench["fullname"] = bench["fullname"][bench["fullname"].index("benchmarks/"):]
        path.write_text(json.dumps(data))
    return copy


def aa_line(aa: list[Path], mode: str, config: Path | None = None) -> str:
    """Every ordered pair of A/A sessions (the earlier one the baseline): the alarms."""
    pairs = [(a, b) for i, a in enumerate(aa) for b in aa[i + 1:]]
    found = [regressions(a, b, config) for a, b in pairs]
    alarms = Counter(m for f in found for m in f)
    return (f"A/A ({mode}): {len(aa)} sessions, {len(pairs)} ordered pairs, "
            f"{sum(map(bool, found))} with an alarm; alarms by metric: {dict(alarms) or 'none'}")


def detection_lines(root: Path, aa: list[Path], mode: str,
                    config: Path | None = None) -> list[str]:
    """Each injected session against every A/A session: detections and the metrics flagged."""
    lines = ["| injected kind | detected | metrics flagged (times, over the A/A baselines) |",
             "| --- | --- | --- |"]
    for store in sorted(root.glob(f"{mode}-*")):
        if store.name == f"{mode}-aa":
            continue
        for candidate in sorted(store.glob("*/*.json")):
            found = [regressions(base, candidate, config) for base in aa]
            metrics = Counter(m for f in found for m in f)
            shown = ", ".join(f"{m} ({n})" for m, n in metrics.most_common()) or "none"
            lines.append(f"| {store.name[len(mode) + 1:]} | {sum(map(bool, found))} of "
                         f"{len(found)} | {shown} |")
    return lines


def render(root: Path, mode: str = "on", zero_counters_are_null: bool = False,
           config: Path | None = None, names_from_benchmarks: bool = False) -> str:
    """The tables' text for the MODE sessions under ``root``, judged with the thresholds of
    ``config`` (a pyproject.toml; None: compare's, from the working directory)."""
    if zero_counters_are_null or names_from_benchmarks:
        root = drop_zero_counters(root, zero_counters_are_null, names_from_benchmarks)
    aa = sorted(root.glob(f"{mode}-aa/*/*.json"))
    return "\n".join([aa_line(aa, mode, config), *detection_lines(root, aa, mode, config)]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--mode", default="on", choices=("on", "off"))
    parser.add_argument("--drop-zero-counters", action="store_true")
    parser.add_argument("--config", type=Path, help="pyproject.toml with the thresholds")
    parser.add_argument("--names-from-benchmarks", action="store_true",
                        help="name benchmarks from their benchmarks/ folder on")
    args = parser.parse_args(argv)
    print(render(args.root, args.mode, args.drop_zero_counters, args.config,
                 args.names_from_benchmarks), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
