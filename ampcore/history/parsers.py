"""The parsers of the history subcommands (compare, report, calibrate): their options and help,
plain text (``plain_help``); ``ampcore.history.cli`` attaches the handlers."""

from __future__ import annotations

import argparse
from pathlib import Path

from ampcore.history.errors import EXIT_HELP
from ampcore.history.paths import DEFAULT_STORAGE

DASH = "; - for stdout"
MAX_TRIALS = 10_000  # each runs the gate twice: more is a typo that runs for hours



def _add_common(parser: argparse.ArgumentParser, metavar: str) -> None:
    parser.add_argument("paths", nargs="*", metavar=metavar, help="storage directories, saved "
                        f"JSON files or globs (default: {DEFAULT_STORAGE})")
    parser.add_argument("--config", type=Path, metavar="PYPROJECT",
                        help="pyproject.toml with [tool.ampcore]: the thresholds (default: the "
                        "nearest one above the working directory)")


def plain(text: str | None) -> str | None:
    """``text`` without reST's double backquotes: help is plain text, docstrings are reST."""
    return None if text is None else text.replace("``", "")


def plain_help(parser: argparse.ArgumentParser) -> None:
    """Make the help of ``parser`` and of its subcommands plain text (``plain``), in place."""
    parser.description, parser.epilog = plain(parser.description), plain(parser.epilog)
    for action in parser._actions:
        action.help = plain(action.help)
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                choice.help = plain(choice.help)
            for sub in dict.fromkeys(action.choices.values()):  # an alias shares its parser
                plain_help(sub)



def add_compare(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``ampcore compare``'s parser."""
    from ampcore.judge.metrics import METRICS

    judged = ", ".join(m.label for m in METRICS.values())
    compare = commands.add_parser(
        "compare", help="gate: compare the newest saved run with its baseline",
        description="Compare a candidate pytest-benchmark run with a baseline: per benchmark a "
        f"verdict on each metric ({judged}), for benchmarks that measured the same work. "
        "With one PATH (default: .benchmarks, searched recursively) the newest run is the "
        "candidate and the run before it (see --baseline-last) the baseline; with several, "
        "the last is the candidate and the others are pooled as the baseline. " + EXIT_HELP)
    _add_common(compare, metavar="PATH")
    compare.add_argument("--baseline-last", type=int, metavar="N",
                         help="pool the last N runs before the candidate as the baseline (default 1)")
    compare.add_argument("--alpha", type=float, help="significance level for time "
                         "(default: [tool.ampcore.compare] alpha, else 0.02; within "
                         "[1e-6, 0.5])")
    compare.add_argument("--allow-env-mismatch", action="store_true",
                         help="compare runs measured on other hardware (GPU model, CPU "
                         "model or cores) or with another step mode (CUDA graphs or eager) or "
                         "TF32 flags; software upgrades (torch, CUDA, cuDNN, driver, Python, "
                         "libraries) are compared without it and named first as \"upgrade:\" "
                         "lines; benchmarks that measured other work (model, sizes, world size, "
                         "the step mode they recorded) are still not compared")
    compare.add_argument("--allow-missing", action="store_true",
                         help="pass when benchmarks of the baseline are missing from the "
                         "candidate (default: exit 1)")
    compare.add_argument("--markdown", type=Path, metavar="PATH",
                         help="append a Markdown report here (e.g. \"$GITHUB_STEP_SUMMARY\")" + DASH)
    compare.add_argument("--json", type=Path, metavar="PATH",
                         help="write the machine-readable verdict to this new file" + DASH)
    compare.add_argument("-v", "--verbose", action="store_true",
                         help="text and Markdown: every row (n/a ones too), the full evidence "
                         "and the method, the text table not cut to the terminal's width "
                         "(default: regressed rows first, no n/a row, evidence cut to fit; the "
                         "Markdown keeps the evidence in a collapsible block). JSON: unchanged")
    compare.add_argument("--only", choices=["regressions"],
                         help="--only regressions: text and Markdown tables show the regressed "
                         "rows alone (the JSON keeps every row)")
    return compare


def add_report(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``ampcore report``'s parser."""
    from ampcore.judge.metrics import METRICS

    charted = ", ".join(m.label for m in METRICS.values() if m.chart and m.field)
    report = commands.add_parser(
        "report", help="HTML page and PNG charts of a saved history",
        description="Charts per benchmark of median time (with IQR and min/max) over the saved "
        f"runs; per workload the speedup over fp32 and {charted}, with detected change points; "
        "an index.html that embeds them and needs no server or network. " + EXIT_HELP)
    _add_common(report, metavar="STORAGE")
    report.add_argument("--out", type=Path, required=True,
                        help="new (or empty) directory for index.html and the PNGs, never "
                        "inside the storage; - writes the page alone (it embeds the charts) "
                        "to stdout")
    report.add_argument("--title", default="ampcore benchmark history")
    report.add_argument("--no-progress", action="store_true", help="no progress bar")
    return report


def add_calibrate(commands: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """``ampcore calibrate``'s parser."""
    calibrate = commands.add_parser(
        "calibrate", help="measure run-to-run noise (A/A) and suggest thresholds",
        description="From repeated saved runs of unchanged code, measure each benchmark's "
        "run-to-run variation and suggest [[tool.ampcore.thresholds]]; also estimates the "
        "gate's false-alarm and detection rates by resampling the newest run's rounds. "
        + EXIT_HELP)
    _add_common(calibrate, metavar="STORAGE")
    calibrate.add_argument("--same-commit", action="store_true",
                           help="only pair runs of the same commit (true A/A repeats)")
    calibrate.add_argument("--trials", type=int, default=100,
                           help="resampling trials per benchmark (default 100; 0 to skip; "
                           f"at most {MAX_TRIALS})")
    calibrate.add_argument("--slowdown", type=float, default=0.10,
                           help="slowdown injected to estimate detection (default 0.10)")
    calibrate.add_argument("--seed", type=int, default=0)
    calibrate.add_argument("--json", type=Path, metavar="PATH",
                           help="write the measurements to this new file" + DASH)
    calibrate.add_argument("--no-progress", action="store_true", help="no progress bar")
    calibrate.add_argument("--write", type=Path, metavar="PYPROJECT",
                           help="set the limits derived per step mode (from at least 10 runs "
                           "of one environment) and the noise behind them in this "
                           "pyproject.toml, keeping the rest of the file")
    return calibrate
