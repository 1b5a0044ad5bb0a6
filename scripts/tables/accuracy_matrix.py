"""The accuracy tables of docs/TRUST.md, from the run files scripts/gpu/gpu-accuracy.sh saved.

Usage: python -m scripts.tables.accuracy_matrix CLEAN.json [INJECTED.json ...] [--tolerance GAP]

CLEAN.json holds N training seeds in fp32 and an AMP mode (`ampcore run --seeds N --json`),
each INJECTED.json the same seeds in the AMP mode with an injection. Judged with the project's
own rules, nothing restated:
- parity: the suite's rule (`gates.parity_verdict`), fp32 seed i against AMP seed i;
- A/A: `ampcore compare`'s accuracy verdict (`history.verdicts.field_verdict`, default
  threshold) of seed i + 1 against seed i as its baseline, per precision, cyclically: runs of
  unchanged code whose only difference is the training seed (a harder A/A than two sessions of
  one seed, which train the same trajectory), and of seed i against the other seeds as a
  baseline of several (whose spread raises the margin);
- detection: the same verdict, clean AMP seed i as the baseline of injected seed i.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

from ampcore.core.registry import REFERENCE_PRECISION, workload_entry
from ampcore.history.config import load_config
from ampcore.history.storage import Benchmark
from ampcore.history.verdicts import field_verdict
from ampcore.judge import gates
from ampcore.judge.accuracy import DEFAULT_MARGIN
from ampcore.judge.metrics import get_metric
from ampcore.judge.record import BenchmarkRecord
from ampcore.train.result import RunResult, read_json

ACCURACY = get_metric("accuracy")


def benchmark(run: RunResult) -> Benchmark:
    # The accuracy verdict reads the record only; the round statistics are placeholders.
    return Benchmark(key=run.name, name=run.name, group=run.workload, median=1.0, q1=None,
                     q3=None, min=None, max=None, rounds=None,
                     record=BenchmarkRecord.from_result(run))


def gate(baseline: list[RunResult], candidate: RunResult, threshold: float) -> str:
    return field_verdict(ACCURACY, [benchmark(b) for b in baseline], benchmark(candidate),
                         threshold).status


def by_precision(runs: list[RunResult]) -> dict[str, list[RunResult]]:
    groups: dict[str, list[RunResult]] = {}
    for run in runs:  # saved seed by seed, in seed order
        groups.setdefault(run.precision, []).append(run)
    return groups


def accuracies(runs: list[RunResult]) -> str:
    values = [r.heldout_accuracy for r in runs]
    return (f"{min(values):.4f}-{max(values):.4f} (mean {statistics.mean(values):.4f}, "
            f"sd {statistics.stdev(values):.4f})")


def parity_lines(fp32: list[RunResult], amp: list[RunResult], mode: str,
                 tolerance: float) -> list[str]:
    """The suite's parity rule, fp32 seed i against AMP seed i, and the held-out set."""
    floor = workload_entry(fp32[0].workload).config(fp32[0].profile).accuracy_floor
    verdicts = [gates.parity_verdict([f], [a], tolerance, floor) for f, a in zip(fp32, amp)]
    lines = [f"held-out set: {amp[0].heldout_samples} samples ({amp[0].heldout_source})",
             f"held-out evaluation, seconds per run: fp32 "
             f"{statistics.median(r.heldout_time_s for r in fp32):.2f}, {mode} "
             f"{statistics.median(r.heldout_time_s for r in amp):.2f}",
             f"parity ({mode} vs fp32, per seed, margin {tolerance}): "
             f"{sum(not v.passed for v in verdicts)} failures in {len(verdicts)} seeds"]
    for i, verdict in enumerate(verdicts):
        shown = [p for p in verdict.message.split("; ") if "disagreements" in p or "CI" in p]
        lines.append(f"  seed {i}: {'pass' if verdict.passed else 'FAIL'}: {'; '.join(shown)}")
    return lines


def gate_lines(clean: dict[str, list[RunResult]], mode: str, injected: list[Path],
               threshold: float) -> list[str]:
    """compare's accuracy gate per precision: A/A seed i vs seed i - 1 (a baseline of one
    seed: margin ``threshold``) and seed i vs the other seeds (a baseline of several: margin
    raised by their spread); then each injection against the clean run of its seed."""
    lines = [f"| runs | seeds | held-out accuracy | gate verdicts ({threshold} threshold) |",
             "| --- | --- | --- | --- |"]
    for name, runs in clean.items():
        baselines = {"seed i-1": [[runs[i - 1]] for i in range(len(runs))],
                     "the other seeds": [runs[:i] + runs[i + 1:] for i in range(len(runs))]}
        for label, bases in baselines.items():
            statuses = [gate(base, cand, threshold) for base, cand in zip(bases, runs)]
            lines.append(f"| A/A {name}, seed i vs {label} | {len(runs)} | {accuracies(runs)} "
                         f"| {statuses.count('regression')} alarms in {len(statuses)} "
                         "comparisons |")
    for path in injected:
        runs = by_precision(read_json(path))[mode]
        kinds = ",".join(runs[0].config.get("injections") or ()) or "none"
        statuses = [gate([base], cand, threshold) for base, cand in zip(clean[mode], runs)]
        lines.append(f"| {path.stem} ({kinds}) vs clean {mode}, seed by seed | {len(runs)} | "
                     f"{accuracies(runs)} | flagged {statuses.count('regression')} of "
                     f"{len(statuses)} |")
    return lines


def render(clean: Path, injected: list[Path], tolerance: float = DEFAULT_MARGIN) -> str:
    """The tables' text: parity per seed, then the gate's A/A and detection rows."""
    threshold = load_config().defaults["accuracy"]
    runs = by_precision(read_json(clean))
    fp32 = runs.pop(REFERENCE_PRECISION)
    (mode, amp), = runs.items()
    lines = parity_lines(fp32, amp, mode, tolerance)
    lines += gate_lines({REFERENCE_PRECISION: fp32, mode: amp}, mode, injected, threshold)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clean", type=Path)
    parser.add_argument("injected", type=Path, nargs="*")
    parser.add_argument("--tolerance", type=float, default=DEFAULT_MARGIN,
                        help="parity margin (the suite's --amp-acc-tol)")
    args = parser.parse_args(argv)
    print(render(args.clean, args.injected, args.tolerance), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
