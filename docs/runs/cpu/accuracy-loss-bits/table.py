"""The table of README.md from the runs in this folder: each injected run's held-out accuracy
against the clean run, judged by the accuracy gate's paired test (margin 0.005, alpha 0.02).
Run from the repository root: python docs/runs/cpu/accuracy-loss-bits/table.py"""

from pathlib import Path

from ampcore.judge.accuracy import judge_paired
from ampcore.train.result import read_json

HERE = Path(__file__).parent
RUNS = [("clean", "none"), ("bits14", "accuracy-loss:14"), ("bits13", "accuracy-loss:13"),
        ("bits12", "accuracy-loss:12"), ("bits11", "accuracy-loss:11"),
        ("bits10", "accuracy-loss:10"), ("bits9", "accuracy-loss:9"),
        ("bits7", "accuracy-loss (7 bits: bfloat16's)")]

clean = read_json(HERE / "clean.json")[0]
print("| injection | held-out accuracy (1,000) | change | b / c | one-sided McNemar p | gate |")
print("| --- | --- | --- | --- | --- | --- |")
for name, label in RUNS:
    run = read_json(HERE / f"{name}.json")[0]
    judged = judge_paired([(clean.heldout(), run.heldout())], 0.005, 0.02)
    table = judged.paired
    print(f"| `{label}` | {run.heldout_accuracy:.3f} | "
          f"{run.heldout_accuracy - clean.heldout_accuracy:+.3f} | {table.b} / {table.c} | "
          f"{table.p_worse:.3g} | {'flagged' if judged.worse else 'not flagged'} |")
