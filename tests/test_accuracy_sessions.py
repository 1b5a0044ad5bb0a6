"""The accuracy tables of docs/TRUST.md, from the committed H200 runs (docs/gpu-runs/accuracy):
10 training seeds of pretrained all-MiniLM-L6-v2 in fp32 and amp-bf16, and the same seeds with
the accuracy-loss injection, judged by the suite's parity rule and compare's accuracy gate."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
RUNS = ROOT / "docs" / "gpu-runs" / "accuracy"


def test_parity_and_the_gate_on_the_h200_seeds():
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "accuracy-matrix.py"), str(RUNS / "clean.json"),
         str(RUNS / "injected-block-outputs-e5m2.json"),
         str(RUNS / "injected-master-weights-bf16.json")],
        capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert "parity (amp-bf16 vs fp32, per seed, tolerance 0.03): 0 failures in 10 seeds" in out
    assert out.count("| 0 alarms in 10 comparisons |") == 2  # fp32 and amp-bf16 A/A
    lines = {line.split(" (")[0].strip("| "): line for line in out.splitlines()}
    # Block outputs rounded to e5m2 left accuracy where it was: nothing to flag.
    assert "flagged 0 of 10" in lines["injected-block-outputs-e5m2"]
    # Master weights rounded to bfloat16 lost ~0.27 of accuracy: flagged in every seed.
    assert "flagged 10 of 10" in lines["injected-master-weights-bf16"]
