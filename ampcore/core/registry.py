"""The registries: every precision mode and every workload, as torch-free data.

These two tables are the only lists of ids in the project. The CLI, the option table, the
suite (which must not import torch to parse its options) and the history tools read them; the
runtime side (``ampcore.train.precision.activate``, a workload's ``build``) is loaded from the
``implementation`` / ``build`` path on demand. Adding a precision mode or a workload is one
implementation plus one ``register_precision`` / ``register_workload`` call (or one entry below);
a workload's entry holds its ``WorkloadConfig`` for each profile it runs in.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from dataclasses import dataclass

from ampcore.core.errors import UsageError
from ampcore.core.profiles import TINY_MODEL, WorkloadConfig

ALL = "all"
# The precision every speedup and parity check is measured against.
REFERENCE_PRECISION = "fp32"


def run_name(workload: str, precision: str) -> str:
    """A run's name, "bert-amp-bf16": the suite's test ids and the key of its records."""
    return f"{workload}-{precision}"


@dataclass(frozen=True)
class Precision:
    """A precision mode, without torch. ``ampcore.train.precision.activate`` binds it to a
    device as an instance of ``implementation`` (a ``module:Class`` path of an
    ``ActivePrecision`` subclass)."""

    id: str
    description: str
    method_name: str  # the seed table's "Training Method" label
    autocast: str | None = None  # torch dtype name under autocast; None: no autocast
    grad_scaler: bool = False
    tf32: bool = False
    implementation: str = "ampcore.train.precision:ActivePrecision"
    # Libraries beyond torch that implement the mode's kernels: a change of their version is
    # part of compare's environment check for runs of this mode (elsewhere only shown).
    libraries: tuple[str, ...] = ()
    # The mixed precision this mode adds to (float8 matmuls under bf16 autocast): its loss
    # parity is judged against that one as well as against fp32.
    builds_on: str | None = None
    # In the default matrix (what runs when no precision is named); the others run when named
    # or with "all", so that the default GPU suite stays within its time budget.
    default: bool = True
    # Settings the implementation reads (fp8's scaling recipe), as (key, value) pairs.
    options: tuple[tuple[str, str], ...] = ()

    @property
    def mixed(self) -> bool:
        """A mixed-precision mode: gated for speedup and parity against the reference."""
        return self.autocast is not None

    def option(self, key: str) -> str:
        """The value of one of ``options``; a KeyError names a setting the mode lacks."""
        return dict(self.options)[key]


@dataclass(frozen=True)
class WorkloadEntry:
    """A workload, its experiment in each profile, and the traits the suite needs to know."""

    id: str
    description: str
    build: str  # ``module:function`` returning a PreparedWorkload
    # Its experiment in each profile it runs in, by profile name: registering a workload is
    # this one entry, no profile is edited.
    configs: Mapping[str, WorkloadConfig]
    # WorkloadConfig fields a run may override: ``max_length`` from the option of that name,
    # ``model`` from the workload's own model option (RunSpec.model).
    run_options: tuple[str, ...] = ()
    # ``module:function`` that parses a model override, raising UsageError for one the workload
    # cannot build; None: any text (a source checked when the run loads it).
    model_parser: str | None = None
    asserts_speedup: bool = False  # the suite asserts that AMP beats fp32 on it
    ddp: bool = False  # the suite has DistributedDataParallel benchmarks of it
    # What its parity rule judges: "accuracy" (fp32 - AMP test accuracy) or "loss" (AMP - fp32
    # held-out loss, for a language model, whose token accuracy says little).
    quality: str = "accuracy"
    default: bool = True  # in the default matrix, as Precision.default

    def accepts(self, option: str) -> bool:
        return option in self.run_options

    def config(self, profile: str) -> WorkloadConfig:
        """Its experiment in ``profile``; a UsageError names the workload and the profile."""
        try:
            return self.configs[profile]
        except KeyError:
            raise UsageError(
                f"workload {self.id!r} has no configuration for the {profile!r} profile (it has: "
                f"{', '.join(self.configs) or 'none'}): run it in one of those (--profile, "
                f"--amp-profile), or give its registry entry configs[{profile!r}]") from None


@dataclass(frozen=True)
class SpeedupClaim:
    """A speedup of one mixed precision over another that a measurement showed, for one
    workload architecture (compiled or not). The suite asserts it where a run matches; elsewhere
    the ratio is only reported, since float8 pays only where its GEMM savings outweigh its casts."""

    precision: str
    over: str
    workload: str
    model: str
    compiled: bool
    min_speedup: float  # the lower 95% bound the suite asserts
    measured: str  # where the claim comes from, for the message

    @property
    def where(self) -> str:
        return f"{self.workload} {self.model}{' compiled' if self.compiled else ''}"


SPEEDUP_CLAIMS: tuple[SpeedupClaim, ...] = (
    SpeedupClaim("fp8", "amp-bf16", "llama", "llama-wide", compiled=True, min_speedup=1.25,
                 measured="1.45x on an H200, torch 2.11, torchao 0.18 (docs/PERFORMANCE.md)"),
)


def speedup_claims(workload: str, precision: str) -> list[SpeedupClaim]:
    return [c for c in SPEEDUP_CLAIMS if (c.workload, c.precision) == (workload, precision)]


def claim_for(workload: str, precision: str, model: str | None,
              compiled: bool) -> SpeedupClaim | None:
    """The measured claim a run of this architecture and compile setting is held to, if any."""
    return next((c for c in speedup_claims(workload, precision)
                 if (c.model, c.compiled) == (model, compiled)), None)


PRECISIONS: dict[str, Precision] = {}
WORKLOADS: dict[str, WorkloadEntry] = {}


def register_precision(precision: Precision) -> Precision:
    PRECISIONS[precision.id] = precision
    return precision


def register_workload(entry: WorkloadEntry) -> WorkloadEntry:
    WORKLOADS[entry.id] = entry
    return entry


for _precision in (
    Precision("fp32", "strict IEEE float32 (TF32 off for matmuls and cuDNN convolutions)",
              "Regular (fp32)"),
    Precision("tf32", "float32 with TF32 tensor-core matmuls and convolutions", "TF32",
              tf32=True),
    Precision("amp-fp16", "autocast to float16 with a GradScaler", "Mixed precision (fp16)",
              autocast="float16", grad_scaler=True),
    Precision("amp-bf16", "autocast to bfloat16 (no loss scaling needed)",
              "Mixed precision (bf16)", autocast="bfloat16"),
    # torchao float8 linears (ampcore.train.fp8) inside bfloat16 autocast; fp32 master weights.
    Precision("fp8", "float8 matmuls (torchao, tensorwise scaling) under bfloat16 autocast",
              "Mixed precision (fp8)", autocast="bfloat16",
              implementation="ampcore.train.fp8:Float8Active", libraries=("torchao",),
              builds_on="amp-bf16", default=False, options=(("recipe", "tensorwise"),)),
    Precision("fp8-rowwise", "float8 matmuls (torchao, rowwise scaling) under bfloat16 "
              "autocast", "Mixed precision (fp8, rowwise)", autocast="bfloat16",
              implementation="ampcore.train.fp8:Float8Active", libraries=("torchao",),
              builds_on="amp-bf16", default=False, options=(("recipe", "rowwise"),)),
):
    register_precision(_precision)

for _workload in (
    WorkloadEntry("bert", "BERT sequence classification on IMDB (seed) or a generated corpus",
                  "ampcore.workloads.bert:build", configs={
                      # 1,000 reviews sampled with the seed, split 800 train / 200 test.
                      "seed": WorkloadConfig(epochs=10, batch_size=64, lr=2e-5,
                                             train_samples=800, test_samples=200,
                                             max_length=256, model="bert-base-cased",
                                             accuracy_floor=0.75, eval_samples=5000),
                      # Enough steps for fp32 and AMP to converge (~0.97-0.99 measured on a
                      # CPU), so the parity check compares trained models, and 256 test reviews
                      # so one review is 0.4%.
                      "smoke": WorkloadConfig(epochs=8, batch_size=32, lr=3e-3,
                                              train_samples=640, test_samples=256, max_length=32,
                                              model=TINY_MODEL, accuracy_floor=0.80,
                                              eval_samples=512)},
                  run_options=("max_length", "model"), asserts_speedup=True, ddp=True),
    WorkloadEntry("resnet18", "ResNet18 on MNIST (seed) or scikit-learn's 8x8 digits",
                  "ampcore.workloads.resnet18:build", configs={
                      # Held out: the 10,000 MNIST test digits (the test split; training uses
                      # 60,000).
                      "seed": WorkloadConfig(epochs=2, batch_size=64, lr=1e-3,
                                             accuracy_floor=0.97),
                      "smoke": WorkloadConfig(epochs=2, batch_size=64, lr=1e-3,
                                              train_samples=640, test_samples=256,
                                              model=TINY_MODEL, accuracy_floor=0.75,
                                              eval_samples=512)}),
    WorkloadEntry("llama", "Llama-architecture causal LM on IMDB text (seed) or a generated "
                  "corpus, judged by held-out loss", "ampcore.workloads.llama:build", configs={
                      # ~134M-parameter Llama on 2,048 packed IMDB sequences of 1,024 tokens
                      # (2.1M tokens, 128 steps of 16K tokens), held-out loss on 64 test-split
                      # sequences.
                      "seed": WorkloadConfig(epochs=1, batch_size=16, lr=3e-4,
                                             train_samples=2048, test_samples=64,
                                             max_length=1024, model="llama-125m",
                                             weight_decay=0.1),
                      # A tiny Llama on the generated reviews as text: 20 steps of 16 x 32 tokens.
                      "smoke": WorkloadConfig(epochs=2, batch_size=16, lr=1e-2,
                                              train_samples=160, test_samples=32, max_length=32,
                                              model=TINY_MODEL)},
                  run_options=("max_length", "model"),
                  model_parser="ampcore.workloads.llama:architecture", quality="loss",
                  default=False),
):
    register_workload(_workload)


def get_precision(precision_id: str) -> Precision:
    """The registered precision mode of that id; a UsageError lists the valid ones."""
    try:
        return PRECISIONS[precision_id]
    except KeyError:
        raise UsageError(f"unknown precision {precision_id!r}; valid: {', '.join(PRECISIONS)}") from None


def workload_entry(workload_id: str) -> WorkloadEntry:
    try:
        return WORKLOADS[workload_id]
    except KeyError:
        raise UsageError(f"unknown workload {workload_id!r}; valid: {', '.join(WORKLOADS)}") from None


def default_ids(table: dict[str, Precision] | dict[str, WorkloadEntry]) -> list[str]:
    """The ids of a registry table's default matrix, in registration order."""
    return [id_ for id_, entry in table.items() if entry.default]


def expand_ids(requested: str | list[str] | tuple[str, ...] | None, valid: list[str],
               kind: str, default: list[str] | None = None) -> list[str]:
    """Expand ``all`` and check every id, keeping the order given and dropping repeats; a
    string is split on commas and spaces; nothing requested means ``default`` (every id when
    it is None)."""
    if isinstance(requested, str):
        requested = requested.replace(",", " ").split()
    if not requested:
        return list(valid if default is None else default)
    chosen: list[str] = []
    for item in requested:
        for value in (valid if item == ALL else [item]):
            if value not in valid:
                raise UsageError(f"unknown {kind} {value!r}; valid: {', '.join(valid)}, or {ALL}")
            if value not in chosen:
                chosen.append(value)
    return chosen


def load(path: str) -> object:
    """The object a ``module:attribute`` path names (imported on first use)."""
    module, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module), attribute)
