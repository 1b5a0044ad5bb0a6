"""The option table: every option of ``ampcore run`` and of the suite (``pytest benchmarks``),
each stated once with its flag, environment variable, parser, default, help and the commands
that take it.

The table is rendered to argparse for ``ampcore run`` (``--data-dir``) by ``add_arguments`` and
to pytest options for the suite (``--amp-data-dir``) by ``ampcore.suite.options``; ``resolve``
then gives both the same values, a typed ``Settings`` (``ampcore.options.settings``): the flag,
else the environment variable, else the default, each checked here once (type, range,
finiteness, known ids); ``ampcore.options.request`` turns them into the runs. A bad value is one
``OptionError`` naming the option, the value and what is valid: the CLI exits 2 with it before
any training, the suite makes it a pytest usage error.

Torch-free, so that loading the pytest plugin and building the CLI parser cost nothing; the
value parsers are ``ampcore.options.values``, whose torch-importing checks (a workload's model,
by the parser its registry entry names; injection kinds) run only when such a value is given,
so no list is restated here. ``python -m ampcore.options.table run|suite`` prints a command's
options as a Markdown table (README's tables are this output; a test keeps them equal).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

from ampcore.core import registry
from ampcore.core.errors import UsageError
from ampcore.options.settings import Settings
from ampcore.options.values import (Unknown, choice, device_name, flag, ids, injection_kinds,
                                   integer, model_overrides, path, profile_name, real, workload_model)

RUN, SUITE = "run", "suite"
COMMANDS = (RUN, SUITE)
# ampcore.train.graphs.CHOICES, which imports torch; tests/test_options.py checks that they agree.
CUDA_GRAPH_CHOICES = ("auto", "on", "off")


ANY_WORKLOAD = "*"  # Option.model_of of the option that names the workload in its value


class OptionError(UsageError):
    """A bad option value; the message names the option, the value and what is valid."""


class PerCommand(dict):
    """A default or help that differs between commands: ``PerCommand(run=1, suite=2)``."""


# --- the table ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Option:
    key: str  # attribute of the resolved settings
    help: str | PerCommand  # "{workloads}"/"{precisions}": the registries' ids; "{default_*}": defaults
    parse: Callable[[str], object]
    env: str | None = None
    default: object = None  # None: not set (the help says what that means)
    commands: tuple[str, ...] = COMMANDS
    kind: str = "value"  # "value"; "flag": takes no value; "ids": one or more ids
    metavar: str | None = None
    run_flag: str | None = None  # default: --<key>
    suite_flag: str | None = None  # default: --amp-<key>
    # A workload id: the value overrides that workload's model, in ``Settings.models``;
    # ANY_WORKLOAD: the value maps workload ids to their models (``--model ID=MODEL``).
    model_of: str | None = None

    def flag(self, command: str) -> str:
        given = self.run_flag if command == RUN else self.suite_flag
        prefix = "--" if command == RUN else "--amp-"
        return given or prefix + self.key.replace("_", "-")

    def default_for(self, command: str) -> object:
        return self.default[command] if isinstance(self.default, PerCommand) else self.default

    def help_for(self, command: str) -> str:
        text = self.help[command] if isinstance(self.help, PerCommand) else self.help
        text = text.format(workloads=", ".join(registry.WORKLOADS),
                           precisions=", ".join(registry.PRECISIONS), all=registry.ALL,
                           default_workloads=", ".join(registry.default_ids(registry.WORKLOADS)),
                           default_precisions=", ".join(registry.default_ids(
                               registry.PRECISIONS)),
                           reference=registry.REFERENCE_PRECISION)
        default = self.default_for(command)
        if default not in (None, ()) and self.kind != "flag":  # () : nothing unless named
            text += f" (default: {default})"
        return text

    def env_text(self) -> str:
        return "" if self.env is None else self.env + ("=1" if self.kind == "flag" else "")


def model_option(workload: str, help: str, metavar: str) -> Option:
    """The option overriding ``workload``'s model (``--<id>-model``, ``$AMPCORE_<ID>_MODEL``),
    checked by the parser its registry entry names."""
    return Option(f"{workload}_model", help, workload_model(workload),
                  f"AMPCORE_{workload.upper()}_MODEL", metavar=metavar, model_of=workload)


OPTIONS: tuple[Option, ...] = (
    Option("workloads", "{workloads}, or {all} (default: {default_workloads})", ids("workload", "WORKLOADS"),
           "AMPCORE_WORKLOADS", kind="ids", metavar="ID", run_flag="--workload"),
    Option("precisions", PerCommand(
        run="{precisions}, or {all} (default: {default_precisions}); run in the order given",
        suite="{precisions}, or {all} (default: {default_precisions}); {reference} trains "
              "first"),
        ids("precision", "PRECISIONS"), "AMPCORE_PRECISIONS", kind="ids", metavar="ID",
        run_flag="--precision"),
    Option("profile", "seed: the published experiment (needs the data sets); smoke: tiny and "
           "self-contained (default: seed with CUDA, else smoke)", profile_name,
           "AMPCORE_PROFILE", metavar="NAME"),
    Option("device", "cpu, cuda or cuda:N (default: cuda when available, else cpu)", device_name,
           "AMPCORE_DEVICE", metavar="DEVICE"),
    Option("data_dir", "directory with imdb/ and mnist/, the seed profile's data sets", path,
           "AMPCORE_DATA_DIR", metavar="DIR"),
    Option("download", "allow fetching data sets and models from the internet", flag,
           "AMPCORE_DOWNLOAD", kind="flag"),
    Option("models", "model overrides of any workloads that take one, a plugin's too: "
           "ID=MODEL, comma-separated (--bert-model and --llama-model win over it)",
           model_overrides, "AMPCORE_MODELS", metavar="ID=MODEL", run_flag="--model",
           suite_flag="--amp-model", model_of=ANY_WORKLOAD),
    model_option("bert", "Hugging Face id or local directory for bert", "MODEL"),
    model_option("llama", "llama architecture: llama-125m, llama-wide (hidden 4,096, 4 layers: "
                 "where float8 pays), or llama:hidden=H,layers=L,heads=A,intermediate=I "
                 "(default: the profile's)", "ARCH"),
    Option("max_length", "sequence length of bert and llama (default: the profile's)", integer(1),
           "AMPCORE_MAX_LENGTH", metavar="N"),
    Option("eval_samples", "held-out evaluation samples, disjoint from the training sample, "
           "evaluated once after training (outside the timed rounds) for the parity and compare "
           "verdicts; 0: none (default: the profile's: seed 5,000 IMDB test reviews and the "
           "10,000 MNIST test digits, smoke 512 embedded samples)", integer(0),
           "AMPCORE_EVAL_SAMPLES", metavar="N"),
    Option("seeds", "train every (workload, precision) with N training seeds (the profile's "
           "seed, +1, ...: weight init and batch order change, the data do not) and report "
           "each held-out accuracy and the spread; parity pools the seeds", integer(1),
           "AMPCORE_SEEDS", default=1, metavar="N"),
    Option("allow_random_init", "train a Hugging Face model (bert, hf-text:, hf-lm:) from "
           "random weights when its source has none (speed is valid, accuracy is not)", flag,
           "AMPCORE_ALLOW_RANDOM_INIT", kind="flag"),
    Option("max_grad_norm", "clip gradients to this norm", real(0, inclusive=False),
           "AMPCORE_MAX_GRAD_NORM", commands=(RUN,), metavar="NORM"),
    Option("compile", "torch.compile the models", flag, "AMPCORE_COMPILE", kind="flag"),
    Option("cuda_graphs", "auto, on or off: capture each training step (forward, backward, "
           "optimizer) in a CUDA graph and replay it, which times the GPU's work without the "
           "host's launch jitter; off times a plain eager loop; auto: on for CUDA",
           choice(*CUDA_GRAPH_CHOICES), "AMPCORE_CUDA_GRAPHS", default="auto",
           metavar="|".join(CUDA_GRAPH_CHOICES)),
    Option("inject", "regressions to inject on purpose, comma-separated (`ampcore inject` "
           "lists them); the run is recorded as injected and is never a baseline",
           injection_kinds, "AMPCORE_INJECT", default=(), metavar="KIND"),
    Option("nproc", PerCommand(
        run="train with DistributedDataParallel on N local processes launched by torchrun: one "
            "GPU each on cuda (nccl), or gloo on cpu; each process trains the profile's batch, "
            "so the global batch is N times it (1: no DDP)",
        suite="processes (one per GPU) for the test_ddp_* benchmarks"),
        integer(1), "AMPCORE_NPROC", default=PerCommand(run=1, suite=2), metavar="N"),
    Option("processes", "train each run in N fresh processes, one after another, a round's "
           "time being the median over them (pyperf's worker processes: a process's host speed "
           "is a draw of its own, which moves eager rounds); DDP runs are not repeated; 1: in "
           "this process", integer(1), "AMPCORE_PROCESSES", default=1, metavar="N"),
    Option("min_speedup", "lower 95% CI bound of the speedup over {reference} that AMP must "
           "reach on the workloads that assert one", real(0, inclusive=False),
           "AMPCORE_MIN_SPEEDUP", default=1.3, commands=(SUITE,), metavar="X"),
    # The default is the accuracy judge's (judge.accuracy.DEFAULT_MARGIN; tests check they agree).
    Option("acc_tol", "practical margin: parity fails when {reference} - AMP accuracy on the "
           "paired held-out set is larger than it and significant (one-sided exact McNemar at "
           "0.02); with --amp-seeds, at least 3 x the {reference} seeds' sd; without a held-out "
           "set, the test-accuracy gap may reach the larger of it and 0.03",
           real(0, inclusive=True), "AMPCORE_ACC_TOL", default=0.005, commands=(SUITE,),
           metavar="GAP"),
    Option("require_cuda", "exit with an error before any test when CUDA is not usable, "
           "instead of skipping every GPU benchmark (for GPU CI)", flag, "AMPCORE_REQUIRE_CUDA",
           kind="flag", commands=(SUITE,)),
    Option("loss_tol", "allowed AMP - {reference} held-out loss gap (for fp8 also fp8 - "
           "amp-bf16), in nats per token, on the workloads judged by loss (llama)", real(0, inclusive=True), "AMPCORE_LOSS_TOL",
           default=0.05, commands=(SUITE,), metavar="GAP"),
    Option("summary", "append the session's Markdown summary to this file (e.g. "
           "$GITHUB_STEP_SUMMARY; -: stdout only)", path, "AMPCORE_SUMMARY", commands=(SUITE,), metavar="FILE"),
    Option("json", "write every RunResult to this new JSON file; - for stdout", path,
           commands=(RUN,), metavar="FILE"),
    Option("no_progress", "no progress bars", flag, commands=(RUN,), kind="flag"),
)


def options_for(command: str) -> Iterator[Option]:
    return (o for o in OPTIONS if command in o.commands)


def get_option(key: str) -> Option:
    return next(o for o in OPTIONS if o.key == key)


# --- resolving values ---------------------------------------------------------------------------

def _unset(value: object) -> bool:
    return value is None or value is False or value == "" or value == []


def resolve(command: str, given: Mapping[str, object],
            environ: Mapping[str, str] | None = None) -> Settings:
    """Every option of ``command``: ``given[key]`` (from the flag), else its environment
    variable, else its default; ``OptionError`` for the first bad value. The options only the
    other command takes get their defaults, never read from a flag or the environment."""
    environ = os.environ if environ is None else environ
    values: dict[str, object] = {}
    raw: dict[str, object] = {}
    models: dict[str, str] = {}
    for option in OPTIONS:
        value = (_resolve_one(option, command, given, environ, raw)
                 if command in option.commands else _default(option, command))
        if option.model_of is None:
            values[option.key] = value
        elif option.model_of == ANY_WORKLOAD:
            models = {**(value or {}), **models}  # a workload's own option wins
        elif value is not None:
            models[option.model_of] = str(value)
    return Settings(command=command, models=models, raw=raw, **values)


def _resolve_one(option: Option, command: str, given: Mapping[str, object],
                 environ: Mapping[str, str], raw: dict[str, object]) -> object:
    """The option's value from its flag, else its environment variable, else its default; a
    value given either way is also kept, unparsed, in ``raw``."""
    value, source = given.get(option.key), option.flag(command)
    if _unset(value) and option.env and environ.get(option.env, "") != "":
        value, source = environ[option.env], f"{source} (from ${option.env})"
    if _unset(value):
        return _default(option, command)
    raw[option.key] = value
    return _parse(option, value, source)


def _default(option: Option, command: str) -> object:
    if option.kind == "flag":
        return False
    if option.kind == "ids":  # the registry's default matrix, read now
        return option.parse("")
    return option.default_for(command)


def _parse(option: Option, value: object, source: str) -> object:
    if value is True:  # a flag given on the command line
        return True
    value = " ".join(value) if isinstance(value, (list, tuple)) else str(value)
    try:
        return option.parse(value)
    except Unknown as exc:
        raise OptionError(f"{source}: {exc}") from None
    except ValueError as exc:
        raise OptionError(f"{source}: {exc}, got {value!r}") from None


def asks_for_all(raw: object) -> bool:
    """Whether a raw ids value names ``all`` or none (the default matrix): a mode such a
    request includes is skipped, not an error, where the device cannot run it."""
    if _unset(raw):
        return True
    tokens = raw if isinstance(raw, (list, tuple)) else str(raw).replace(",", " ").split()
    return registry.ALL in tokens


# --- rendering ------------------------------------------------------------------------------------

def argparse_help(option: Option, command: str) -> str:
    """The help argparse (and pytest's parser) shows: ``%`` escaped, the env variable named."""
    text = option.help_for(command) + (f" [env: {option.env_text()}]" if option.env else "")
    return text.replace("%", "%%")


def add_arguments(parser: argparse.ArgumentParser, command: str = RUN) -> None:
    """``command``'s options as argparse arguments; ``resolve(command, vars(args))`` checks them."""
    for option in options_for(command):
        help_text = argparse_help(option, command)
        if option.kind == "flag":
            parser.add_argument(option.flag(command), dest=option.key, action="store_true",
                                default=None, help=help_text)
        else:
            parser.add_argument(option.flag(command), dest=option.key, default=None,
                                nargs="+" if option.kind == "ids" else None,
                                metavar=option.metavar, help=help_text)


def markdown(command: str) -> str:
    """``command``'s options as the Markdown table README shows."""
    rows = ["| option | env | meaning |", "| --- | --- | --- |"]
    for option in options_for(command):
        env = f"`{option.env_text()}`" if option.env else ""
        meaning = option.help_for(command).replace("|", "\\|")
        rows.append(f"| `{option.flag(command)}` | {env} | {meaning} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] not in COMMANDS:
        print(f"usage: python -m ampcore.options.table {{{','.join(COMMANDS)}}}", file=sys.stderr)
        return 2
    print(markdown(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
