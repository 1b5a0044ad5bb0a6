"""Reading pytest-benchmark storage: saved runs, their benchmarks, and what could not be read.

Files are only ever opened for reading. A file that cannot be used is reported as a
``Problem`` naming it, and the others are still read."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from ampcore.history import integrity, ordering
from ampcore.history.errors import Problem, UnusableInputError
from ampcore.history.paths import DEFAULT_STORAGE, expand_paths, storage_roots
from ampcore.judge.record import BenchmarkRecord, RecordError, SessionRecord, number

__all__ = ["DEFAULT_STORAGE", "Benchmark", "Problem", "Run", "UnusableInputError",
           "expand_paths", "load_history", "read_run", "read_runs", "storage_roots"]

# Major versions of pytest-benchmark whose saved format this reader was written against.
KNOWN_MAJOR_VERSIONS = (3, 4, 5)
# Other JSON beside the runs (a compare or calibrate --json output, which has a "benchmarks"
# list too, an `ampcore run --json` output) is no damage: a note, never an error that would
# block the gate. pytest-benchmark writes every one of these keys into a saved run.
NOT_A_RUN = ("is not a pytest-benchmark saved run (no 'benchmarks' list beside "
             "'machine_info', 'commit_info', 'datetime' or 'version'); ignored")
RUN_HEADER = ("machine_info", "commit_info", "datetime", "version")


@dataclass(frozen=True)
class Benchmark:
    """One benchmark of one saved run: pytest-benchmark's timing and ampcore's record."""

    key: str  # fullname (stable across runs from the same rootdir), else name
    name: str
    group: str | None
    median: float
    q1: float | None
    q3: float | None
    min: float | None
    max: float | None
    rounds: tuple[float, ...] | None  # raw round seconds (stats.data); None when not saved
    record: BenchmarkRecord | None  # None: saved without one, only time can be compared

    @property
    def workload(self) -> str | None:
        return self.record.workload if self.record else None

    @property
    def precision(self) -> str | None:
        return self.record.precision if self.record else None


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
    def file_name(self) -> str:
        """The saved file's name, as messages name the run ("a run" for one built in memory)."""
        return self.path.name if self.path is not None else "a run"

    @property
    def session(self) -> SessionRecord | None:
        """What the session recorded about itself (None: not an ampcore run). ``read_run``
        has refused a file whose session record this code cannot read."""
        try:
            return SessionRecord.from_machine_info(self.machine_info)
        except RecordError:
            return None

    @property
    def environment(self) -> dict | None:
        """What ampcore recorded about the hardware, software and step mode (None if not an
        ampcore run)."""
        return self.session.fields() if self.session is not None else None

    @property
    def label(self) -> str:
        when = self.datetime.strftime("%Y-%m-%d %H:%M") if self.datetime else "no date"
        commit = (self.commit or "no commit")[:8]
        return f"{when} {commit}{'+dirty' if self.dirty else ''}"


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


def _record(entry: dict, name: str, path: Path,
            problems: list[Problem]) -> tuple[bool, BenchmarkRecord | None]:
    """(usable, record): a benchmark saved without extra_info is usable for time alone; one
    whose record is malformed or of a newer schema is not used at all, never half-read."""
    extra = entry.get("extra_info")
    if extra is None or extra == {}:
        what = "no extra_info" if extra is None else "an empty extra_info (not an ampcore run?)"
        problems.append(Problem(path, f"{name}: {what}; only time can be compared", "warning"))
        return True, None
    if not isinstance(extra, dict):
        problems.append(Problem(path, f"{name}: extra_info is not an object; benchmark skipped"))
        return False, None
    why = integrity.figure_problem(extra)
    if why:
        problems.append(Problem(path, f"{name}: {why}; benchmark skipped"))
        return False, None
    try:
        record = BenchmarkRecord.from_extra_info(extra)
    except RecordError as exc:
        problems.append(Problem(path, f"{name}: {exc}; benchmark skipped"))
        return False, None
    why = integrity.record_problem(record)
    if why:
        problems.append(Problem(path, f"{name}: {why}; benchmark skipped"))
        return False, None
    return True, record


def _rounds(stats: dict, name: str, path: Path,
            problems: list[Problem]) -> tuple[float, ...] | None:
    data = stats.get("data")
    if not isinstance(data, list) or not data:
        return None
    values = [number(v) for v in data]
    if all(v is not None and v > 0 for v in values):
        return tuple(values)
    problems.append(Problem(path, f"{name}: stats.data has non-numeric or non-positive "
                            "values; using the stored median only", "warning"))
    return None


def _benchmark(entry: object, index: int, path: Path,
               problems: list[Problem]) -> Benchmark | None:
    if not isinstance(entry, dict):
        problems.append(Problem(path, f"benchmarks[{index}] is not an object; skipped"))
        return None
    name = entry.get("name")
    label = name if isinstance(name, str) else f"benchmarks[{index}]"
    stats = entry.get("stats")
    why = (integrity.median_problem(stats) or integrity.rounds_problem(stats)
           if isinstance(stats, dict) else "no stats object")
    if why:
        problems.append(Problem(path, f"{label}: {why}; benchmark skipped"))
        return None
    if not isinstance(name, str):
        problems.append(Problem(path, f"{label}: no name; benchmark skipped"))
        return None
    usable, record = _record(entry, name, path, problems)
    if not usable:
        return None
    fullname = entry.get("fullname")
    group = entry.get("group")
    return Benchmark(
        key=fullname if isinstance(fullname, str) and fullname else name, name=name,
        group=group if isinstance(group, str) else None,
        median=number(stats["median"]), q1=integrity.positive(stats.get("q1")),
        q3=integrity.positive(stats.get("q3")), min=integrity.positive(stats.get("min")),
        max=integrity.positive(stats.get("max")),
        rounds=_rounds(stats, name, path, problems), record=record)


def _document(path: Path) -> tuple[dict | None, str | None]:
    """The parsed saved run, or why there is none."""
    try:
        with path.open("rb") as handle:
            raw = handle.read()
    except OSError as exc:
        return None, f"cannot be read: {exc.strerror or exc}"
    if not raw.strip():
        return None, "is empty"
    try:
        document = json.loads(raw)
    except RecursionError:
        return None, "is nested too deeply to be a saved run (JSON depth over Python's limit)"
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, an over-long integer
        return None, f"is not valid JSON (truncated or corrupt?): {exc}"
    if (not isinstance(document, dict) or not isinstance(document.get("benchmarks"), list)
            or not any(key in document for key in RUN_HEADER)):
        return None, NOT_A_RUN
    return document, None


def _header_problems(document: dict, path: Path) -> list[Problem]:
    """Warnings about the run as a whole; the file is read anyway."""
    problems = []
    version = document.get("version")
    if version is None:
        problems.append(Problem(path, "no pytest-benchmark version recorded; read as 5.x",
                                "warning"))
    elif _major(version) not in KNOWN_MAJOR_VERSIONS:
        known = ", ".join(f"{v}.x" for v in KNOWN_MAJOR_VERSIONS)
        problems.append(Problem(path, f"written by pytest-benchmark {version}; this reader "
                                f"knows {known}; read anyway", "warning"))
    if _parse_datetime(document.get("datetime")) is None:
        number = ordering.run_number(path)
        where = (f"placed by its number {number} in its directory" if number is not None else
                 "no number (NNNN_) in its name either: ordered before every dated run")
        problems.append(Problem(path, f"no valid 'datetime'; {where}", "warning"))
    machine = document.get("machine_info")
    if not isinstance(machine, dict) or "ampcore" not in machine:
        problems.append(Problem(path, "machine_info has no 'ampcore' environment; GPU, driver "
                                "and library versions cannot be checked", "warning"))
    return problems


def read_run(path: Path) -> tuple[Run | None, list[Problem]]:
    """Read one saved file: the run (None if unusable) and the problems met on the way."""
    document, error = _document(path)
    if document is None:
        return None, [Problem(path, error, "note" if error == NOT_A_RUN else "error")]
    try:
        session = SessionRecord.from_machine_info(document.get("machine_info"))
    except RecordError as exc:
        return None, [Problem(path, f"{exc}; file skipped")]
    interrupted = integrity.interruption(document, session)
    if interrupted:
        return None, [Problem(path, f"interrupted session: {interrupted}; file skipped")]
    problems = _header_problems(document, path)
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
    commit = document.get("commit_info") if isinstance(document.get("commit_info"), dict) else {}
    machine = document.get("machine_info") if isinstance(document.get("machine_info"), dict) else {}
    version = document.get("version")
    run = Run(path=path, datetime=_parse_datetime(document.get("datetime")),
              commit=commit.get("id") if isinstance(commit.get("id"), str) else None,
              branch=commit.get("branch") if isinstance(commit.get("branch"), str) else None,
              dirty=commit.get("dirty") if isinstance(commit.get("dirty"), bool) else None,
              version=str(version) if version is not None else None,
              machine_info=machine, benchmarks=benchmarks)
    return run, problems


def read_runs(files: Iterable[Path]) -> tuple[list[Run], list[Problem]]:
    """Read every file; runs come back oldest first (``ordering.order_runs``: by number
    within a directory, by date between directories)."""
    runs: list[Run] = []
    problems: list[Problem] = []
    for path in files:
        run, found = read_run(path)
        problems.extend(found)
        if run is not None:
            runs.append(run)
    runs, order_problems = ordering.order_runs(runs)
    return runs, problems + order_problems


def load_history(arguments: Sequence[str | Path]) -> tuple[list[Run], list[Problem]]:
    """Expand ``arguments`` (default: ``.benchmarks``) and read every run found."""
    files, problems = expand_paths(arguments or [DEFAULT_STORAGE])
    runs, read_problems = read_runs(files)
    return runs, problems + read_problems
