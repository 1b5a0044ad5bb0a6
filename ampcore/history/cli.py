"""Subcommands over saved histories (compare, report, calibrate).

Exit status of every subcommand: 0 nothing regressed, 1 a regression, 2 unusable input."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ampcore.history.storage import DEFAULT_STORAGE, Problem, UnusableInputError


def _add_storage_paths(parser: argparse.ArgumentParser, metavar: str) -> None:
    parser.add_argument("paths", nargs="*", metavar=metavar,
                        help=f"storage directories, saved JSON files or globs (default: {DEFAULT_STORAGE})")


def register(commands: argparse._SubParsersAction) -> None:
    """Add the history subcommands to ``ampcore``'s parser."""
    compare = commands.add_parser(
        "compare", help="gate: compare the newest saved run with its baseline",
        description="Compare a candidate pytest-benchmark run with a baseline: per benchmark a "
        "verdict on time (Mann-Whitney U + threshold), AMP speedup over fp32, accuracy, peak "
        "memory and GradScaler skipped steps. With one PATH (default: .benchmarks, searched "
        "recursively) the newest run is the candidate and the run before it (see "
        "--baseline-last) the baseline; with several, the last is the candidate and the others "
        "are pooled as the baseline. Exit status: 0 no regression, 1 regression, 2 unusable "
        "input (including different environments).")
    _add_storage_paths(compare, metavar="PATH")
    compare.add_argument("--baseline-last", type=int, metavar="N",
                         help="pool the last N runs before the candidate as the baseline (default 1)")
    compare.add_argument("--alpha", type=float, help="significance level for time "
                         "(default: [tool.ampcore.compare] alpha, else 0.02)")
    compare.add_argument("--config", type=Path, metavar="PYPROJECT",
                         help="pyproject.toml with [tool.ampcore] (default: the nearest one above "
                         "the working directory)")
    compare.add_argument("--allow-env-mismatch", action="store_true",
                         help="compare runs whose GPU, driver, CUDA, torch, step mode (CUDA graphs "
                         "or eager) or TF32 flags differ")
    compare.add_argument("--markdown", type=Path, metavar="PATH",
                         help="append a Markdown report here (e.g. \"$GITHUB_STEP_SUMMARY\")")
    compare.add_argument("--json", type=Path, metavar="PATH",
                         help="write the machine-readable verdict to this new file")
    compare.set_defaults(handler=_compare)

    report = commands.add_parser(
        "report", help="HTML page and PNG charts of a saved history",
        description="Charts per benchmark of median time (with IQR and min/max) over the saved "
        "runs, AMP speedup over fp32, accuracy and peak memory, with detected change points; "
        "an index.html that embeds them and needs no server or network.")
    _add_storage_paths(report, metavar="STORAGE")
    report.add_argument("--out", type=Path, required=True,
                        help="new (or empty) directory for index.html and the PNGs; never "
                        "inside the storage")
    report.add_argument("--title", default="ampcore benchmark history")
    report.set_defaults(handler=_report)

    calibrate = commands.add_parser(
        "calibrate", help="measure run-to-run noise (A/A) and suggest thresholds",
        description="From repeated saved runs of unchanged code, measure each benchmark's "
        "run-to-run variation and suggest [[tool.ampcore.thresholds]]; also estimates the "
        "gate's false-alarm and detection rates by resampling the newest run's rounds.")
    _add_storage_paths(calibrate, metavar="STORAGE")
    calibrate.add_argument("--same-commit", action="store_true",
                           help="only pair runs of the same commit (true A/A repeats)")
    calibrate.add_argument("--trials", type=int, default=100,
                           help="resampling trials per benchmark (default 100; 0 to skip)")
    calibrate.add_argument("--slowdown", type=float, default=0.10,
                           help="slowdown injected to estimate detection (default 0.10)")
    calibrate.add_argument("--seed", type=int, default=0)
    calibrate.add_argument("--config", type=Path, metavar="PYPROJECT",
                           help="pyproject.toml with [tool.ampcore] (default: the nearest one)")
    calibrate.add_argument("--json", type=Path, metavar="PATH",
                           help="write the measurements to this new file")
    calibrate.set_defaults(handler=_calibrate)


def _print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        print(f"ampcore: {problem}", file=sys.stderr)


def _load_config(path: Path | None, alpha: float | None = None):
    from dataclasses import replace

    from ampcore.history.config import load_config

    config = load_config(path)
    if alpha is not None:
        if not 0 < alpha < 1:
            raise UnusableInputError(f"--alpha must be between 0 and 1, got {alpha}")
        config = replace(config, defaults=replace(config.defaults, alpha=alpha),
                         overrides=tuple(replace(o, values={k: v for k, v in o.values.items()
                                                            if k != "alpha"})
                                         for o in config.overrides))
    return config


def _compare(args: argparse.Namespace) -> int:
    from ampcore.history import output
    from ampcore.history.compare import choose_baseline, compare
    from ampcore.history.storage import load_history

    if args.baseline_last is not None and args.baseline_last < 1:
        raise UnusableInputError("--baseline-last must be at least 1")
    if args.json is not None:
        output.check_new(args.json)
    config = _load_config(args.config, args.alpha)
    notes: list[str] = []
    if len(args.paths) >= 2:
        candidates, problems = load_history(args.paths[-1:])
        if len(candidates) != 1:
            _print_problems(problems)
            raise UnusableInputError(f"the candidate {args.paths[-1]!r} must be exactly one "
                                     f"readable saved run; it gives {len(candidates)}")
        candidate = candidates[0]
        baseline, more = load_history(args.paths[:-1])
        problems += more
        baseline = [r for r in baseline if r.path.resolve() != candidate.path.resolve()]
        baseline = baseline[-args.baseline_last:] if args.baseline_last else baseline
    else:
        runs, problems = load_history(args.paths)
        if len(runs) < 2:
            _print_problems(problems)
            where = ", ".join(args.paths) or DEFAULT_STORAGE
            raise UnusableInputError(f"need at least two readable saved runs in {where}; "
                                     f"found {len(runs)}")
        candidate = runs[-1]
        baseline, notes = choose_baseline(runs[:-1], candidate, args.baseline_last or 1)
    if not baseline:
        _print_problems(problems)
        raise UnusableInputError("no readable baseline run")

    comparison = compare(baseline, candidate, config, args.allow_env_mismatch, problems, notes)
    refused = bool(comparison.env_differences) and not args.allow_env_mismatch
    status = 2 if refused or not comparison.verdicts else comparison.exit_status
    sys.stdout.write(output.to_text(comparison))
    if args.markdown is not None:
        output.append_text(args.markdown, output.to_markdown(comparison))
    if args.json is not None:
        output.write_new(args.json, output.dump_json(output.to_json(comparison, status)))
    return status


def _report(args: argparse.Namespace) -> int:
    from ampcore.history.report import build_report
    from ampcore.history.storage import load_history, storage_roots

    out = args.out.resolve()
    for root in storage_roots(args.paths):
        if out == root or root in out.parents:
            raise UnusableInputError(f"--out {args.out} is inside the storage {root}; "
                                     "the report never writes into the history it reads")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UnusableInputError(f"--out {args.out} exists and is not an empty directory; "
                                 "ampcore never overwrites files")
    runs, problems = load_history(args.paths)
    _print_problems(problems)
    if not runs:
        raise UnusableInputError(f"no readable saved run in {', '.join(args.paths) or DEFAULT_STORAGE}")
    page = build_report(runs, out, problems, args.title)
    print(f"wrote {page} ({len(runs)} runs)")
    return 0


def _calibrate(args: argparse.Namespace) -> int:
    from ampcore.history import output
    from ampcore.history.calibrate import calibrate, to_json, to_text
    from ampcore.history.storage import load_history

    if args.json is not None:
        output.check_new(args.json)
    if args.trials < 0 or not 0 < args.slowdown < 1:
        raise UnusableInputError("--trials must be >= 0 and --slowdown between 0 and 1")
    config = _load_config(args.config)
    runs, problems = load_history(args.paths)
    _print_problems(problems)
    if not runs:
        raise UnusableInputError(f"no readable saved run in {', '.join(args.paths) or DEFAULT_STORAGE}")
    result = calibrate(runs, config, same_commit=args.same_commit, trials=args.trials,
                       slowdown=args.slowdown, seed=args.seed)
    sys.stdout.write(to_text(result))
    if args.json is not None:
        output.write_new(args.json, output.dump_json(to_json(result)))
    return 0
