"""The only module that touches pytest-benchmark beyond its documented fixture API.

pytest-benchmark (checked against 5.2) documents the ``benchmark`` fixture (calling it,
``pedantic()``, ``group``, ``extra_info``, ``disabled``) and its hooks; the suite needs two
things it has no public API for, each kept here with why:

- whether timing is on for the whole session, read outside any benchmark test (the speedup
  assertion, the summary): pytest-benchmark keeps it only in ``config._benchmarksession
  .disabled`` (set by ``--benchmark-disable``, by pytest-xdist, or without ``statistics``).
  Inside a benchmark test the fixture's public ``benchmark.disabled`` says the same.
- keeping raw rounds in saved runs (``--benchmark-save-data``) whatever the command line
  said: ``config.option.benchmark_save_data``.

- rounds timed elsewhere (a DDP run's workers, in their own processes) saved as the
  benchmark's rounds: ``record_rounds`` replays them through ``pedantic()`` with a clock
  that reports them (the fixture's ``_timer``; pytest-benchmark has no API for times it did
  not take). The saved ``options.timer`` names that clock.

The group a benchmark is saved under must be set before ``pedantic()``: pytest-benchmark copies
``benchmark.group`` into the stats it makes then (``set_group``).

The round protocol itself (one benchmark round per training round, checks and evaluation in
the untimed ``setup``) is ``ampcore.run.Experiment.timed_by``, the core's pytest-benchmark
driver; it reads the raw round times from ``benchmark.stats.stats.data``, for which
pytest-benchmark has no public accessor either.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import pytest

NOT_ACTIVE = "pytest-benchmark is not active (not installed, or disabled with -p no:benchmark)"


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


def save_raw_rounds(config: pytest.Config) -> None:
    """Keep every round's time in saved runs, for ``ampcore compare``'s statistics. Call it
    from a ``tryfirst`` ``pytest_configure``: pytest-benchmark reads the option in its own."""
    if hasattr(config.option, "benchmark_save_data"):
        config.option.benchmark_save_data = True


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
