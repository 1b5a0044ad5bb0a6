"""Command line: ``ampcore run | inject | compare | report | calibrate`` (also ``python -m
ampcore``).

``run``'s options are the ``run`` rows of ``ampcore.options.table`` (each with its environment
variable), and ``--mkdir``; they are checked before anything trains, and a bad value exits 2.
However ``run`` ends (done, Ctrl-C or SIGTERM, a run that raised), the runs that finished are
shown and saved, marked partial when some did not; a failed write saves them to a file in
the temporary directory instead. Progress bars are drawn only on a terminal (stderr).

Help is plain text: ``build_parser`` strips the reST markup (double backquotes) from every
description and help string (``ampcore.history.parsers.plain_help``), so a docstring can serve as
help.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ampcore.options import table as options
from ampcore.core import files
from ampcore.core.errors import AmpcoreError, UnsupportedPrecisionError, UsageError
from ampcore.core.interrupts import Terminated, sigterm_as_interrupt
from ampcore.options.settings import Settings
from ampcore.options.table import RUN

if TYPE_CHECKING:  # both import torch: at run time, only once something is to train
    from ampcore.train.result import RunResult
    from ampcore.train.spec import RunSpec


class RunFailedError(AmpcoreError):
    """A run raised: the message names it and its error; the exit status is the error's own
    (1 for one that is not an ``AmpcoreError``)."""

    def __init__(self, spec: RunSpec, error: Exception) -> None:
        name = f"{spec.workload}/{spec.precision}"
        if spec.train_seed is not None:
            name += f" (training seed {spec.train_seed})"
        known = isinstance(error, AmpcoreError)
        detail = str(error) if known else f"{type(error).__name__}: {error}"
        super().__init__(f"run {name} failed: {detail}")
        self.exit_code = error.exit_code if known else 1


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_arguments(parser, RUN)
    # Outside the option table: how the output is written, not what trains (no variable,
    # no suite twin).
    parser.add_argument("--mkdir", action="store_true",
                        help="create the --json file's missing parent directories (default: "
                             "a missing one is refused before anything trains)")


def _run(args: argparse.Namespace) -> int:
    from ampcore.core import versions

    versions.check()  # before torch is imported: an old one stops with its name and the floor
    settings = options.resolve(RUN, vars(args))  # OptionError: exit 2, nothing trained
    _check_json(settings.json, args.mkdir)  # a result that cannot be saved must not cost a training
    specs = _specs(settings)
    trained: list[tuple[RunSpec, RunResult]] = []
    try:
        with sigterm_as_interrupt():  # a CI cancel or timeout (SIGTERM) ends as Ctrl-C does
            _train(specs, settings, trained)
    except KeyboardInterrupt as exc:
        _finish(trained, settings, "terminated" if isinstance(exc, Terminated) else "interrupted")
        raise
    except RunFailedError:
        if trained:  # else the error is the whole story
            _finish(trained, settings, "failed")
        raise
    return 0 if _finish(trained, settings, None) else 1


def _check_json(path: Path | None, mkdir: bool) -> None:
    """``--json`` can be written: its directory exists (or ``--mkdir`` creates it) and takes
    a new file. A missing directory is refused by default: it is more often a typo than a
    wish, and creating it anywhere would scatter results."""
    files.check_new_file(path, "--json", roots=())
    if path is None or files.is_stdout(path) or mkdir or path.parent.is_dir():
        return
    raise UsageError(f"--json {path}: the directory {path.parent} does not exist; create it, "
                     "correct the path, or give --mkdir to create it")


def _finish(trained: list[tuple[RunSpec, RunResult]], settings: Settings,
            ending: str | None) -> bool:
    """Show the runs that finished and save them. ``ending`` (interrupted, terminated,
    failed): not every run finished, so they are saved marked partial, without --json to a
    new file in the temporary directory. False when they could not be written where asked."""
    if not trained:
        if ending:
            print(f"ampcore: {ending} before any run finished; nothing to save", file=sys.stderr)
        return True
    runs = [result for _, result in trained]
    # Results on stdout; with --json - the JSON is the result and the table goes to stderr.
    _show(trained, sys.stderr if files.is_stdout(settings.json) else sys.stdout)
    if settings.json is None and ending is None:
        return True
    return _save(runs, settings.json, ending)


def _show(trained: list[tuple[RunSpec, RunResult]], out) -> None:
    from ampcore.launch import describe
    from ampcore.judge.table import results_table

    results = [r for spec, r in trained if spec.train_seed is None]  # the profile's seed
    if results:
        print(results_table(results), file=out)
    if len(trained) > len(results):
        from ampcore.judge.gates import seeds_table

        print(seeds_table([result for _, result in trained]), file=out)
    for result in results:
        if result.merged is not None and result.merged.how == "ddp":
            print(describe(result), file=sys.stderr)


def _save(runs: list[RunResult], path: Path | None, ending: str | None) -> bool:
    """Write ``runs`` to ``path`` (None: a new file in the temporary directory), marked
    partial after an ``ending``; when that fails (a full disk, a file that appeared
    meanwhile), to a new file in the temporary directory, named on stderr. False then."""
    from ampcore.train.result import results_json

    text = results_json(runs, partial=ending is not None)
    what = f"the {len(runs)} {'finished ' if ending else ''}run(s)"
    marked = ' (marked "partial": true)' if ending else ""
    problems = []
    for target in [path, None] if path is not None else [None]:
        try:
            where = _write(text, target, f"ampcore-{ending or 'results'}-")
        except OSError as exc:  # FileExistsError too: ampcore never overwrites a file
            problems.append(f"{_label(target)} could not be written: {exc.strerror or exc}")
            continue
        if problems:
            print(f"ampcore: error: {problems[0]}; wrote {what} to {where} instead{marked}",
                  file=sys.stderr)
        elif ending:
            shown = "standard output" if files.is_stdout(where) else where
            print(f"ampcore: {ending}; wrote {what} to {shown}{marked}", file=sys.stderr)
        elif not files.is_stdout(where):
            print(f"wrote {where}", file=sys.stderr)
        return not problems
    print(f"ampcore: error: {what} could not be saved: {'; '.join(problems)}", file=sys.stderr)
    return False


def _write(text: str, target: Path | None, prefix: str) -> Path:
    """Write ``text`` atomically to the new file ``target``, ``-`` (standard output), or,
    for None, a new file named ``prefix...json`` in the temporary directory."""
    if target is None:
        return files.create_temporary(prefix, ".json", text)
    if files.is_stdout(target):
        return files.write_new(target, text + "\n")
    return files.create_new(target, text)


def _label(target: Path | None) -> str:
    if target is None:
        return "the temporary directory"
    return "standard output" if files.is_stdout(target) else f"--json {target}"


def _specs(settings: Settings) -> list[RunSpec]:
    """The runs asked for (``ampcore.options.request``), every check that needs torch made
    before the first trains; a mode the device cannot run is an error when named, a note on
    stderr when it came with ``all``."""
    from ampcore.launch import check_nproc
    from ampcore.options.request import build_request

    request = build_request(settings)
    if request.profile_reason:
        print(f"profile: {request.profile} ({request.profile_reason}; choose with --profile)",
              file=sys.stderr)
    unused = request.unused_options()
    if unused:
        print(f"note: {unused}", file=sys.stderr)
    if request.blocked:
        raise request.blocked
    if settings.nproc != 1:
        check_nproc(settings.nproc, request.device)  # before any run: a bad --nproc wastes none
        if settings.processes != 1:
            raise UsageError(f"--processes {settings.processes} repeats single-process runs; "
                             f"a DDP run (--nproc {settings.nproc}) is not repeated: give one")
    named = not options.asks_for_all(settings.given("precisions"))
    for precision in settings.precisions:
        refused = request.refused.get(precision)
        if refused and named:
            raise refused
        if refused:
            print(f"skipped: {refused}", file=sys.stderr)
    return request.runs


def _train(specs: list[RunSpec], settings: Settings,
           trained: list[tuple[RunSpec, RunResult]]) -> None:
    """Train each run in order, appending it with its spec to ``trained`` as it finishes (a
    run skipped mid-way has none), so that the caller keeps them whatever ends the loop; a run
    that raises ends it with a ``RunFailedError`` (an unexpected error's traceback first)."""
    from ampcore.core.quiet import bars_wanted

    progress = bars_wanted(settings.no_progress)  # bars on a terminal only, never into a log
    for spec in specs:  # each run quiets torchao's notices itself (run_experiment, a worker)
        result = _train_one(spec, settings, progress)
        if result is not None:
            trained.append((spec, result))


def _train_one(spec: RunSpec, settings: Settings, progress: bool) -> RunResult | None:
    """``spec``'s result; None for a mode the model cannot take that came with ``all``."""
    from ampcore.launch import run_distributed
    from ampcore.launch.fresh import run_in_fresh_processes
    from ampcore.train.run import run_experiment

    try:
        if settings.nproc > 1:
            return run_distributed(spec, settings.nproc, progress=progress)
        if settings.processes > 1:
            return run_in_fresh_processes(spec, settings.processes, progress)
        return run_experiment(spec, progress=progress)
    except UnsupportedPrecisionError as exc:  # a model the mode cannot take (fp8)
        if not options.asks_for_all(settings.given("precisions")):
            raise RunFailedError(spec, exc) from exc
        print(f"skipped: {exc}", file=sys.stderr)
        return None
    except Exception as exc:
        if not isinstance(exc, AmpcoreError):  # a bug's traceback, for its report
            traceback.print_exc()
        raise RunFailedError(spec, exc) from exc


def _list_injections(args: argparse.Namespace) -> int:
    from ampcore.train.inject import INJECTIONS

    for kind, injection in INJECTIONS.items():
        print(f"{kind:20} {injection.stands_for}\n{'':20} seen by: {injection.seen_by}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``ampcore`` parser (torch-free: the option table and the registries are); its help
    lists every subcommand and is plain text."""
    from ampcore.history import cli as history_cli, parsers

    from ampcore import __version__

    parser = argparse.ArgumentParser(prog="ampcore")
    parser.add_argument("--version", action="version", version=f"ampcore {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="train workloads under precision modes and time them")
    add_run_arguments(run)
    run.set_defaults(handler=_run)
    inject_help = "list the regressions --inject / AMPCORE_INJECT can apply, and what each " \
                  "stands for"
    inject = commands.add_parser("inject", help=inject_help, description=inject_help[0].upper()
                                 + inject_help[1:] + ".")
    inject.set_defaults(handler=_list_injections)
    history_cli.register(commands)
    parser.description = (f"Command line: ampcore {' | '.join(commands.choices)} (also python -m "
                          "ampcore). Give a command's --help for its options.")
    parsers.plain_help(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from ampcore.core import plugins
    from ampcore.history.cli import dispatch

    try:  # the parser lists the registries' ids: an installed plugin that breaks them stops here
        plugins.check()
    except UsageError as exc:
        print(f"ampcore: error: {exc}", file=sys.stderr)
        return exc.exit_code
    return dispatch(build_parser(), list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
