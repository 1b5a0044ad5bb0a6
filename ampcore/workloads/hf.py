"""Hugging Face models, loaded the one careful way bert and the ``hf-text`` / ``hf-lm`` model
families share: from a local directory or the hub cache (the hub only with --download),
nothing from the source executed, float32 master weights whatever the checkpoint holds, and a
checkpoint that does not fit the architecture refused instead of silently half-loaded.

transformers initialises every parameter the checkpoint lacks at random and only logs it. A
new task head (a classifier, a language-model head, BERT's pooler) is meant to start random;
anything else missing means the checkpoint is not this architecture's (renamed keys, another
model), and its accuracy would be that of a random model labelled pretrained.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import torch

from ampcore.core.errors import AmpcoreError, UsageError, WeightsError
from ampcore.core.quiet import quiet_loading_bars
from ampcore.data import model_files
from ampcore.data.model_files import TOKENIZER_FILES

# A tokenizer is implausible below this many tokens (the model's vocab_size, when that is
# smaller) or below half the model's vocab_size.
MIN_VOCAB = 100
RANDOM_INIT_HINT = ("pass --allow-random-init to train from random weights (speed is valid, "
                    "accuracy is not)")
CUSTOM_CODE_HINT = ("ampcore never runs a model's own code (trust_remote_code=False); use a model "
                    "whose architecture transformers ships")
SHOWN_KEYS = 5  # missing keys named in a refusal
# Submodules of the base model that a task's fine-tuning initialises anew: BERT's pooler is
# trained only by next-sentence prediction, and checkpoints saved from a masked-LM lack it.
FRESH_BASE_PARTS = ("pooler.",)


@dataclass(frozen=True)
class Source:
    """A model to load and how messages name it."""

    name: str  # a hub id or a local directory, as given
    auto_class: str  # "AutoModelForSequenceClassification" or "AutoModelForCausalLM"
    subject: str  # "the BERT model", "workload 'hf-text:x'": what failed to load
    option: str  # where the user gave the source: "--bert-model", "hf-text:<directory>"
    # Config values the task sets: a classifier's num_labels; a causal LM's is_decoder (BERT
    # and its kin attend both ways unless told they are decoders; decoders ignore it).
    settings: tuple[tuple[str, object], ...] = ()


class Loaded(NamedTuple):
    model: Any  # a transformers PreTrainedModel
    tokenizer: Any
    weights_source: str
    pretrained: bool  # False: random (or partly random) weights, accuracy says nothing


def load(source: Source, *, allow_random_init: bool, allow_download: bool) -> Loaded:
    """The model, its tokenizer, where the weights came from and whether they are pretrained.

    Nothing from the source is executed (trust_remote_code=False, pickles loaded with
    weights_only=True) and nothing prompts: every refusal is a WeightsError (a missing head:
    a UsageError) naming the source and what to do.
    """
    local = Path(source.name).expanduser()
    is_dir = local.is_dir()
    name, where = (str(local), str(local)) if is_dir else (source.name, f"hub id {source.name!r}")
    # An explicit False: transformers then refuses custom code instead of asking [y/N].
    kwargs: dict = {"trust_remote_code": False}
    if not is_dir:
        kwargs["local_files_only"] = not allow_download
    try:
        if is_dir:
            model_files.check_directory(local, source.option)
        config, tokenizer = _config_and_tokenizer(source, name, where, kwargs)
        auto = _auto_class(source.auto_class)
        if is_dir and not model_files.has_weights(local):
            if not allow_random_init:
                raise WeightsError(f"{local} holds no model weights (model.safetensors, "
                                   f"pytorch_model.bin); {RANDOM_INIT_HINT}")
            return Loaded(_from_config(auto, config), tokenizer,
                          f"random init from the config in {local}", False)
        if allow_random_init and not is_dir:
            return Loaded(_from_config(auto, config), tokenizer,
                          f"random init from the config of {source.name!r}", False)
        for path in model_files.checkpoint_files(local) if is_dir else ():
            model_files.check_checkpoint(path)
        with quiet_loading_bars():
            model, info = auto.from_pretrained(name, config=config, output_loading_info=True,
                                               **_weights_kwargs(), **kwargs)
    except AmpcoreError:
        raise
    except _load_errors() as exc:
        hint = f"give {source.option} a local directory with config, tokenizer and weights"
        if not allow_download and not is_dir:
            hint = "pass --download to allow the Hugging Face hub, or " + hint
        raise WeightsError(f"cannot load {source.subject} from {where}: {type(exc).__name__}: "
                           f"{exc}. To fix: {hint}") from exc
    return _checked(source, where, Loaded(model, tokenizer, f"pretrained weights from {where}",
                                          True), info, allow_random_init)


def _checked(source: Source, where: str, loaded: Loaded, info: dict,
             allow_random_init: bool) -> Loaded:
    """``loaded``, unless the checkpoint left more than the task head at random init (#25)."""
    missing = unloaded_keys(loaded.model, info.get("missing_keys", ()))
    if not missing:
        return loaded
    shown = ", ".join(missing[:SHOWN_KEYS]) + (f" and {len(missing) - SHOWN_KEYS} more"
                                                if len(missing) > SHOWN_KEYS else "")
    if not allow_random_init:
        raise WeightsError(
            f"{source.subject}: the checkpoint in {where} lacks {len(missing)} weight(s) of "
            f"{type(loaded.model).__name__} beyond its new head ({shown}): it does not match "
            "the architecture (renamed keys, or another model's checkpoint), and those weights "
            "would silently stay random. Use the checkpoint saved with this config, or "
            f"{RANDOM_INIT_HINT}")
    return loaded._replace(pretrained=False, weights_source=(
        f"partly pretrained weights from {where}: {len(missing)} tensors missing from the "
        f"checkpoint left at random init ({shown})"))


def unloaded_keys(model: torch.nn.Module, missing: object) -> list[str]:
    """The missing keys that are not the task head's: parameters outside the base model
    (``base_model_prefix``) are the head, and so are the base parts in FRESH_BASE_PARTS."""
    prefix = getattr(model, "base_model_prefix", "") or ""
    has_base = bool(prefix) and isinstance(getattr(model, prefix, None), torch.nn.Module)
    head = ({key for key in model.state_dict() if not key.startswith(f"{prefix}.")}
            if has_base else set())

    def fresh(key: str) -> bool:
        inner = key[len(prefix) + 1:] if has_base and key.startswith(f"{prefix}.") else key
        return key in head or inner.startswith(FRESH_BASE_PARTS)

    return sorted(key for key in missing if not fresh(key))


def _auto_class(name: str):
    import transformers

    return getattr(transformers, name)


def _load_errors() -> tuple[type[Exception], ...]:
    """What transformers and the libraries under it raise for a source that cannot be loaded
    (a hub download is not checked as files first)."""
    import pickle

    from safetensors import SafetensorError

    return (OSError, ValueError, EOFError, KeyError, RuntimeError, SafetensorError,
            pickle.UnpicklingError)


def _config_and_tokenizer(source: Source, name: str, where: str, kwargs: dict):
    """The model's config (with the task's ``settings``) with the needed head, and a
    tokenizer checked against it."""
    from transformers import AutoConfig, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(name, **dict(source.settings), **kwargs)
    except ValueError as exc:
        if "custom code" in str(exc):  # transformers' refusal under trust_remote_code=False
            raise WeightsError(f"{where} needs custom code ({exc}); {CUSTOM_CODE_HINT}") from exc
        raise
    if getattr(config, "auto_map", None):  # a hub config; local ones were checked as files
        raise WeightsError(f"the config of {where} has an 'auto_map' (custom code); "
                           f"{CUSTOM_CODE_HINT}")
    check_head(source, config, where)
    tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
    check_vocabulary(tokenizer, config, where, source.option)
    return config, tokenizer


def check_head(source: Source, config, where: str) -> None:
    """The architecture has the head the workload trains (before any weights are read)."""
    mapping = getattr(_auto_class(source.auto_class), "_model_mapping", None)
    if mapping is None or type(config) in mapping:
        return
    task = {"AutoModelForSequenceClassification": "sequence-classification",
            "AutoModelForCausalLM": "causal language-model"}.get(source.auto_class, "task")
    raise UsageError(
        f"{source.subject}: {where} is a {config.model_type!r} model "
        f"({', '.join(getattr(config, 'architectures', None) or [type(config).__name__])}), "
        f"and transformers has no {task} class for {config.model_type!r} "
        f"({source.auto_class}); use a model whose architecture has one")


def check_vocabulary(tokenizer, config, where: str, option: str = "--bert-model") -> None:
    """Refuse a tokenizer that cannot be the model's: one of only special tokens (what
    transformers builds for a directory without tokenizer files), one far smaller than the
    embedding table, or one with ids past its end (an index error deep in the forward)."""
    size, rows = len(tokenizer), getattr(config, "vocab_size", None)
    specials = len(set(tokenizer.all_special_tokens))
    floor = MIN_VOCAB if rows is None else max(min(MIN_VOCAB, rows), rows // 2)
    if size <= specials or size < floor:
        raise WeightsError(
            f"the tokenizer of {where} has {size} tokens ({specials} of them special) for a model "
            f"whose vocab_size is {rows}: implausibly small, most text would become [UNK]. Give "
            f"{option} the model's own tokenizer files ({', '.join(TOKENIZER_FILES[:2])}, ...).")
    if rows is not None and size > rows:
        raise WeightsError(
            f"the tokenizer of {where} has {size} tokens but the model's embedding table has "
            f"vocab_size {rows} rows: ids past {rows - 1} would fail inside the model. Use the "
            "tokenizer files that belong to the model.")


def _from_config(auto, config):
    return auto.from_config(config, trust_remote_code=False)


def _weights_kwargs() -> dict:
    """float32 master weights whatever the checkpoint holds (AMP needs float32 params), and
    pickles with weights_only=True (transformers 4 does that by default, 5 takes the flag)."""
    import transformers

    if int(transformers.__version__.split(".")[0]) >= 5:
        return {"dtype": torch.float32, "weights_only": True}
    return {"torch_dtype": torch.float32}


def usable_positions(model: torch.nn.Module) -> int | None:
    """Sequence positions the model can embed: max_position_embeddings less the ids that
    RoBERTa-style embeddings reserve below the first position (padding_idx + 1)."""
    limit = getattr(model.config, "max_position_embeddings", None)
    table = getattr(getattr(model.base_model, "embeddings", None), "position_embeddings", None)
    padding_idx = getattr(table, "padding_idx", None)
    if limit is None or padding_idx is None:
        return limit
    return limit - (padding_idx + 1)


def check_max_length(model: torch.nn.Module, max_length: int, weights_source: str) -> None:
    """A longer sequence has no position embedding: an index error in the first forward."""
    usable = usable_positions(model)
    if usable is None or max_length <= usable:
        return
    limit = model.config.max_position_embeddings
    reserved = "" if usable == limit else f" ({limit} less {limit - usable} reserved for padding)"
    raise UsageError(f"--max-length {max_length} exceeds the model's {usable} position embeddings"
                     f"{reserved} ({weights_source}); pass --max-length {usable} or less, or "
                     "use a model with more positions (config max_position_embeddings).")


def approximate_flops_per_sample(model: torch.nn.Module, tokens: int) -> float | None:
    """Training FLOPs of one sequence of any transformer, approximately: 6 per weight of every
    linear layer per token (forward and backward), plus the attention scores and their product
    with V in full (12 x layers x hidden x tokens^2). None when the model has no linear layer."""
    weights = sum(m.weight.numel() for m in model.modules()
                  if isinstance(m, torch.nn.Linear) or type(m).__name__ == "Conv1D")
    if not weights:
        return None
    layers = getattr(model.config, "num_hidden_layers", None) or 0
    hidden = getattr(model.config, "hidden_size", None) or 0
    return float(6 * weights * tokens + 12 * layers * hidden * tokens * tokens)
