"""Which saved files a command reads: directories, files, globs and ``file://`` URLs, and the
directories they lie in (the storage, which no output may enter)."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path

from ampcore.history.errors import Problem

DEFAULT_STORAGE = ".benchmarks"


def _json_files(path: Path) -> list[Path]:
    if path.is_dir():
        return [found for found in sorted(path.rglob("*.json")) if found.is_file()]
    return [path] if path.is_file() else []


def expand_paths(arguments: Sequence[str | Path]) -> tuple[list[Path], list[Problem]]:
    """Saved JSON files named by ``arguments``: directories (searched recursively), files,
    glob patterns, or ``file://`` storage URLs as pytest-benchmark takes them. Keeps order,
    drops repeats; an argument that names nothing is a problem."""
    files: dict[Path, Path] = {}  # resolved -> as named
    problems: list[Problem] = []
    for argument in arguments:
        text = str(argument).removeprefix("file://")
        path = Path(text)
        if path.is_dir() or path.is_file():
            found = _json_files(path)
        elif glob.has_magic(text):
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
            if not matches:
                problems.append(Problem(path, "the pattern matches no file"))
            found = [f for match in matches for f in _json_files(match)]
        else:
            problems.append(Problem(path, "no such file or directory"))
            continue
        for file in found:
            files.setdefault(file.resolve(), file)
    return list(files.values()), problems



def storage_roots(arguments: Sequence[str | Path]) -> list[Path]:
    """Directories a command reads from (a file's own directory), to keep its output out."""
    roots = []
    for argument in arguments or [DEFAULT_STORAGE]:
        text = str(argument).removeprefix("file://")
        if glob.has_magic(text):
            text = text[: min(text.index(c) for c in "*?[" if c in text)]
            text = text.rsplit("/", 1)[0] if "/" in text else "."
        path = Path(text)
        roots.append((path if path.is_dir() or not path.exists() else path.parent).resolve())
    return roots
