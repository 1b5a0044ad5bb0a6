"""pytest plugin: the AMP benchmark matrix, its fixtures, the session's summary, and its
refusal to pass silently (``ampcore.suite.outcomes``).

Loaded through the ``pytest11`` entry point (``ampcore.suite.plugin``), so any repository with
ampcore installed can write benchmarks against these fixtures:

- ``amp_case``: one (workload, precision) of the matrix chosen by ``--amp-workloads`` and
  ``--amp-precisions``; skipped with the reason when the device cannot run it.
- ``amp_mixed_case``: the same, restricted to the mixed-precision modes. A test generates only
  the cases it can judge (``ampcore.suite.cases.applies_to``); the rest are no test at all.
- ``amp_ddp_case`` / ``amp_ddp_mixed_case``: the same over the workloads whose registry entry
  has DDP benchmarks (``ddp=True``); skipped without ``--amp-nproc`` GPUs.
- ``amp_runs``: the session's ``SuiteSession``: trains each case once, under pytest-benchmark
  when a benchmark test asks, on demand otherwise.

The suite's own tests use them and are importable: ``from ampcore.suite.matrix import *`` in a
test file is the whole matrix there (``ampcore.suite.matrix``). Saved runs keep the raw rounds
of every benchmark ampcore recorded, with no conftest hook (``pytest_benchmark_update_json``).

Options are ``ampcore.options.table``' suite rows (``ampcore.suite.options``). torch is imported
lazily, so loading the plugin costs nothing in unrelated test runs; it also loads without
pytest-benchmark (tests that need its ``benchmark`` fixture then skip with the reason).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ampcore.core import registry
from ampcore.core import files
from ampcore.core.interrupts import sigterm_as_interrupt
from ampcore.suite import benchmark_adapter as adapter
from ampcore.suite import cases, guards
from ampcore.suite import options as suite_options
from ampcore.suite.outcomes import ALL_SKIPPED_EXIT, Outcomes, cuda_problem, is_matrix_item
from ampcore.suite.session import SuiteSession

# The matrix's tests are imported into users' test files: their asserts read like a test's.
pytest.register_assert_rewrite("ampcore.suite.matrix")

_SESSION_KEY = pytest.StashKey[SuiteSession]()
_OUTCOMES_KEY = pytest.StashKey[Outcomes]()
_PRECISIONS_KEY = pytest.StashKey[tuple[list[str], list[str]]]()
_CASE = "amp_workload,amp_precision"
_NO_CASE = "ampcore_no_case"  # a test with every case out (applies_to): dropped at collection


def pytest_addoption(parser: pytest.Parser) -> None:
    suite_options.add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    # Every option is checked here (torch-free), so a bad value is a usage error before
    # collection; the session itself imports torch only when something trains.
    config.addinivalue_line("markers", f"{_NO_CASE}: a matrix test with no case (not run)")
    problem = adapter.parallel_save_problem(config)
    if problem:
        raise pytest.UsageError(problem)
    settings = suite_options.resolve(config)
    if settings.require_cuda:  # GPU CI: no CUDA is an error now, not a session of skips
        problem = cuda_problem(settings.device)
        if problem:
            raise pytest.UsageError(problem)
    config.stash[_SESSION_KEY] = SuiteSession(settings, config)
    outcomes = config.stash[_OUTCOMES_KEY] = Outcomes()
    config.pluginmanager.register(outcomes, "ampcore-outcomes")  # it hears every test report


def session_for(config: pytest.Config) -> SuiteSession:
    return config.stash[_SESSION_KEY]


# --- matrix and fixtures ------------------------------------------------------------------

def _precisions(config: pytest.Config) -> list[str]:
    """The matrix's precisions, worked out once per session (``cases.matrix_precisions``)."""
    if _PRECISIONS_KEY not in config.stash:
        suite = session_for(config)
        config.stash[_PRECISIONS_KEY] = cases.matrix_precisions(suite.options, lambda: suite.device)
    return config.stash[_PRECISIONS_KEY][0]


def _matrix(metafunc: pytest.Metafunc) -> tuple[list[str], list[str], str] | None:
    """(workloads, precisions, what an empty matrix means) for the case fixture requested."""
    o = session_for(metafunc.config).options
    names = metafunc.fixturenames
    if not {"amp_ddp_mixed_case", "amp_ddp_case", "amp_mixed_case", "amp_case"} & set(names):
        return None
    precisions = _precisions(metafunc.config)
    mixed = [p for p in precisions if registry.PRECISIONS[p].mixed]
    ddp = [w for w in o.workloads if registry.WORKLOADS[w].ddp]
    no_mixed = "--amp-precisions has no mixed-precision mode"
    no_ddp = ("--amp-workloads has no workload with DDP benchmarks (those with: "
              f"{', '.join(w.id for w in registry.WORKLOADS.values() if w.ddp) or 'none'})")
    if "amp_ddp_mixed_case" in names:
        return ddp, mixed, no_ddp if not ddp else no_mixed
    if "amp_ddp_case" in names:
        return ddp, precisions, no_ddp
    if "amp_mixed_case" in names:
        return o.workloads, mixed, no_mixed
    return o.workloads, precisions, "no case selected"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    matrix = _matrix(metafunc)
    if matrix is None:
        return
    workloads, precisions, empty = matrix
    asked = [(w, p) for w in workloads for p in precisions]
    judged = [(w, p) for w, p in asked if cases.applies(metafunc.function, w, p)]
    params = [pytest.param(w, p, id=registry.run_name(w, p)) for w, p in judged]
    if asked and not params:  # structurally nothing to judge: no test (dropped at collection)
        params = [pytest.param(None, None, id="none", marks=getattr(pytest.mark, _NO_CASE))]
    elif not params:  # one skipped case that says why, rather than pytest's "empty parameter set"
        params = [pytest.param(None, None, id="none", marks=pytest.mark.skip(reason=empty))]
    metafunc.parametrize(_CASE, params)


@pytest.hookimpl(tryfirst=True)  # before anything counts the items (Outcomes, xdist workers)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Drop the placeholders of tests with no case; on an xdist worker, run no matrix test
    (the controller refuses the session); and tests that need pytest-benchmark's fixture skip
    with the reason when it is missing."""
    items[:] = [item for item in items if item.get_closest_marker(_NO_CASE) is None]
    guards.drop_matrix_on_worker(config, items, is_matrix_item)
    for item in items:
        info = getattr(item, "_fixtureinfo", None)  # pytest's own: where fixtures resolved
        if (info is not None and "benchmark" in getattr(item, "fixturenames", ())
                and "benchmark" not in info.name2fixturedefs):
            reason = f"no 'benchmark' fixture: {adapter.NOT_ACTIVE}"
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="session")
def amp_runs(request: pytest.FixtureRequest) -> Iterator[SuiteSession]:
    # The first test that trains: a library below ampcore's floor ends the session once, with
    # its name, instead of failing every test inside a model.
    from ampcore.core import versions

    problem = versions.problem(versions.FLOORS)
    if problem is not None:
        pytest.exit(f"ampcore: {problem}", returncode=pytest.ExitCode.USAGE_ERROR)
    # From the first training on, SIGTERM (a CI cancel) is a Ctrl-C: the session ends
    # interrupted, is saved marked incomplete and shows what finished. Only here, so that
    # sessions that train nothing keep their own SIGTERM.
    with sigterm_as_interrupt():
        yield session_for(request.config)


def _case(session: SuiteSession, workload: str, precision: str) -> tuple[str, str]:
    reason = session.unsupported_reason(precision)
    if reason:
        pytest.skip(reason)
    return workload, precision


def _ddp_case(session: SuiteSession, workload: str, precision: str) -> tuple[str, str]:
    reason = session.ddp_unavailable_reason() or session.unsupported_reason(precision)
    if reason:
        pytest.skip(reason)
    return workload, precision


@pytest.fixture
def amp_case(amp_runs: SuiteSession, amp_workload: str, amp_precision: str) -> tuple[str, str]:
    return _case(amp_runs, amp_workload, amp_precision)


@pytest.fixture
def amp_mixed_case(amp_runs: SuiteSession, amp_workload: str,
                   amp_precision: str) -> tuple[str, str]:
    return _case(amp_runs, amp_workload, amp_precision)


@pytest.fixture
def amp_ddp_case(amp_runs: SuiteSession, amp_workload: str, amp_precision: str) -> tuple[str, str]:
    return _ddp_case(amp_runs, amp_workload, amp_precision)


@pytest.fixture
def amp_ddp_mixed_case(amp_runs: SuiteSession, amp_workload: str,
                       amp_precision: str) -> tuple[str, str]:
    return _ddp_case(amp_runs, amp_workload, amp_precision)


def enforce(verdict) -> None:
    """Turn an ``ampcore.judge.gates.Verdict`` into a skip, a failure with its numbers, or a pass."""
    if verdict.skip_reason:
        pytest.skip(verdict.skip_reason)
    if not verdict.passed:
        pytest.fail(verdict.message, pytrace=False)


# --- reporting ------------------------------------------------------------------------------

def pytest_sessionstart(session: pytest.Session) -> None:
    """A storage the session could not save into stops it now, not after training."""
    problem = adapter.storage_problem(session.config)
    if problem:
        raise pytest.UsageError(problem)


def pytest_collection_finish(session: pytest.Session) -> None:
    """The seed profile's data sets, checked once for the workloads about to run."""
    config = session.config
    workloads = [item.callspec.params["amp_workload"] for item in session.items
                 if is_matrix_item(item) and item.callspec.params["amp_workload"] is not None]
    if not workloads or config.option.collectonly:  # an xdist worker has dropped the matrix
        return
    suite = session_for(config)
    from ampcore.core.profiles import get_profile

    problem = guards.data_problem(suite.options, get_profile(suite.profile).real_data, workloads)
    if problem:
        raise pytest.UsageError(problem)


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook, on the controller
def pytest_testnodedown(node, error) -> None:
    """A worker that collected the matrix ran none of it: the session is refused."""
    problem = guards.parallel_suite_problem(node)
    if problem:
        pytest.exit(problem, returncode=pytest.ExitCode.USAGE_ERROR)


def pytest_report_collectionfinish(config: pytest.Config, items: list[pytest.Item]) -> list[str]:
    """The modes the CPU matrix left out; which benchmark defaults the matrix really uses."""
    if not any(is_matrix_item(item) for item in items):
        return []
    lines = [cases.left_out_note(config.stash.get(_PRECISIONS_KEY, ([], []))[1])]
    lines.append(adapter.header_note(config))
    return [line for line in lines if line]


def pytest_report_header(config: pytest.Config) -> str | None:
    session = config.stash.get(_SESSION_KEY, None)
    note = session.unused_options() if session is not None else None
    return f"ampcore: note: {note}" if note else None


@pytest.hookimpl(hookwrapper=True, tryfirst=True)  # around pytest-benchmark's, which saves
def pytest_sessionfinish(session: pytest.Session, exitstatus: int):
    """Note a Ctrl-C (or pytest.exit) before pytest-benchmark saves the session, so that the
    saved file is marked incomplete and ``ampcore compare``/``report`` skip it; and fail a
    session in which every matrix test skipped: it measured nothing and must not pass."""
    suite = session.config.stash.get(_SESSION_KEY, None)
    if suite is not None and exitstatus == pytest.ExitCode.INTERRUPTED:
        suite.interrupted = True
    outcomes = session.config.stash.get(_OUTCOMES_KEY, None)
    if outcomes is not None and outcomes.all_skipped and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = ALL_SKIPPED_EXIT
    try:
        yield
    finally:
        adapter.release_storage(session.config)  # pytest-benchmark has saved by now
    if adapter.save_failure(session.config) and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED  # measured, but not saved


@pytest.hookimpl(optionalhook=True)  # a pytest-benchmark hook: absent without it
def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """Add the GPU, driver and library versions pytest-benchmark's machine id ignores."""
    from ampcore.measure import environment
    from ampcore.judge.record import SessionRecord

    session = session_for(config)
    # The step mode is part of what a timing means: ``ampcore compare`` refuses to mix them.
    machine_info["ampcore"] = SessionRecord(environment.capture(session.device),
                                            session.cuda_graphs,
                                            session.interrupted).to_machine_info()


@pytest.hookimpl(optionalhook=True)  # a pytest-benchmark hook: absent without it
def pytest_benchmark_update_json(config: pytest.Config, benchmarks: list,
                                 output_json: dict) -> None:
    """Save the raw rounds of the benchmarks ampcore recorded (``ampcore compare`` tests them),
    as ``--benchmark-save-data`` would; other benchmarks of the session are left as saved."""
    from ampcore.judge.record import SCHEMA_KEY

    adapter.keep_raw_rounds(benchmarks, output_json, lambda extra_info: SCHEMA_KEY in extra_info)
    adapter.lock_storage(config)  # the save follows this hook
    adapter.save_atomically(config)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    outcomes = config.stash.get(_OUTCOMES_KEY, None)
    if outcomes is not None and outcomes.all_skipped:
        terminalreporter.write_sep("=", "ampcore: nothing measured", red=True)
        terminalreporter.write_line(outcomes.message())
    session = config.stash.get(_SESSION_KEY, None)
    if session is None or not (session.results or session.ddp_results):
        return
    text = session.summary()
    terminalreporter.write_sep("=", "ampcore: AMP training summary")
    terminalreporter.write_line(text)
    # "-": stdout, where the terminal reporter has just written it; no file named "-".
    if session.options.summary is not None and not files.is_stdout(session.options.summary):
        files.append_text(session.options.summary, text + "\n")  # appends: never clobbers
