"""One line per saved suite session of scripts/gpu/gpu-trust.sh: what each step part measured.

Usage: python -m scripts.tables.trust_table STORE_ROOT   (the directory holding <mode>-<name>/
       storages); gpu/gpu-trust.sh runs it at its end
Reads pytest-benchmark's saved JSON directly, so it runs wherever Python does.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

COLUMNS = ("session", "file", "samples/s", "round ms", "step ms", "host ms", "eager ms",
           "aten", "kernels", "syncs", "casts", "py ops", "MiB/step", "peak MiB")


def rows(root: Path) -> list[list[str]]:
    found = []
    for path in sorted(root.glob("*/*/*.json")):
        data = json.loads(path.read_text())
        for bench in data.get("benchmarks", []):
            r = bench.get("extra_info") or {}
            found.append([f"{path.parts[-3]}/{r.get('precision', '?')}", path.name[:4],
                          _f(r.get("samples_per_s"), ".0f"),
                          _f(bench["stats"]["median"] * 1e3, ".1f"),
                          _f(_ms(r.get("step_time_s")), ".2f"),
                          _f(_ms(r.get("host_step_median_s")), ".2f"),
                          _f(_ms(r.get("eager_step_median_s")), ".2f"),
                          _f(r.get("aten_ops_per_step"), "d"),
                          _f(r.get("kernel_launches_per_step"), "d"),
                          _f(r.get("syncs_per_step"), "d"), _f(r.get("casts_per_step"), "d"),
                          _f(r.get("python_ops_per_step"), "d"),
                          _f(_mib(r.get("bytes_allocated_per_step")), ".1f"),
                          _f(_mib(r.get("peak_memory_bytes")), ".0f")])
    return found


def _ms(value: float | None) -> float | None:
    return None if value is None else value * 1e3


def _mib(value: float | None) -> float | None:
    return None if value is None else value / 2**20


def _f(value: object, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def render(root: Path) -> str:
    """The table's text, columns right-aligned."""
    table = [list(COLUMNS), *rows(root)]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    return "".join("  ".join(cell.rjust(w) for cell, w in zip(row, widths)) + "\n"
                   for row in table)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    print(render(Path(argv[0])), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
