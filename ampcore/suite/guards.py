"""Sessions the suite stops once, up front, instead of failing test after test.

- ``data_problem``: the seed profile trains on the real data sets; one missing for a workload
  about to run is one usage error at the session's start, not a failure (with the loader's
  long message) in every test of that workload.
- ``-n`` (pytest-xdist) on a session that collects the matrix: each worker would train the
  prerequisites again, and timings from concurrent workers are not comparable. The
  controller collects nothing under xdist, so the workers find the matrix
  (``drop_matrix_on_worker``) and the controller refuses the session when they report it
  (``parallel_suite_problem``). Unit-test sessions (``pytest tests -n auto``) are untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from ampcore.core import registry
from ampcore.data import DATA_DIR_ENV, DATA_CHECKS, LAYOUT_HELP
from ampcore.options.settings import Settings
from ampcore.options.table import SUITE, get_option

_WORKER_KEY = "ampcore_matrix_collected"  # in a worker's workeroutput, read by the controller

PARALLEL_SUITE = (
    "ampcore: -n (pytest-xdist) cannot run the AMP benchmark suite: each worker would train "
    "the prerequisite runs (fp32, the modes a claim is measured over) again, and timings taken "
    "by concurrent workers on one machine are not comparable. Run the benchmarks without -n "
    "(ampcore's own unit tests, `pytest tests -n auto`, are fine in parallel)")


def data_problem(settings: Settings, real_data: bool, workloads: Iterable[str]) -> str | None:
    """Why the session's data sets are not there for ``workloads`` (those about to run);
    None when they are, the profile builds its data in, or downloads are allowed."""
    if not real_data or settings.download:
        return None
    readers: dict[str, list[str]] = {}  # data set -> the workloads reading it
    for workload in dict.fromkeys(workloads):
        data = registry.workload_entry(workload).data
        if data is not None:  # None: its own data, whose loader says what is missing
            readers.setdefault(data, []).append(workload)
    missing: dict[str, tuple[str, list[str]]] = {}  # data set -> (what is missing, workloads)
    for data, readers_of in readers.items():
        name, check = DATA_CHECKS[data]
        why = check(settings.data_dir)
        if why is not None:
            missing[name] = (why, readers_of)
    if not missing:
        return None
    what = "; ".join(f"{name} for {', '.join(w)} ({why})" for name, (why, w) in missing.items())
    data_dir, download = get_option("data_dir").flag(SUITE), get_option("download").flag(SUITE)
    return (f"ampcore: the seed profile trains on the real data sets, and these are not there: "
            f"{what}. Point {data_dir} (or ${DATA_DIR_ENV}) at a directory holding them, pass "
            f"{download} to fetch them, or run --amp-profile smoke (built-in data); "
            f"{LAYOUT_HELP}")


# --- pytest-xdist ------------------------------------------------------------------------------

def is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def drop_matrix_on_worker(config: pytest.Config, items: list[pytest.Item],
                          is_matrix: Callable[[pytest.Item], bool]) -> None:
    """On an xdist worker that collected the matrix: run nothing, and tell the controller."""
    if is_worker(config) and any(is_matrix(item) for item in items):
        config.workeroutput[_WORKER_KEY] = True
        items[:] = []


def parallel_suite_problem(node: object) -> str | None:
    """The refusal when the finished worker ``node`` collected the matrix; None otherwise."""
    output = getattr(node, "workeroutput", None) or {}
    return PARALLEL_SUITE if output.get(_WORKER_KEY) else None
