"""Results as Markdown tables (they read well in a terminal and in CI job summaries): the
seed's table, the DistributedDataParallel table and the suite's session summary."""

from __future__ import annotations

from collections.abc import Sequence

from ampcore.core.registry import PRECISIONS, REFERENCE_PRECISION, WORKLOADS
from ampcore.judge.record import describe_loss_scale
from ampcore.judge.speedup import MEDIAN_ROUND, TRAINING_TIME, speedup_ratio
from ampcore.train.result import RunResult

DDP_HEADER = ["Training Method", "GPUs", "Time Taken (s)", "Samples/s", "Scaling efficiency",
              "Peak memory per rank (MiB)"]


def _seed_header(basis: str) -> list[str]:
    # The speedup column names its basis: ``ampcore run`` shows the ratio of training times,
    # the suite that of median rounds (``ampcore.judge.speedup``).
    return ["Training Method", "Time Taken (s)", "Test Accuracy",
            f"Speedup vs {REFERENCE_PRECISION} ({basis})", "Samples/s", "Peak memory (MiB)",
            "Skipped steps", "Loss scale"]


def method_name(precision: str) -> str:
    """The seed table's "Training Method" label of a precision mode (its id if unregistered)."""
    entry = PRECISIONS.get(precision)
    return entry.method_name if entry is not None else precision


def run_label(result: RunResult) -> str:
    """The "Training Method" cell of a run: its mode's label, and the regressions injected
    into it, so an injected run is never read as a clean one."""
    injected = result.run_config.injections
    label = method_name(result.precision)
    return f"{label} [injected: {', '.join(injected)}]" if injected else label


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def markdown_table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "| " + " | ".join("-" * w for w in widths) + " |",
                      *(line(r) for r in rows)])


def registry_order(results: Sequence[RunResult]) -> list[RunResult]:
    """Results in the registries' order of workloads, then of precisions (unknown ids last)."""
    def index(table: dict, key: str) -> int:
        return list(table).index(key) if key in table else len(table)

    return sorted(results, key=lambda r: (index(WORKLOADS, r.workload),
                                          index(PRECISIONS, r.precision)))


def _speedup_text(r: RunResult, baseline: RunResult | None, basis: str, speedups: dict) -> str:
    if r.name in speedups:
        ratio, low, high = speedups[r.name]
        return f"{ratio:.2f}x [{low:.2f}, {high:.2f}]"
    if baseline is not None:
        return f"{speedup_ratio(baseline.round_times_s, r.round_times_s, basis):.2f}x"
    return "n/a"


def results_table(results: Sequence[RunResult], basis: str = TRAINING_TIME,
                  speedups: dict | None = None) -> str:
    """One table per workload: the seed's three columns, then speedup vs the reference
    precision on ``basis`` and more.

    ``speedups`` maps a run name to (median-round ratio, CI low, CI high) where the suite
    measured one (``basis`` is then ``MEDIAN_ROUND``); other runs show the bare ratio.
    """
    speedups = speedups or {}
    header = _seed_header(basis)
    blocks = []
    for workload in dict.fromkeys(r.workload for r in results):
        runs = [r for r in results if r.workload == workload]
        baseline = next((r for r in runs if r.precision == REFERENCE_PRECISION), None)
        rows = []
        for r in runs:
            accuracy = _fmt(r.final_accuracy, ".3f")
            if not r.accuracy_meaningful:
                accuracy += " (random init)"
            memory = None if r.peak_memory_bytes is None else r.peak_memory_bytes / 2**20
            rows.append([run_label(r), _fmt(r.train_time_s, ".1f"), accuracy,
                         _speedup_text(r, baseline, basis, speedups),
                         _fmt(r.samples_per_s, ",.0f"),
                         _fmt(memory, ",.0f"), str(r.skipped_steps),
                         describe_loss_scale(r.grad_scaler) or "n/a"])
        profile, device = runs[0].profile, runs[0].environment.get("gpu") or runs[0].device
        blocks.append(f"### {workload} ({profile} profile, {device})\n\n"
                      + markdown_table(rows, header))
    return "\n\n".join(blocks)


def ddp_table(runs: Sequence[tuple[RunResult, float | None]]) -> str:
    """One table per workload of DistributedDataParallel runs, each with its scaling
    efficiency over the same precision on one GPU (None: not measured this session)."""
    blocks = []
    for workload in dict.fromkeys(r.workload for r, _ in runs):
        rows = []
        for r, efficiency in runs:
            if r.workload != workload:
                continue
            parts = r.merged.parts if r.merged is not None else ()
            peaks = [p.peak_memory_bytes for p in parts if p.peak_memory_bytes is not None]
            memory = ", ".join(f"{m / 2**20:,.0f}" for m in peaks)  # none on a CPU
            rows.append([run_label(r), str(r.world_size),
                         f"{r.train_time_s:.1f}", f"{r.samples_per_s:,.0f}",
                         _fmt(efficiency, ".2f"), memory or "n/a"])
        blocks.append(f"### {workload}, DistributedDataParallel\n\n"
                      + markdown_table(rows, DDP_HEADER))
    return "\n\n".join(blocks)


def suite_summary(results: Sequence[RunResult], speedups: dict,
                  ddp_runs: Sequence[tuple[RunResult, float | None]], notes: Sequence[str]) -> str:
    """The suite's end-of-session summary: the results and DDP tables, then ``notes`` and the
    round-to-round variation of every run."""
    results = registry_order(results)
    blocks = [results_table(results, MEDIAN_ROUND, speedups)] if results else []
    if ddp_runs:
        blocks.append(ddp_table(ddp_runs))
    lines = list(notes)
    if results:
        lines.append("Round CV: " + ", ".join(f"{r.name} {r.round_cv:.1%}" for r in results) + ".")
    return "\n\n".join(blocks) + "\n\n" + "\n".join(lines)
