"""The decoder and FP8 table of docs/PERFORMANCE.md from saved suite sessions.

Reads pytest-benchmark files (``--benchmark-autosave`` storages or single files) of the llama
and bert runs, prints one row per run (tokens/s, samples/s, model TFLOP/s, MFU of the measured
bf16 ceiling for the bf16 runs, peak memory, held-out loss), then judges them with the suite's
rules: the bootstrap interval of ``gates.speedup_verdict`` for each measured claim of
``registry.SPEEDUP_CLAIMS`` whose runs are there, and the loss gap of each fp8 run against
amp-bf16 of the same session (the tolerance of ``--amp-loss-tol``'s default).

Usage: python -m scripts.tables.decoder_table PATH...
"""

from __future__ import annotations

import dataclasses
import sys

from ampcore.core import registry
from ampcore.history.storage import load_history
from ampcore.measure import stats
from ampcore.options.table import OPTIONS

CEILING_TFLOPS = 780.0  # measured bf16 matmul ceiling of an H200 (docs/PERFORMANCE.md)


def load(paths: list[str]) -> list[dict]:
    """Each saved benchmark's record as a dict, with its rounds and its storage ("session")."""
    runs, problems = load_history(paths)
    if problems:
        raise SystemExit("\n".join(str(p) for p in problems))
    return [{**dataclasses.asdict(b.record), "rounds": b.rounds,
             "session": str(run.path.parent.parent)}
            for run in runs for b in run.benchmarks.values() if b.record is not None]


def row(r: dict) -> str:
    model = r["config"].get("model") or "bert-base"
    compiled = " compiled" if r["config"].get("compile") else ""
    # MFU of the bf16 ceiling, for the bf16 runs only: float8 matmuls have a higher one.
    mfu = f"{r['model_tflops'] / CEILING_TFLOPS:.1%}" if r["precision"] == "amp-bf16" else "-"
    tokens = f"{r['tokens_per_s']:,.0f}" if r.get("tokens_per_s") else "-"
    loss = r.get("heldout_loss") if r.get("heldout_loss") is not None else r.get("final_test_loss")
    return (f"| {r['workload']} {model}{compiled} | {r['precision']} | {r['train_time_s']:.1f} | "
            f"{tokens} | {r['samples_per_s']:,.0f} | {r['model_tflops']:.1f} | {mfu} | "
            f"{r['peak_memory_bytes'] / 2**20:,.0f} | {loss:.4f} |")


def ratio(over: dict, run: dict) -> str:
    value, low, high = stats.bootstrap_speedup_ci(over["rounds"], run["rounds"])
    return f"{value:.2f}x [{low:.2f}, {high:.2f}]"


def verdict_lines(session: str, workload: str, bf16: dict, fp8: dict,
                  tolerance: float) -> list[str]:
    """fp8 against amp-bf16 of one session: the speed ratio, the measured claim, the loss gap."""
    model = fp8["config"].get("model")
    lines = [f"{session}: fp8 vs amp-bf16 speed {ratio(bf16, fp8)}"]
    claim = registry.claim_for(workload, "fp8", model, bool(fp8["config"].get("compile")))
    if claim is not None:
        low = stats.bootstrap_speedup_ci(bf16["rounds"], fp8["rounds"])[1]
        lines.append(f"{session}: claim {claim.where} >= {claim.min_speedup}x: "
                     f"{'holds' if low >= claim.min_speedup else 'FAILS'} "
                     f"(lower bound {low:.2f}x)")
    if registry.workload_entry(workload).quality == "loss":
        gap = fp8["heldout_loss"] - bf16["heldout_loss"]
        lines.append(f"{session}: fp8 - amp-bf16 held-out loss {gap:+.4f} "
                     f"(tolerance {tolerance}): {'within' if gap <= tolerance else 'OUTSIDE'}")
    return lines


def render(paths: list[str]) -> str:
    """The table's text: one row per saved run, then each session's fp8 verdicts."""
    runs = load(paths)
    lines = ["| run | precision | training (s) | tokens/s | samples/s | model TFLOP/s | MFU "
             "| peak MiB | held-out loss |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
             *map(row, runs)]
    tolerance = next(o for o in OPTIONS if o.key == "loss_tol").default
    by_session: dict[tuple[str, str], dict[str, dict]] = {}
    for r in runs:
        by_session.setdefault((r["session"], r["workload"]), {})[r["precision"]] = r
    for (session, workload), precisions in by_session.items():
        bf16, fp8 = precisions.get("amp-bf16"), precisions.get("fp8")
        if bf16 is not None and fp8 is not None:
            lines += verdict_lines(session, workload, bf16, fp8, tolerance)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    print(render(sys.argv[1:] if argv is None else argv), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
