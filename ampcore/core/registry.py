"""The registries: every precision mode and every workload, as torch-free data.

These two tables are the only lists of ids in the project. The CLI, the option table, the
suite (which must not import torch to parse its options) and the history tools read them; the
runtime side (``ampcore.train.precision.activate``, a workload's ``build``) is loaded from the
``implementation`` / ``build`` path (or callable) on demand. Adding a precision mode or a
workload is one implementation plus one ``register_precision`` / ``register_workload`` call
(the public API, ``ampcore.api``: docs/WORKLOADS.md), from ampcore (the built-ins below), a
conftest.py, or an installed package's entry point (``ampcore.core.plugins``, loaded when a
table is first read); a workload holds its ``WorkloadConfig`` for each profile it runs in. A
model family's name (``hf-text:<id or dir>``, ``hf-lm:...``, ``torchvision:<name>[@size]``;
``ampcore.core.families``) becomes a workload the first time it is named (``workload_entry``).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ampcore.core import families, plugins
from ampcore.core.entries import Precision, Workload
from ampcore.core.errors import RegistrationError, UsageError
from ampcore.core.profiles import TINY_MODEL, WorkloadConfig

ALL = "all"
# The precision every speedup and parity check is measured against.
REFERENCE_PRECISION = "fp32"


def run_name(workload: str, precision: str) -> str:
    """A run's name, "bert-amp-bf16": the suite's test ids and the key of its records."""
    return f"{workload}-{precision}"


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


class _Workloads(plugins.Registry[Workload]):
    """The workload table; a model family's name (``ampcore.core.families``) not registered
    yet reads as its entry, checked for syntax only and not added (so that a saved run's id
    finds its traits cheaply, wherever its model lives); ``workload_entry`` checks and adds."""

    def __getitem__(self, key: str) -> Workload:
        try:
            return super().__getitem__(key)
        except KeyError:
            if not families.named(key):
                raise
            try:
                return families.workload(key, check=False)
            except UsageError:
                raise KeyError(key) from None

    def __contains__(self, key: object) -> bool:
        return key in list(self)  # registered: as iterating the table lists it


PRECISIONS: plugins.Registry[Precision] = plugins.Registry("precision mode")
WORKLOADS: plugins.Registry[Workload] = _Workloads("workload")


def _caller() -> str:
    """Where a register_* call was made (two frames up), to name it in a duplicate's error."""
    frame = sys._getframe(2)
    return f"{_REGISTER_CALL}{frame.f_code.co_filename}:{frame.f_lineno}"


_REGISTER_CALL = "register call at "


def registered_in(workload: str, precision: str) -> list[str]:
    """The Python files outside ampcore whose ``register_*`` calls added ``workload`` or
    ``precision`` (a conftest.py): a worker process (fresh processes, DDP ranks) imports them
    before its run, since only pytest imported them in the parent. Entry points need nothing:
    every process discovers them."""
    package = Path(__file__).resolve().parent.parent
    files = []
    for table, key in ((WORKLOADS, workload), (PRECISIONS, precision)):
        source = table.source(key) or ""
        if source.startswith(_REGISTER_CALL):
            path = Path(source[len(_REGISTER_CALL):].rpartition(":")[0])
            if path.suffix == ".py" and package not in path.resolve().parents:
                files.append(str(path))
    return list(dict.fromkeys(files))


def register_precision(precision: Precision, *, source: str | None = None) -> Precision:
    """Add a precision mode; an id registered from elsewhere is a RegistrationError naming
    both sources (``source``: where this one comes from; default: the calling line)."""
    if not isinstance(precision, Precision):
        raise RegistrationError(f"register_precision got a {type(precision).__name__}; "
                                "expected an ampcore.api.Precision")
    PRECISIONS.add(precision.id, precision, source or _caller())
    return precision


def register_workload(workload: Workload, *, source: str | None = None) -> Workload:
    """Add a workload (``ampcore.api.register_workload``; docs/WORKLOADS.md); an id
    registered from elsewhere is a RegistrationError naming both sources (``source``: where
    this one comes from; default: the calling line)."""
    if not isinstance(workload, Workload):
        raise RegistrationError(f"register_workload got a {type(workload).__name__}; "
                                "expected an ampcore.api.Workload")
    WORKLOADS.add(workload.id, workload, source or _caller())
    return workload


def _load_plugins() -> None:
    """The installed packages' precision modes, then their workloads (entry points)."""
    for precision, source in plugins.load_group(plugins.PRECISION_GROUP, Precision):
        register_precision(precision, source=source)
    for workload, source in plugins.load_group(plugins.WORKLOAD_GROUP, Workload):
        register_workload(workload, source=source)


plugins.on_first_read(_load_plugins)


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
    register_precision(_precision, source=plugins.BUILT_IN)

for _workload in (
    Workload("bert", "BERT sequence classification on IMDB (seed) or a generated corpus",
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
             run_options=("max_length", "model"), asserts_speedup=True, ddp=True, data="imdb"),
    Workload("resnet18", "ResNet18 on MNIST (seed) or scikit-learn's 8x8 digits",
             "ampcore.workloads.resnet18:build", configs={
                 # Held out: the 10,000 MNIST test digits (the test split; training uses
                 # 60,000).
                 "seed": WorkloadConfig(epochs=2, batch_size=64, lr=1e-3,
                                        accuracy_floor=0.97),
                 "smoke": WorkloadConfig(epochs=2, batch_size=64, lr=1e-3,
                                         train_samples=640, test_samples=256,
                                         model=TINY_MODEL, accuracy_floor=0.75,
                                         eval_samples=512)}, data="mnist"),
    Workload("llama", "Llama-architecture causal LM on IMDB text (seed) or a generated "
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
             default=False, data="imdb"),
):
    register_workload(_workload, source=plugins.BUILT_IN)


def get_precision(precision_id: str) -> Precision:
    """The registered precision mode of that id; a UsageError lists the valid ones."""
    try:
        return PRECISIONS[precision_id]
    except KeyError:
        raise UsageError(f"unknown precision {precision_id!r}; valid: {', '.join(PRECISIONS)}") from None


def workload_entry(workload_id: str) -> Workload:
    """The registered workload of that id; a model family's name (``family:model``) is
    checked and registered on first use. A UsageError says what is wrong or lists the ids."""
    if workload_id in WORKLOADS:  # registered
        return WORKLOADS[workload_id]
    if families.named(workload_id):
        return register_workload(families.workload(workload_id), source=families.SOURCE)
    raise UsageError(f"unknown workload {workload_id!r}; valid: {', '.join(WORKLOADS)}")


def default_ids(table: Mapping[str, Precision] | Mapping[str, Workload]) -> list[str]:
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
            if value not in valid and kind == "workload" and families.named(value):
                value = workload_entry(value).id  # a model family's: registered now
            elif value not in valid:
                raise UsageError(f"unknown {kind} {value!r}; valid: {', '.join(valid)}, or {ALL}")
            if value not in chosen:
                chosen.append(value)
    return chosen
