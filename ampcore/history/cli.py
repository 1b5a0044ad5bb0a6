"""Subcommands over saved histories (compare, report, calibrate).

Exit statuses: ``ampcore.history.errors.EXIT_STATUSES``, shown by every subcommand's
``--help``. Results go to stdout; file problems, errors and progress bars to stderr. The
parsers are ``ampcore.history.parsers``."""

from __future__ import annotations

import argparse
import functools
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ampcore.core.errors import AmpcoreError
from ampcore.history.errors import EXIT_INTERNAL, Problem, UnusableInputError, UsageError
from ampcore.history import parsers
from ampcore.history.parsers import MAX_TRIALS
from ampcore.history.paths import DEFAULT_STORAGE

if TYPE_CHECKING:
    from ampcore.history.config import GateConfig

Handler = Callable[[argparse.Namespace], int]


def guarded(handler: Handler) -> Handler:
    """Run ``handler``; an unexpected exception (a bug, not a verdict) prints "ampcore:
    internal error" with its traceback on stderr and exits 70, never 1 (a regression).
    AmpcoreError and KeyboardInterrupt go on to ``ampcore.cli.dispatch``."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except AmpcoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - the point: no crash passes as a verdict
            print(f"ampcore: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            return EXIT_INTERNAL

    return run


def register(commands: argparse._SubParsersAction) -> None:
    """Add the history subcommands to ``ampcore``'s parser."""
    parsers.add_compare(commands).set_defaults(handler=guarded(_compare))
    parsers.add_report(commands).set_defaults(handler=guarded(_report))
    parsers.add_calibrate(commands).set_defaults(handler=guarded(_calibrate))


def _print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        print(f"ampcore: {problem}", file=sys.stderr)


def _load_config(path: Path | None, alpha: float | None = None) -> GateConfig:
    from dataclasses import replace

    from ampcore.history.config import load_config

    config = load_config(path)
    if alpha is not None:
        config = replace(config, defaults=config.defaults.replace(alpha=alpha),
                         overrides=tuple(replace(o, values={k: v for k, v in o.values.items()
                                                            if k != "alpha"})
                                         for o in config.overrides))
    return config


def _check_outputs(paths: list[str], new_files: dict[str, Path | None],
                   append: dict[str, Path | None] | None = None) -> None:
    """Before any work: every output may be written, none inside the storage read, and at
    most one goes to stdout."""
    from ampcore.core import files
    from ampcore.history.paths import storage_roots

    outputs = {**new_files, **(append or {})}
    dashes = [option for option, path in outputs.items() if files.is_stdout(path)]
    if len(dashes) > 1:
        raise UsageError(f"{' and '.join(dashes)} both name stdout (-); choose one")
    roots = storage_roots(paths)
    for option, path in new_files.items():
        files.check_new_file(path, option, roots)
    for option, path in (append or {}).items():
        files.check_append_file(path, option, roots)


def _compare(args: argparse.Namespace) -> int:
    from ampcore.history import output, render
    from ampcore.core import files
    from ampcore.history.compare import compare
    from ampcore.history.config import ALPHA_RANGE
    from ampcore.history.selection import SelectionError, select_runs

    if args.baseline_last is not None and args.baseline_last < 1:
        raise UsageError("--baseline-last must be at least 1")
    low, high = ALPHA_RANGE
    if args.alpha is not None and not low <= args.alpha <= high:  # also refuses NaN
        raise UsageError(f"--alpha must be within [{low:g}, {high:g}], got {args.alpha:g}")
    _check_outputs(args.paths, {"--json": args.json}, {"--markdown": args.markdown})
    config = _load_config(args.config, args.alpha)
    try:
        chosen = select_runs(args.paths, args.baseline_last)
    except SelectionError as exc:
        _print_problems(exc.problems)
        raise
    _print_problems(chosen.problems)
    comparison = compare(chosen.baseline, chosen.candidate, config, args.allow_env_mismatch,
                         chosen.problems, chosen.notes, allow_missing=args.allow_missing)
    view = render.View(verbose=args.verbose, only_regressions=args.only == "regressions")
    if not (files.is_stdout(args.json) or files.is_stdout(args.markdown)):
        sys.stdout.write(render.to_text(comparison, view))
    if args.markdown is not None:
        files.append_text(args.markdown, render.to_markdown(comparison, view))
    if args.json is not None:
        files.write_new(args.json, output.dump_json(output.to_json(comparison)), "--json")
    return comparison.exit_status


def _no_runs(paths: list[str]) -> UnusableInputError:
    return UnusableInputError(f"no readable saved run in {', '.join(paths) or DEFAULT_STORAGE}")


def _report(args: argparse.Namespace) -> int:
    from ampcore.core import files
    from ampcore.core.quiet import bars_wanted
    from ampcore.history.paths import storage_roots
    from ampcore.history.report.build import build_report
    from ampcore.history.storage import load_history

    files.check_new_directory(args.out, "--out", storage_roots(args.paths))
    config = _load_config(args.config)
    runs, problems = load_history(args.paths)
    _print_problems(problems)
    if not runs:
        raise _no_runs(args.paths)
    page = build_report(runs, args.out, problems, args.title,
                        progress=bars_wanted(args.no_progress), config=config)
    if not files.is_stdout(args.out):
        print(f"wrote {page} ({len(runs)} runs)")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from ampcore.history import output
    from ampcore.core import files
    from ampcore.core.quiet import bars_wanted
    from ampcore.history.calibrate import calibrate
    from ampcore.history.calibration_output import to_json, to_text
    from ampcore.history.storage import load_history

    if not 0 <= args.trials <= MAX_TRIALS:
        raise UsageError(f"--trials must be within [0, {MAX_TRIALS}], got {args.trials}")
    if not 0 < args.slowdown < 1:  # also refuses NaN
        raise UsageError(f"--slowdown must be between 0 and 1 (exclusive), got {args.slowdown:g}")
    if not 0 <= args.seed < 2**63:  # numpy's generators take no negative seed
        raise UsageError(f"--seed must be within [0, 2**63), got {args.seed}")
    _check_outputs(args.paths, {"--json": args.json})
    config = _load_config(args.config)
    runs, problems = load_history(args.paths)
    _print_problems(problems)
    if not runs:
        raise _no_runs(args.paths)
    result = calibrate(runs, config, same_commit=args.same_commit, trials=args.trials,
                       slowdown=args.slowdown, seed=args.seed,
                       progress=bars_wanted(args.no_progress))
    if not files.is_stdout(args.json):
        sys.stdout.write(to_text(result))
    if args.json is not None:
        files.write_new(args.json, output.dump_json(to_json(result)), "--json")
    if args.write is not None:
        _write_limits(args.write, runs, args.paths, config)
    return 0


def _write_limits(pyproject: Path, runs: list, sources: list[str], config: GateConfig) -> None:
    from ampcore.history import limits

    # Stability judged under the limits calibrate itself used (--config or the one found).
    measured, notes = limits.measure(runs, config)
    for note in notes:
        print(f"ampcore: {note}", file=sys.stderr)
    if not measured:
        raise UnusableInputError(f"no limits written to {pyproject}: no step mode has "
                                 f"{limits.MIN_RUNS} stable runs of one environment (the notes above "
                                 "say why)")
    limits.write(pyproject, measured, sources)
    for noise in measured:
        shown = ", ".join(f"{m} {v:g}" for m, v in sorted(noise.limits().items()))
        print(f"wrote {noise.mode} limits to {pyproject} ({noise.runs} runs, {noise.pairs} "
              f"A/A pairs): {shown}", file=sys.stderr)
        if noise.too_noisy():
            print(f"ampcore: {noise.mode}: no limit written for {', '.join(noise.too_noisy())}: "
                  "the noise needs more than the metric's maximum", file=sys.stderr)


def dispatch(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse, run the chosen subcommand's handler, and turn user-facing errors into messages
    and exit statuses (each error's own, ``errors.EXIT_STATUSES``; 130: interrupted)."""
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except AmpcoreError as exc:
        print(f"ampcore: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ampcore: interrupted", file=sys.stderr)
        return 130
