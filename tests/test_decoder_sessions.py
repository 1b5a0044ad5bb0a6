"""The decoder and FP8 table of docs/PERFORMANCE.md, from the committed H200 sessions
(docs/gpu-runs/decoder-compiled: llama-125m and llama-wide, compiled, captured steps)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent
RUNS = ROOT / "docs" / "gpu-runs" / "decoder-compiled"


def table() -> dict[str, str]:
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "decoder-table.py"),
                          str(RUNS / "llama"), str(RUNS / "wide")],
                         capture_output=True, text=True, cwd=ROOT, check=True).stdout
    return {line.split(" | ")[0].strip("| ") + " " + line.split(" | ")[1]: line
            for line in out.splitlines() if line.startswith("| llama")} | {"text": out}


def test_compiled_llama_125m_in_bf16_reaches_the_mfu_target():
    row = table()["llama llama-125m compiled amp-bf16"]
    mfu = float(row.split(" | ")[6].rstrip("%"))
    assert mfu >= 40.0, row


def test_fp8_pays_on_the_wide_llama_and_keeps_bf16s_loss():
    out = table()["text"]
    assert "wide: claim llama llama-wide compiled >= 1.25x: holds" in out
    assert "wide: fp8 - amp-bf16 held-out loss +0.0483 (tolerance 0.05): within" in out
    assert "llama: fp8 - amp-bf16 held-out loss -0.0129 (tolerance 0.05): within" in out
    # At bert-base-like widths (llama-125m) float8 does not pay: reported, not asserted.
    assert "decoder-compiled/llama: fp8 vs amp-bf16 speed 0.98x" in out
