"""Command line: ``ampcore run | compare | report | calibrate`` (also ``python -m ampcore``).

``run``'s options are the ``run`` rows of ``ampcore.options.table`` (each with its environment
variable); they are checked before anything trains, and a bad value exits 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ampcore.options import table as options
from ampcore.core import files
from ampcore.core.errors import AmpcoreError, UnsupportedPrecisionError, UsageError
from ampcore.options.settings import Settings
from ampcore.options.table import RUN

if TYPE_CHECKING:  # both import torch: at run time, only once something is to train
    from ampcore.train.result import RunResult
    from ampcore.train.spec import RunSpec


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    options.add_arguments(parser, RUN)


def _run(args: argparse.Namespace) -> int:
    from ampcore.core import versions

    versions.check()  # before torch is imported: an old one stops with its name and the floor
    settings = options.resolve(RUN, vars(args))  # OptionError: exit 2, nothing trained
    if settings.json is not None:  # a result that cannot be saved must not cost a training
        files.check_new_file(settings.json, "--json", roots=())
    from ampcore.launch import describe
    from ampcore.judge.table import results_table

    trained = _train(_specs(settings), settings)
    runs = [result for _, result in trained]
    results = [r for spec, r in trained if spec.train_seed is None]  # the profile's seed
    # Results on stdout; with --json - the JSON is the result and the table goes to stderr.
    to_stdout = files.is_stdout(settings.json)
    out = sys.stderr if to_stdout else sys.stdout
    print(results_table(results), file=out)
    if len(runs) > len(results):
        from ampcore.judge.gates import seeds_table

        print(seeds_table(runs), file=out)
    for result in results:
        if "world_size" in result.details:
            print(describe(result), file=sys.stderr)
    if to_stdout:
        json.dump({"runs": [r.to_dict() for r in runs]}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    elif settings.json is not None:
        print(f"wrote {_write_results(runs, settings.json)}", file=sys.stderr)
    return 0


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
    unused = request.unused_data_dir()
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


def _train(specs: list[RunSpec], settings: Settings) -> list[tuple[RunSpec, RunResult]]:
    """Train each run in order, each result with its spec (a run skipped mid-way has none);
    on Ctrl-C keep those that finished, then re-raise (exit 130)."""
    from ampcore.launch import run_distributed
    from ampcore.launch.fresh import run_in_fresh_processes
    from ampcore.train.run import run_experiment

    results, progress = [], not settings.no_progress
    try:
        for spec in specs:
            try:
                if settings.nproc > 1:
                    result = run_distributed(spec, settings.nproc, progress=progress)
                elif settings.processes > 1:
                    result = run_in_fresh_processes(spec, settings.processes, progress)
                else:
                    result = run_experiment(spec, progress=progress)
                results.append((spec, result))
            except UnsupportedPrecisionError as exc:  # a model the mode cannot take (fp8)
                if not options.asks_for_all(settings.given("precisions")):
                    raise
                print(f"skipped: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        _keep_finished([result for _, result in results], settings.json)
        raise
    return results


def _write_results(results: list, path: Path, partial: bool = False) -> Path:
    from ampcore.train.result import write_json

    try:
        return write_json(results, path, partial=partial)
    except FileExistsError:
        raise UsageError(f"--json {path} appeared while ampcore trained; ampcore never "
                         "overwrites saved results: nothing was written") from None


def _keep_finished(results: list, path: Path | None) -> None:
    """On Ctrl-C: show and save the runs that finished, marked partial, and say where (the
    --json file, else a new file in the temporary directory)."""
    if not results:
        print("ampcore: interrupted before any run finished; nothing to save", file=sys.stderr)
        return
    from ampcore.judge.table import results_table

    print(results_table(results))
    if path is None:
        handle, name = tempfile.mkstemp(prefix="ampcore-interrupted-", suffix=".json")
        os.close(handle)
        os.unlink(name)  # a fresh name that write_json creates atomically
        path = Path(name)
    try:
        where = _write_results(results, path, partial=True)
    except (AmpcoreError, OSError) as exc:
        print(f"ampcore: interrupted; the {len(results)} finished run(s) could not be "
              f"saved: {exc}", file=sys.stderr)
        return
    print(f"ampcore: interrupted; wrote the {len(results)} finished run(s) to {where} "
          '(marked "partial": true)', file=sys.stderr)


def _list_injections(args: argparse.Namespace) -> int:
    from ampcore.train.inject import INJECTIONS

    for kind, injection in INJECTIONS.items():
        print(f"{kind:20} {injection.stands_for}\n{'':20} seen by: {injection.seen_by}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``ampcore`` parser (torch-free: the option table and the registries are)."""
    from ampcore.history import cli as history_cli

    from ampcore import __version__

    parser = argparse.ArgumentParser(prog="ampcore", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"ampcore {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="train workloads under precision modes and time them")
    add_run_arguments(run)
    run.set_defaults(handler=_run)
    inject = commands.add_parser("inject", help="list the regressions --inject / "
                                 "AMPCORE_INJECT can apply, and what each stands for")
    inject.set_defaults(handler=_list_injections)
    history_cli.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from ampcore.history.cli import dispatch

    return dispatch(build_parser(), list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
