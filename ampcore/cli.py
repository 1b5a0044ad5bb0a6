"""Command line: ``ampcore run | compare | report | calibrate`` (also ``python -m ampcore``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from ampcore.errors import AmpcoreError, UnsupportedPrecisionError, UsageError

ALL = "all"


def expand(requested: Sequence[str], valid: Sequence[str], kind: str) -> list[str]:
    """Expand ``all`` and check every id, keeping the order given and dropping repeats."""
    names: list[str] = []
    for name in requested:
        for item in (valid if name == ALL else [name]):
            if item not in valid:
                raise UsageError(f"unknown {kind} {item!r}; valid: {', '.join(valid)}, or {ALL}")
            if item not in names:
                names.append(item)
    return names


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    from ampcore.graphs import CHOICES as CUDA_GRAPH_CHOICES
    from ampcore.precision import PRECISIONS
    from ampcore.profiles import PROFILES
    from ampcore.workloads import WORKLOADS

    parser.add_argument("--workload", nargs="+", default=[ALL], metavar="ID",
                        help=f"{', '.join(WORKLOADS)} or {ALL} (default: {ALL})")
    parser.add_argument("--precision", nargs="+", default=[ALL], metavar="ID",
                        help=f"{', '.join(PRECISIONS)} or {ALL} (default: {ALL}; fp32 is always "
                        "run first when speedups are asked for)")
    parser.add_argument("--profile", choices=list(PROFILES),
                        help="seed: the published experiment (needs the data sets); smoke: tiny, "
                        "self-contained. Default: seed with CUDA, else smoke")
    parser.add_argument("--device", help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--data-dir", type=Path,
                        help="directory with imdb/ and mnist/ (default: $AMPCORE_DATA_DIR)")
    parser.add_argument("--download", action="store_true",
                        help="allow fetching data sets and models from the internet")
    parser.add_argument("--bert-model", help="Hugging Face id or local directory for bert")
    parser.add_argument("--max-length", type=int, help="bert sequence length (default: the profile's)")
    parser.add_argument("--allow-random-init", action="store_true",
                        help="train bert from random weights when the source has none "
                        "(speed is valid, accuracy is not)")
    parser.add_argument("--max-grad-norm", type=float, help="clip gradients to this norm")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model")
    parser.add_argument("--cuda-graphs", choices=CUDA_GRAPH_CHOICES, default="auto",
                        help="capture each training step (forward, backward, optimizer) in a CUDA "
                        "graph and replay it, which times the GPU's work without the host's launch "
                        "jitter; 'off' times a plain eager loop (default: auto, on for CUDA)")
    parser.add_argument("--nproc", type=int, default=1, metavar="N",
                        help="train with DistributedDataParallel on N local processes launched "
                        "by torchrun: one GPU each on cuda (nccl), or gloo on cpu; each process "
                        "trains the profile's batch, so the global batch is N times it (default: 1, "
                        "no DDP)")


def _run(args: argparse.Namespace) -> int:
    import torch

    from ampcore.distributed import check_nproc, describe, run_distributed
    from ampcore.graphs import resolve_cuda_graphs
    from ampcore.precision import PRECISIONS, get_precision
    from ampcore.profiles import default_profile_name
    from ampcore.result import write_json
    from ampcore.run import RunSpec, resolve_device, run_experiment
    from ampcore.table import results_table
    from ampcore.workloads import WORKLOADS

    workloads = expand(args.workload, list(WORKLOADS), "workload")
    precisions = expand(args.precision, list(PRECISIONS), "precision")
    if args.json is not None and Path(args.json).exists():
        raise UsageError(f"{args.json} exists; ampcore never overwrites saved results: choose another path")
    profile = args.profile
    if profile is None:
        profile, why = default_profile_name()
        print(f"profile: {profile} ({why}; choose with --profile)", file=sys.stderr)
    device = resolve_device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.nproc != 1:
        check_nproc(args.nproc, str(device))  # before any run: a bad --nproc wastes none
    cuda_graphs = resolve_cuda_graphs(args.cuda_graphs, device)

    runnable = []
    for precision in precisions:
        try:
            get_precision(precision).check_supported(device)
            runnable.append(precision)
        except UnsupportedPrecisionError as exc:
            if ALL not in args.precision:
                raise
            print(f"skipped: {exc}", file=sys.stderr)

    results = []
    for workload in workloads:
        for precision in runnable:
            spec = RunSpec(workload=workload, precision=precision, profile=profile,
                           device=str(device), data_dir=args.data_dir, bert_model=args.bert_model,
                           max_length=args.max_length, allow_download=args.download,
                           allow_random_init=args.allow_random_init,
                           max_grad_norm=args.max_grad_norm, compile=args.compile,
                           cuda_graphs=cuda_graphs)
            if args.nproc > 1:
                results.append(run_distributed(spec, args.nproc, progress=not args.no_progress))
            else:
                results.append(run_experiment(spec, progress=not args.no_progress))
    print(results_table(results))
    for result in results:
        if "world_size" in result.details:
            print(describe(result), file=sys.stderr)
    if args.json is not None:
        print(f"wrote {write_json(results, args.json)}", file=sys.stderr)
    return 0


HISTORY_COMMANDS = ("compare", "report", "calibrate")


def build_parser(run_options: bool = True) -> argparse.ArgumentParser:
    """The ``ampcore`` parser; ``run_options=False`` leaves out ``run``'s options, whose lists
    of valid ids come from registries that import torch (seconds that a history command,
    which never trains, need not pay)."""
    from ampcore.history import cli as history_cli

    parser = argparse.ArgumentParser(prog="ampcore", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="train workloads under precision modes and time them")
    if run_options:
        add_run_arguments(run)
    run.add_argument("--json", type=Path, help="write every RunResult to this new JSON file")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.set_defaults(handler=_run)
    history_cli.register(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    history_only = bool(argv) and argv[0] in HISTORY_COMMANDS
    return dispatch(build_parser(run_options=not history_only), argv)


def dispatch(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None) -> int:
    """Parse, run the chosen subcommand's handler, and turn user-facing errors into messages
    and exit statuses (2: usage, 1: other errors, 130: interrupted)."""
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except AmpcoreError as exc:
        print(f"ampcore: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ampcore: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
