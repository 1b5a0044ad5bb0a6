"""Where the committed run data lives: the one place the tests name it (docs/runs/README.md
says what each folder holds)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNS = ROOT / "docs" / "runs"
GPU_RUNS = RUNS / "gpu"  # saved on H200 machines: pytest-benchmark storages, `ampcore run` JSON
CPU_RUNS = RUNS / "cpu"  # saved on a CPU (the fresh-process drift of docs/TRUST.md)
