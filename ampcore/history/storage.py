"""Reading pytest-benchmark storage: saved runs, their benchmarks, and what could not be read.

Files are only ever opened for reading. A file that cannot be used is reported as a
``Problem`` naming it, and the others are still read."""

from __future__ import annotations

import glob
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ampcore.errors import AmpcoreError

DEFAULT_STORAGE = ".benchmarks"
# Major versions of pytest-benchmark whose saved format this reader was written against.
KNOWN_MAJOR_VERSIONS = (3, 4, 5)


class UnusableInputError(AmpcoreError):
    """Nothing usable to analyse: no files, no readable run, nothing in common."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    path: Path
    message: str
    severity: str = "error"  # "error": (part of) the file was skipped; "warning": read anyway

    def __str__(self) -> str:
        return f"{self.severity}: {self.path}: {self.message}"


@dataclass(frozen=True)
class Benchmark:
    """One benchmark of one saved run."""

    key: str  # fullname (stable across runs from the same rootdir), else name
    name: str
    group: str | None
    params: dict
    workload: str | None
    precision: str | None
    median: float
    q1: float | None
    q3: float | None
    min: float | None
    max: float | None
    rounds: tuple[float, ...] | None  # raw round seconds (stats.data); None when not saved
    extra_info: dict

    def extra(self, name: str) -> object:
        return self.extra_info.get(name)

    def counterpart_key(self, precision: str) -> str | None:
        """Key of the benchmark of the same workload at another precision, by rewriting the
        ``[workload-precision]`` id; None when this name does not follow that pattern."""
        if not self.precision or not self.key.endswith(f"-{self.precision}]"):
            return None
        return self.key[: -len(self.precision) - 1] + f"{precision}]"


@dataclass(frozen=True)
class Run:
    """One saved pytest-benchmark session."""

    path: Path
    datetime: datetime | None
    commit: str | None
    branch: str | None
    dirty: bool | None
    version: str | None
    machine_info: dict
    benchmarks: dict[str, Benchmark] = field(default_factory=dict)

    @property
    def environment(self) -> dict | None:
        """What ampcore recorded about the hardware and software (None if not an ampcore run)."""
        env = self.machine_info.get("ampcore")
        return env if isinstance(env, dict) else None

    @property
    def label(self) -> str:
        when = self.datetime.strftime("%Y-%m-%d %H:%M") if self.datetime else "no date"
        commit = (self.commit or "no commit")[:8]
        return f"{when} {commit}{'+dirty' if self.dirty else ''}"

    def sort_key(self) -> tuple:
        when = self.datetime or datetime.min.replace(tzinfo=timezone.utc)
        return (when, self.path.name, str(self.path))


def expand_paths(arguments: Sequence[str | Path]) -> tuple[list[Path], list[Problem]]:
    """Saved JSON files named by ``arguments``: directories (searched recursively), files,
    glob patterns, or ``file://`` storage URLs as pytest-benchmark takes them. Keeps order,
    drops repeats; an argument that names nothing is a problem."""
    files: list[Path] = []
    problems: list[Problem] = []
    seen: set[Path] = set()

    def add(path: Path) -> None:
        resolved = path.resolve()
        if resolved not in seen:
            seen.add(resolved)
            files.append(path)

    for argument in arguments:
        text = str(argument)
        if text.startswith("file://"):
            text = text[len("file://"):]
        path = Path(text)
        if path.is_dir():
            for found in sorted(path.rglob("*.json")):
                if found.is_file():
                    add(found)
        elif path.is_file():
            add(path)
        elif glob.has_magic(text):
            matches = sorted(Path(m) for m in glob.glob(text, recursive=True))
            for found in matches:
                if found.is_dir():
                    for inner in sorted(found.rglob("*.json")):
                        add(inner)
                elif found.is_file():
                    add(found)
            if not matches:
                problems.append(Problem(path, "the pattern matches no file"))
        else:
            problems.append(Problem(path, "no such file or directory"))
    return files, problems


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _parse_datetime(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))  # 3.10 rejects "Z"
    except ValueError:
        return None
    # pytest-benchmark wrote naive UTC timestamps before 4.0
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _major(version: object) -> int | None:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return None


def _benchmark(entry: object, index: int, path: Path,
               problems: list[Problem]) -> Benchmark | None:
    if not isinstance(entry, dict):
        problems.append(Problem(path, f"benchmarks[{index}] is not an object; skipped"))
        return None
    name = entry.get("name")
    label = name if isinstance(name, str) else f"benchmarks[{index}]"
    stats = entry.get("stats")
    if not isinstance(stats, dict) or _number(stats.get("median")) is None:
        problems.append(Problem(path, f"{label}: no numeric stats.median; benchmark skipped"))
        return None
    if not isinstance(name, str):
        problems.append(Problem(path, f"{label}: no name; benchmark skipped"))
        return None
    fullname = entry.get("fullname")
    key = fullname if isinstance(fullname, str) and fullname else name
    params = entry.get("params") if isinstance(entry.get("params"), dict) else {}
    extra = entry.get("extra_info") if isinstance(entry.get("extra_info"), dict) else {}
    if "extra_info" not in entry:
        problems.append(Problem(path, f"{name}: no extra_info; only time can be compared",
                                "warning"))
    rounds = None
    data = stats.get("data")
    if isinstance(data, list) and data:
        values = [_number(v) for v in data]
        if all(v is not None and v > 0 for v in values):
            rounds = tuple(values)
        else:
            problems.append(Problem(path, f"{name}: stats.data has non-numeric or non-positive "
                                    "values; using the stored median only", "warning"))
    workload = params.get("workload", extra.get("workload"))
    precision = params.get("precision", extra.get("precision"))
    return Benchmark(
        key=key, name=name,
        group=entry.get("group") if isinstance(entry.get("group"), str) else None,
        params=params,
        workload=workload if isinstance(workload, str) else None,
        precision=precision if isinstance(precision, str) else None,
        median=_number(stats["median"]), q1=_number(stats.get("q1")), q3=_number(stats.get("q3")),
        min=_number(stats.get("min")), max=_number(stats.get("max")),
        rounds=rounds, extra_info=extra)


def read_run(path: Path) -> tuple[Run | None, list[Problem]]:
    """Read one saved file: the run (None if unusable) and the problems met on the way."""
    problems: list[Problem] = []
    try:
        with path.open("rb") as handle:
            raw = handle.read()
    except OSError as exc:
        return None, [Problem(path, f"cannot be read: {exc.strerror or exc}")]
    if not raw.strip():
        return None, [Problem(path, "is empty")]
    try:
        document = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, [Problem(path, f"is not valid JSON (truncated or corrupt?): {exc}")]
    if not isinstance(document, dict) or not isinstance(document.get("benchmarks"), list):
        return None, [Problem(path, "is not a pytest-benchmark saved run (no 'benchmarks' list)")]

    version = document.get("version")
    major = _major(version)
    if version is None:
        problems.append(Problem(path, "no pytest-benchmark version recorded; read as 5.x",
                                "warning"))
    elif major not in KNOWN_MAJOR_VERSIONS:
        known = ", ".join(f"{v}.x" for v in KNOWN_MAJOR_VERSIONS)
        problems.append(Problem(path, f"written by pytest-benchmark {version}; this reader "
                                f"knows {known}; read anyway", "warning"))
    when = _parse_datetime(document.get("datetime"))
    if when is None:
        problems.append(Problem(path, "no valid 'datetime'; ordered by file name", "warning"))
    commit = document.get("commit_info") if isinstance(document.get("commit_info"), dict) else {}
    machine = document.get("machine_info") if isinstance(document.get("machine_info"), dict) else {}
    if "ampcore" not in machine:
        problems.append(Problem(path, "machine_info has no 'ampcore' environment; GPU, driver "
                                "and library versions cannot be checked", "warning"))

    benchmarks: dict[str, Benchmark] = {}
    for index, entry in enumerate(document["benchmarks"]):
        bench = _benchmark(entry, index, path, problems)
        if bench is None:
            continue
        if bench.key in benchmarks:
            problems.append(Problem(path, f"{bench.key} appears twice; the first is used"))
            continue
        benchmarks[bench.key] = bench
    if not benchmarks:
        problems.append(Problem(path, "has no usable benchmark"))
        return None, problems
    run = Run(path=path, datetime=when,
              commit=commit.get("id") if isinstance(commit.get("id"), str) else None,
              branch=commit.get("branch") if isinstance(commit.get("branch"), str) else None,
              dirty=commit.get("dirty") if isinstance(commit.get("dirty"), bool) else None,
              version=str(version) if version is not None else None,
              machine_info=machine, benchmarks=benchmarks)
    return run, problems


def read_runs(files: Iterable[Path]) -> tuple[list[Run], list[Problem]]:
    """Read every file; runs come back oldest first (by saved datetime, then file name)."""
    runs: list[Run] = []
    problems: list[Problem] = []
    for path in files:
        run, found = read_run(path)
        problems.extend(found)
        if run is not None:
            runs.append(run)
    runs.sort(key=Run.sort_key)
    return runs, problems


def load_history(arguments: Sequence[str | Path]) -> tuple[list[Run], list[Problem]]:
    """Expand ``arguments`` (default: ``.benchmarks``) and read every run found."""
    files, problems = expand_paths(arguments or [DEFAULT_STORAGE])
    runs, read_problems = read_runs(files)
    return runs, problems + read_problems


def storage_roots(arguments: Sequence[str | Path]) -> list[Path]:
    """Directories a command reads from (a file's own directory), to keep its output out."""
    roots = []
    for argument in arguments or [DEFAULT_STORAGE]:
        text = str(argument)
        text = text[len("file://"):] if text.startswith("file://") else text
        if glob.has_magic(text):
            text = text[: min(text.index(c) for c in "*?[" if c in text)]
            text = text.rsplit("/", 1)[0] if "/" in text else "."
        path = Path(text)
        roots.append((path if path.is_dir() or not path.exists() else path.parent).resolve())
    return roots
