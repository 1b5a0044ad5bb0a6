"""Model families: workloads named by the model they train, resolved on first use.

``hf-text:<id or dir>`` (any transformers sequence classifier on the seed's IMDB task),
``hf-lm:<id or dir>`` (any causal language model on packed IMDB text, judged by held-out loss)
and ``torchvision:<name>[@size]`` (any torchvision classification model on MNIST, images resized
to ``size``) are not registered one by one: ``ampcore.core.registry.workload_entry`` turns such
a name into a ``Workload`` and registers it the first time it is named (docs/WORKLOADS.md,
"Model families"). The workload id is the name as given; the model (the weights' source) and
the image size are in its ``WorkloadConfig``, so they are in every run's config and in the key
``ampcore compare`` matches runs on. Torch-free: the torchvision name check is imported from
its ``module:function`` path only when a torchvision name is resolved.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ampcore.core.entries import LIST_SEPARATORS, Workload, load
from ampcore.core.errors import UsageError
from ampcore.core.profiles import WorkloadConfig

SOURCE = "ampcore model family"  # the registry's source of every resolved family workload
SEPARATOR, SIZE_MARK = ":", "@"
# Image sides a torchvision run may ask for: below 16 pixels most networks have pooled the
# image away; above 1024 a network meant for 224 costs 20x its usual work (a digit too many?).
MIN_SIZE, MAX_SIZE = 16, 1024
# A Hugging Face hub id: "name" or "org/name" (letters, digits, "-", "_", ".").
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?")


@dataclass(frozen=True)
class Family:
    """A family of workloads: how its names read and the experiment of each profile."""

    name: str
    syntax: str  # how a workload of the family is named, for messages
    description: str  # "{model}" stands for the model named
    build: str  # the ``module:function`` every workload of the family builds with
    configs: Mapping[str, WorkloadConfig]  # ``model`` is filled in from the name
    run_options: tuple[str, ...] = ()
    quality: str = "accuracy"
    sized: bool = False  # takes ``@size``: the image side (the config's image_size)
    check: str | None = None  # ``module:function(workload_id, model)``, raising UsageError
    data: str | None = None  # the data set its seed profile reads (Workload.data)
    repeatable: bool = True  # Workload.repeatable
    # ``(model, config) -> config``: a model's own training recipe, applied to every profile's
    # config (so it is in the run's config and comparison key); None: the configs as they are.
    recipe: Callable[[str, WorkloadConfig], WorkloadConfig] | None = None


# torchvision's transformer classifiers (the ViTs, Swin, MaxViT): trained from scratch at the
# convolutional networks' AdamW lr 1e-3 without warm-up they do not learn (vit_b_16 on MNIST:
# 0.22 held-out accuracy); DeiT's recipe (Touvron et al. 2021): lr 5e-4 x batch / 512, wd 0.05.
TRANSFORMER_PREFIXES = ("vit_", "swin_", "maxvit_")


def vision_recipe(model: str, config: WorkloadConfig) -> WorkloadConfig:
    """DeiT's learning rate and weight decay for a transformer; a convolutional network's
    config as it is."""
    if not model.startswith(TRANSFORMER_PREFIXES):
        return config
    return dataclasses.replace(config, lr=5e-4 * config.batch_size / 512, weight_decay=0.05)


FAMILIES: dict[str, Family] = {family.name: family for family in (
    Family("hf-text", "hf-text:<hub id or directory>",
           "{model} (transformers AutoModelForSequenceClassification) on IMDB (seed) or a "
           "generated corpus (smoke)", "ampcore.workloads.hf_text:build", configs={
               # bert's seed experiment: 1,000 reviews (800 train / 200 test), 10 epochs.
               "seed": WorkloadConfig(epochs=10, batch_size=64, lr=2e-5, train_samples=800,
                                      test_samples=200, max_length=256, accuracy_floor=0.75,
                                      eval_samples=5000),
               # The model as given (no tiny stand-in: the model is the point) on a few
               # generated reviews: 16 steps, seconds for a small model on a CPU.
               "smoke": WorkloadConfig(epochs=2, batch_size=16, lr=1e-4, train_samples=128,
                                       test_samples=64, max_length=32, eval_samples=64,
                                       accuracy_floor=0.6)},
           run_options=("max_length",), data="imdb"),
    Family("hf-lm", "hf-lm:<hub id or directory>",
           "{model} (transformers AutoModelForCausalLM) on packed IMDB text (seed) or a "
           "generated corpus (smoke), judged by held-out loss", "ampcore.workloads.hf_lm:build",
           configs={
               # llama's seed sizes (2,048 packed sequences of 1,024 tokens, one epoch) at a
               # fine-tuning learning rate: the model comes with its weights.
               "seed": WorkloadConfig(epochs=1, batch_size=16, lr=5e-5, train_samples=2048,
                                      test_samples=64, max_length=1024, weight_decay=0.1),
               "smoke": WorkloadConfig(epochs=2, batch_size=8, lr=1e-4, train_samples=32,
                                       test_samples=16, max_length=32)},
           run_options=("max_length",), quality="loss", data="imdb"),
    Family("torchvision", "torchvision:<model name>[@<image side in pixels>]",
           "torchvision's {model} (random init) on MNIST (seed) or scikit-learn's 8x8 digits "
           "(smoke), grey images repeated to 3 channels and resized",
           "ampcore.workloads.vision:build", configs={
               # resnet18's seed experiment (MNIST, 2 epochs, batch 64) at 224 pixels, the
               # size every torchvision classification model takes.
               "seed": WorkloadConfig(epochs=2, batch_size=64, lr=1e-3, image_size=224,
                                      accuracy_floor=0.9),
               "smoke": WorkloadConfig(epochs=2, batch_size=64, lr=1e-3, train_samples=640,
                                       test_samples=256, eval_samples=512, image_size=32,
                                       accuracy_floor=0.5)},
           sized=True, check="ampcore.workloads.vision:check_name", data="mnist",
           recipe=vision_recipe,
           # Two fresh H200 sessions of resnet50's fp32 run: held-out 0.9811 and 0.9738.
           repeatable=False),
)}


def named(workload_id: str) -> bool:
    """Whether ``workload_id`` is written as a family name (``family:model``)."""
    return SEPARATOR in workload_id


def syntaxes() -> str:
    return ", ".join(family.syntax for family in FAMILIES.values())


def workload(workload_id: str, check: bool = True) -> Workload:
    """The ``Workload`` a family name stands for; a UsageError says what is wrong with it.
    ``check``: also check that the model exists (a directory or hub id; a torchvision name,
    which imports torchvision); without, only the syntax (for lookups that must stay cheap)."""
    family_name, _, rest = workload_id.partition(SEPARATOR)
    family = FAMILIES.get(family_name)
    if family is None:
        raise UsageError(f"unknown model family {family_name!r} in workload {workload_id!r}; "
                         f"valid: {syntaxes()}")
    if any(c in workload_id for c in LIST_SEPARATORS):
        raise UsageError(f"workload {workload_id!r}: ids cannot hold commas or spaces (lists of "
                         "them are split there); use a path without them (a symbolic link)")
    model, size = _split_size(family, workload_id, rest)
    if check:
        _check_model(family, workload_id, model)
    sized = {"image_size": size} if size is not None else {}
    configs = {profile: dataclasses.replace(config, model=model, **sized)
               for profile, config in family.configs.items()}
    if family.recipe is not None:
        configs = {profile: family.recipe(model, config) for profile, config in configs.items()}
    return Workload(workload_id, family.description.format(model=model), family.build, configs,
                    run_options=family.run_options, quality=family.quality, default=False,
                    data=family.data, repeatable=family.repeatable)


def _split_size(family: Family, workload_id: str, rest: str) -> tuple[str, int | None]:
    """(model, image size or None) of the part after ``family:``."""
    model, mark, size = rest.partition(SIZE_MARK) if family.sized else (rest, "", "")
    if not model:
        raise UsageError(f"workload {workload_id!r} names no model; write {family.syntax}")
    if not mark:
        return model, None
    if not size.isdecimal() or not MIN_SIZE <= int(size) <= MAX_SIZE:
        raise UsageError(f"workload {workload_id!r}: image size {size!r} is not a whole number "
                         f"of pixels from {MIN_SIZE} to {MAX_SIZE}; write {family.syntax}, e.g. "
                         f"{family.name}:{model}@224")
    return model, int(size)


def _check_model(family: Family, workload_id: str, model: str) -> None:
    if family.check is not None:
        try:
            check = load(family.check)
        except ImportError as exc:
            raise UsageError(f"workload {workload_id!r} needs {exc.name or 'a library'}, which "
                             f"is not installed ({exc})") from exc
        check(workload_id, model)
        return
    if Path(model).expanduser().is_dir() or (HUB_ID.fullmatch(model) and ".." not in model):
        return  # a hub id is looked up when the run loads it (the cache, or --download)
    why = " (@size is torchvision's; a sequence length is --max-length)" if SIZE_MARK in model else ""
    raise UsageError(f"workload {workload_id!r}: {model!r} is neither a directory nor a Hugging "
                     f"Face model id (name or org/name){why}; give an existing model directory "
                     f"or a hub id: {family.syntax}")
