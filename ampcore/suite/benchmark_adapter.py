"""The only module that touches pytest-benchmark beyond its documented fixture API.

pytest-benchmark (checked against 5.2) documents the ``benchmark`` fixture (calling it,
``pedantic()``, ``group``, ``extra_info``, ``disabled``) and its hooks; the suite needs four
things it has no public API for, each kept here with why:

- whether timing is on for the whole session, read outside any benchmark test (the speedup
  assertion, the summary): pytest-benchmark keeps it only in ``config._benchmarksession
  .disabled`` (set by ``--benchmark-disable``, by pytest-xdist, or without ``statistics``).
  Inside a benchmark test the fixture's public ``benchmark.disabled`` says the same.
- keeping the raw rounds of ampcore's benchmarks in saved runs, whatever
  ``--benchmark-save-data`` said and without touching the session's other benchmarks: the
  documented ``pytest_benchmark_update_json`` hook hands over the benchmarks (whose round
  times, ``stats.data``, have no public accessor) and the JSON about to be saved
  (``keep_raw_rounds``).
- one saving session at a time per storage: pytest-benchmark numbers a saved file by counting
  the storage's files, so two sessions saving at once can take one number and overwrite each
  other. ``lock_storage`` (from ``pytest_benchmark_update_json``, just before the save) holds a
  lock file in the storage, on ``session.storage.path``; ``release_storage`` after the save.
- a save that leaves no truncated file (``save_atomically``): pytest-benchmark writes straight
  into the numbered file (``FileStorage.save``, naming it from ``_next_num``); a failed write's
  partial file is removed and the session written to a fallback file. The storage is checked
  before anything trains (``storage_problem``: a folder, writable, with room).
- sessions that would save nothing: pytest-benchmark times nothing under pytest-xdist, so
  ``-n`` with ``--benchmark-autosave`` / ``--benchmark-save`` is refused
  (``parallel_save_problem``) instead of passing with an empty history.
- a run's rounds as the benchmark's rounds: ``train_timed`` drives ``pedantic()`` over an
  ``ampcore.train.run.Experiment``'s rounds (one benchmark round per training round, the
  checks and evaluation in the untimed ``setup``) and reads the raw round times back from
  ``benchmark.stats.stats.data``, for which pytest-benchmark has no public accessor.
- rounds timed elsewhere (a DDP run's workers, fresh processes) saved as the benchmark's
  rounds: ``record_rounds`` replays them through ``pedantic()`` with a clock that reports them
  (the fixture's ``_timer``; pytest-benchmark has no API for times it did not take). The saved
  ``options.timer`` names that clock.

The group a benchmark is saved under must be set before ``pedantic()``: pytest-benchmark copies
``benchmark.group`` into the stats it makes then (``set_group``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:  # torch only when something trains: the plugin loads this module
    from ampcore.train.result import RunResult
    from ampcore.train.run import Experiment

SAVE_LOCK = ".ampcore-save.lock"  # in the storage's root, beside the machine folders
SAVE_WAIT_S = 600.0  # a save takes well under a second; longer means a stuck session
_LOCK = pytest.StashKey[object]()

NOT_ACTIVE = "pytest-benchmark is not active (not installed, or disabled with -p no:benchmark)"

# pytest-benchmark's header lists its calibration defaults, and it has no hook to change that
# line; the suite's benchmarks run ``pedantic()`` rounds (``train_timed``), which use none of
# them but the timer and disable_gc, so the collection report says so under it.
HEADER_NOTE = ("ampcore: the matrix's benchmarks time one pedantic round per block of training "
               "steps (the profile's rounds and warmup steps); of the benchmark defaults above "
               "only timer and disable_gc apply to them (rounds timed in other processes keep "
               "their own clock), not min_rounds, min_time, max_time, calibration_precision or "
               "warmup")


def header_note(config: pytest.Config) -> str | None:
    """``HEADER_NOTE`` when pytest-benchmark is active (it printed its header)."""
    return HEADER_NOTE if getattr(config, "_benchmarksession", None) is not None else None


def timing_state(config: pytest.Config) -> tuple[bool, str]:
    """(timing enabled, why not) for the session."""
    session = getattr(config, "_benchmarksession", None)
    if session is None:
        return False, NOT_ACTIVE
    if getattr(session, "disabled", False):
        if config.pluginmanager.hasplugin("xdist") and getattr(config.option, "numprocesses", None):
            return False, ("timing is disabled under pytest-xdist (pytest-benchmark cannot "
                           "time in parallel)")
        return False, "timing is disabled (--benchmark-disable)"
    return True, ""


def parallel_save_problem(config: pytest.Config) -> str | None:
    """Why this session would save nothing although asked to: pytest-xdist workers (-n) and
    pytest-benchmark's saving; None when it can save what it times."""
    parallel = bool(getattr(config.option, "numprocesses", None)) or (
        config.getoption("dist", "no") not in ("no", None))
    saving = config.getoption("benchmark_autosave", False) or config.getoption("benchmark_save",
                                                                               None)
    if not (parallel and saving):
        return None
    return ("-n (pytest-xdist) cannot be combined with --benchmark-autosave or --benchmark-save: "
            "pytest-benchmark times nothing under xdist, so the session would save nothing. "
            "Run the benchmarks without -n (the AMP suite refuses -n in any case: "
            "ampcore.suite.guards)")


def lock_storage(config: pytest.Config, wait_s: float = SAVE_WAIT_S) -> None:
    """Hold the storage's save lock until ``release_storage``: another session saving into the
    same storage now makes this one wait (saying so) instead of taking its file number."""
    from filelock import FileLock, Timeout

    session = getattr(config, "_benchmarksession", None)
    path = getattr(getattr(session, "storage", None), "path", None)
    if (path is None or _LOCK in config.stash
            or not (getattr(session, "save", None) or getattr(session, "autosave", None))):
        return
    Path(path).mkdir(parents=True, exist_ok=True)
    lock = FileLock(Path(path) / SAVE_LOCK)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"ampcore: another session is saving into {path}; waiting for it (lock "
              f"{lock.lock_file})", file=sys.stderr, flush=True)
        lock.acquire(timeout=wait_s)
    config.stash[_LOCK] = lock


MIN_FREE_BYTES = 64 * 2**20  # a saved session with raw rounds is well under a MiB
_SAVE_FAILED = pytest.StashKey[str]()


def storage_problem(config: pytest.Config) -> str | None:
    """Why this session could not save into its storage (a file where the folder should be, a
    folder it may not write, a full disk), checked before anything trains; None: it can."""
    import os
    import shutil

    session = getattr(config, "_benchmarksession", None)
    path = getattr(getattr(session, "storage", None), "path", None)
    if path is None or not (getattr(session, "save", None) or getattr(session, "autosave", None)):
        return None
    path = Path(path)
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        return (f"--benchmark-storage: {existing} is a file, not a folder; point the storage at "
                "a folder (it is created when missing)")
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"--benchmark-storage: {existing} is not writable; choose a folder you can write"
    free = shutil.disk_usage(existing).free
    if free < MIN_FREE_BYTES:
        return (f"--benchmark-storage: {existing} has {free / 2**20:.1f} MiB free; the session's "
                f"file needs room (at least {MIN_FREE_BYTES // 2**20} MiB): free some space")
    return None


def save_atomically(config: pytest.Config) -> None:
    """Make the coming save leave no truncated file: pytest-benchmark writes the session straight
    into its numbered file, so a full disk leaves a half-written JSON in the history. On a failed
    write the partial file is removed and the session goes to a fallback file, whose path is
    printed; ``save_failure`` then says so (the session fails)."""
    import json
    import tempfile

    session = getattr(config, "_benchmarksession", None)
    storage = getattr(session, "storage", None)
    if storage is None or not hasattr(storage, "_next_num") or getattr(storage, "_ampcore", False):
        return
    original = storage.save

    def save(output_json: dict, name: str) -> None:
        target = storage.get(f"{storage._next_num}_{name}.json")  # as FileStorage.save names it
        try:
            original(output_json, name)
        except OSError as exc:
            target.unlink(missing_ok=True)
            fd, fallback = tempfile.mkstemp(prefix="ampcore-session-", suffix=".json")
            with open(fd, "w", encoding="utf-8") as handle:
                json.dump(output_json, handle)
            config.stash[_SAVE_FAILED] = (
                f"ampcore: the session could not be saved into {target.parent} ({exc}); nothing "
                f"half-written was left there, and the session is in {fallback}: move it into "
                "the storage once there is room")
            print(config.stash[_SAVE_FAILED], file=sys.stderr, flush=True)

    storage.save, storage._ampcore = save, True


def save_failure(config: pytest.Config) -> str | None:
    """The message of a save that failed (``save_atomically``); None when none did."""
    return config.stash.get(_SAVE_FAILED, None)


def release_storage(config: pytest.Config) -> None:
    """Release what ``lock_storage`` holds (nothing when it holds nothing)."""
    lock = config.stash.get(_LOCK, None)
    if lock is not None:
        lock.release(force=True)
        del config.stash[_LOCK]


def keep_raw_rounds(benchmarks: Sequence, output_json: dict,
                    wanted: Callable[[Mapping], bool]) -> None:
    """Add their round times (``stats.data``, as ``--benchmark-save-data`` would) to the saved
    benchmarks of ``output_json`` whose ``extra_info`` is ``wanted``; call it from the
    ``pytest_benchmark_update_json`` hook. The rest are saved as the command line said."""
    rounds = {b.fullname: b.stats.data for b in benchmarks
              if getattr(getattr(b, "stats", None), "data", None) is not None}
    for saved in output_json.get("benchmarks", ()):
        stats = saved.get("stats")
        if (isinstance(stats, dict) and "data" not in stats and saved.get("fullname") in rounds
                and wanted(saved.get("extra_info") or {})):
            stats["data"] = list(rounds[saved["fullname"]])


def set_group(benchmark, group: str) -> None:
    """The group a benchmark is compared and saved under; before ``pedantic()``."""
    benchmark.group = group


def add_extra_info(benchmark, info: dict) -> None:
    """``extra_info`` is shared with the saved stats, so it is updated, never replaced."""
    benchmark.extra_info.update(info)


class ReplayClock:
    """A pytest-benchmark timer that reports given durations: each round's start reads the
    clock, its end reads it one duration later."""

    __name__ = "worker_round_times"  # saved as options.timer: who really timed the rounds

    def __init__(self, durations: Sequence[float]) -> None:
        self._durations, self._now, self._running = iter(durations), 0.0, False

    def __call__(self) -> float:
        if self._running:
            self._now += next(self._durations)
        self._running = not self._running
        return self._now


def record_rounds(benchmark, durations: Sequence[float]) -> None:
    """Save ``durations``, measured outside this process, as the benchmark's rounds (one
    round each); nothing when timing is off."""
    if benchmark.disabled or not durations:
        return
    benchmark._timer = ReplayClock(durations)
    benchmark.pedantic(_measured_elsewhere, rounds=len(durations), iterations=1, warmup_rounds=0)


def _measured_elsewhere() -> None:
    """The replayed rounds' target: the work itself ran in other processes."""


def train_timed(experiment: Experiment, benchmark) -> RunResult:
    """Train every round of a started ``experiment`` under pytest-benchmark's timer, one
    benchmark round per training round, with the round's checks and evaluation in the untimed
    ``setup``; the run's result with those round times."""
    if benchmark.disabled:
        # Timing is off (--benchmark-disable, xdist) and pedantic calls its target once: the
        # whole run trains in that call, as a functional check, under the run's own timer.
        benchmark.pedantic(experiment.run_rounds)
        return experiment.result()
    rounds = experiment.rounds()
    benchmark.pedantic(experiment.train_round, setup=lambda: ((next(rounds),), {}),
                       rounds=experiment.n_rounds, iterations=1, warmup_rounds=0)
    for _ in rounds:  # the last round's checks and evaluation
        pass
    return experiment.result(round_times=list(benchmark.stats.stats.data))
