"""The seed's results table, as Markdown (reads well in a terminal and in CI job summaries)."""

from __future__ import annotations

from collections.abc import Sequence

from ampcore.result import RunResult

METHOD_NAMES = {
    "fp32": "Regular (fp32)",
    "tf32": "TF32",
    "amp-fp16": "Mixed precision (fp16)",
    "amp-bf16": "Mixed precision (bf16)",
}


def _fmt(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def markdown_table(rows: Sequence[Sequence[str]], header: Sequence[str]) -> str:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(header), "| " + " | ".join("-" * w for w in widths) + " |",
                      *(line(r) for r in rows)])


def results_table(results: Sequence[RunResult], speedups: dict | None = None) -> str:
    """One table per workload: the seed's three columns, then speedup vs fp32 and more.

    ``speedups`` maps a run name to (ratio of median round times, CI low, CI high) where
    known; otherwise the speedup is the ratio of total training times.
    """
    speedups = speedups or {}
    blocks = []
    for workload in dict.fromkeys(r.workload for r in results):
        runs = [r for r in results if r.workload == workload]
        baseline = next((r for r in runs if r.precision == "fp32"), None)
        rows = []
        for r in runs:
            if r.name in speedups:
                ratio, low, high = speedups[r.name]
                text = f"{ratio:.2f}x [{low:.2f}, {high:.2f}]"
            elif baseline is not None:
                text = f"{baseline.train_time_s / r.train_time_s:.2f}x"
            else:
                text = "n/a"
            accuracy = _fmt(r.final_accuracy, ".3f") + ("" if r.accuracy_meaningful else " (random init)")
            memory = None if r.peak_memory_bytes is None else r.peak_memory_bytes / 2**20
            rows.append([METHOD_NAMES.get(r.precision, r.precision), _fmt(r.train_time_s, ".1f"),
                         accuracy, text, _fmt(r.samples_per_s, ",.0f"),
                         _fmt(memory, ",.0f"), str(r.skipped_steps)])
        header = ["Training Method", "Time Taken (s)", "Test Accuracy", "Speedup vs fp32",
                  "Samples/s", "Peak memory (MiB)", "Skipped steps"]
        profile, device = runs[0].profile, runs[0].environment.get("gpu") or runs[0].device
        blocks.append(f"### {workload} ({profile} profile, {device})\n\n" + markdown_table(rows, header))
    return "\n\n".join(blocks)
