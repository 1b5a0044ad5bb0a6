"""Merge pytest-benchmark storages written side by side (scripts/gpu/gpu-trust.sh's lanes, one
per GPU) into one, as if one runner had saved them in turn.

    python -m ampcore.history.merge DEST SOURCE...

Each SOURCE holds STORAGE/MACHINE/NNNN_*.json (STORAGE e.g. on-extra-sync) and log-*.txt
files. In DEST every storage's runs are numbered again 0001, 0002, ... in the order they were
saved (their ``datetime``), keeping the rest of each file's name; the logs are copied. Files
are created, never overwritten: a DEST that already holds a name stops the merge.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from collections import defaultdict
from pathlib import Path

NUMBERED = re.compile(r"^\d{4}_(?P<rest>.+\.json)$")


def saved_runs(sources: list[Path]) -> dict[Path, list[tuple[str, Path]]]:
    """(storage/machine) -> [(datetime, file)] over every source."""
    runs: dict[Path, list[tuple[str, Path]]] = defaultdict(list)
    for source in sources:
        for path in sorted(source.glob("*/*/*.json")):
            if NUMBERED.match(path.name):
                saved = json.loads(path.read_text(encoding="utf-8")).get("datetime", "")
                runs[path.parent.relative_to(source)].append((saved, path))
    return runs


def merge(dest: Path, sources: list[Path]) -> int:
    """Copy every source's numbered runs and logs into ``dest``; the number of runs copied.
    Raises FileExistsError at the first name ``dest`` already holds, never overwriting it."""
    count = 0
    for folder, entries in sorted(saved_runs(sources).items()):
        (dest / folder).mkdir(parents=True, exist_ok=True)
        for number, (_, path) in enumerate(sorted(entries), start=1):
            target = dest / folder / f"{number:04d}_{NUMBERED.match(path.name)['rest']}"
            with open(target, "x", encoding="utf-8") as out:
                out.write(path.read_text(encoding="utf-8"))
            count += 1
    for source in sources:
        for log in sorted(source.glob("log-*.txt")):
            if (dest / log.name).exists():
                raise FileExistsError(f"{dest / log.name} exists: not overwritten")
            shutil.copyfile(log, dest / log.name)
    return count


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    dest, sources = Path(argv[0]), [Path(a) for a in argv[1:]]
    print(f"merged {merge(dest, sources)} saved runs of {len(sources)} storages into {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
