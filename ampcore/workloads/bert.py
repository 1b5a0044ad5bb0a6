"""BERT sequence classification (2 labels) on IMDB (seed) or a generated corpus (smoke)."""

from __future__ import annotations

from pathlib import Path

import torch

from ampcore.data import imdb, model_files, smoke
from ampcore.data.model_files import TOKENIZER_FILES
from ampcore.core.errors import AmpcoreError, UsageError, WeightsError
from ampcore.measure.flops import bert_train_flops_per_sample
from ampcore.core.profiles import TINY_MODEL, WorkloadConfig
from ampcore.workloads.base import PreparedWorkload, linear_schedule, make_adamw

NUM_LABELS = 2
# A tokenizer is implausible below this many tokens (the model's vocab_size, when that is
# smaller) or below half the model's vocab_size.
MIN_VOCAB = 100
# The smoke profile's model: BERT's architecture, small enough to train in seconds on a CPU.
TINY_BERT = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=128, max_position_embeddings=64)
RANDOM_INIT_HINT = "pass --allow-random-init to train from random weights (speed is valid, accuracy is not)"
CUSTOM_CODE_HINT = ("ampcore never runs a model's own code (trust_remote_code=False); use a model "
                    "whose architecture transformers ships (a BERT-family model)")


def _forward(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    return model(**inputs).logits


# The padding-mask forms a BERT-family model may take without reading the mask on the host,
# most preferred first. transformers' SDPA path checks a 2D mask with ``mask.all()`` on every
# forward (to drop an all-ones mask): a host sync inside the training step, which a CUDA graph
# cannot capture. Which form the installed transformers takes is probed on the model itself
# (``attention_mask_form``), not read from its version.
MASK_FORMS = {
    # transformers 5 (masking_utils): a prepared boolean (batch, 1, 1, keys) mask, True =
    # attend, passes through untouched; transformers 4 refuses any 4D padding mask.
    "4d": lambda mask: mask.bool()[:, None, None, :],
    # transformers 4: a (batch, queries, keys) mask goes through get_extended_attention_mask,
    # which inverts it arithmetically. A view (no keys x keys copy of every sample is kept),
    # boolean so that a step's gathered batch of it is an eighth of the tokenizer's int64.
    "3d": lambda mask: mask.bool()[:, None, :].expand(-1, mask.shape[-1], -1),
}
TOKENIZED_FORM = "2d"  # the tokenizer's (batch, keys) mask, kept when no other form is taken
# What a model raises for a mask form it does not take ("Wrong shape for ... attention_mask").
MASK_REFUSALS = (ValueError, RuntimeError, IndexError)


def attention_mask_form(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> str:
    """The first of MASK_FORMS the model accepts, or TOKENIZED_FORM: tried in eval-mode forwards
    of one sample of ``inputs`` (no dropout, so the RNG stream the training draws is unchanged).
    Only SDPA attention checks the 2D mask on the host; other implementations keep it."""
    if getattr(model.config, "_attn_implementation", None) != "sdpa":
        return TOKENIZED_FORM
    sample = {name: tensor[:1] for name, tensor in inputs.items()}
    was_training = model.training
    model.eval()
    try:
        for name, form in MASK_FORMS.items():
            try:
                with torch.no_grad():
                    model(**{**sample, "attention_mask": form(sample["attention_mask"])})
            except MASK_REFUSALS:
                continue
            return name
    finally:
        model.train(was_training)
    return TOKENIZED_FORM


def with_mask_form(inputs: dict[str, torch.Tensor], form: str) -> dict[str, torch.Tensor]:
    """``inputs`` with their 2D attention mask in ``form`` (a name from attention_mask_form)."""
    if form == TOKENIZED_FORM:
        return inputs
    return {**inputs, "attention_mask": MASK_FORMS[form](inputs["attention_mask"])}


def load_model(source: str, *, allow_random_init: bool, allow_download: bool):
    """(model, tokenizer, weights_source, pretrained) from a local directory or a hub id.

    Nothing from the source is executed (trust_remote_code=False, pickles loaded with
    weights_only=True) and nothing prompts: every refusal is a WeightsError naming the file.
    """
    from transformers import AutoModelForSequenceClassification

    local = Path(source).expanduser()
    is_dir = local.is_dir()
    name, where = (str(local), str(local)) if is_dir else (source, f"hub id {source!r}")
    # An explicit False: transformers then refuses custom code instead of asking [y/N].
    kwargs: dict = {"trust_remote_code": False}
    if not is_dir:
        kwargs["local_files_only"] = not allow_download
    try:
        if is_dir:
            model_files.check_directory(local)
        config, tokenizer = _config_and_tokenizer(name, where, kwargs)
        if is_dir and not model_files.has_weights(local):
            if not allow_random_init:
                raise WeightsError(f"{local} holds no model weights (model.safetensors, "
                                   f"pytorch_model.bin); {RANDOM_INIT_HINT}")
            return _from_config(config), tokenizer, f"random init from the config in {local}", False
        if allow_random_init and not is_dir:
            return _from_config(config), tokenizer, f"random init from the config of {source!r}", False
        for path in model_files.checkpoint_files(local) if is_dir else ():
            model_files.check_checkpoint(path)
        model = AutoModelForSequenceClassification.from_pretrained(
            name, config=config, **_weights_kwargs(), **kwargs)
    except AmpcoreError:
        raise
    except _load_errors() as exc:
        hint = "give --bert-model a local directory with config, tokenizer and weights"
        if not allow_download and not is_dir:
            hint = "pass --download to allow the Hugging Face hub, or " + hint
        raise WeightsError(f"cannot load the BERT model from {where}: {type(exc).__name__}: "
                           f"{exc}. To fix: {hint}") from exc
    return model, tokenizer, f"pretrained weights from {where}", True


def _load_errors() -> tuple[type[Exception], ...]:
    """What transformers and the libraries under it raise for a source that cannot be loaded
    (a hub download is not checked as files first)."""
    import pickle

    from safetensors import SafetensorError

    return (OSError, ValueError, EOFError, KeyError, RuntimeError, SafetensorError,
            pickle.UnpicklingError)


def _config_and_tokenizer(name: str, where: str, kwargs: dict):
    """The model's config (2 labels) and a tokenizer checked against it."""
    from transformers import AutoConfig, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(name, num_labels=NUM_LABELS, **kwargs)
    except ValueError as exc:
        if "custom code" in str(exc):  # transformers' refusal under trust_remote_code=False
            raise WeightsError(f"{where} needs custom code ({exc}); {CUSTOM_CODE_HINT}") from exc
        raise
    if getattr(config, "auto_map", None):  # a hub config; local ones were checked as files
        raise WeightsError(f"the config of {where} has an 'auto_map' (custom code); {CUSTOM_CODE_HINT}")
    tokenizer = AutoTokenizer.from_pretrained(name, **kwargs)
    check_vocabulary(tokenizer, config, where)
    return config, tokenizer


def check_vocabulary(tokenizer, config, where: str) -> None:
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
            f"--bert-model the model's own tokenizer files ({', '.join(TOKENIZER_FILES[:2])}, ...).")
    if rows is not None and size > rows:
        raise WeightsError(
            f"the tokenizer of {where} has {size} tokens but the model's embedding table has "
            f"vocab_size {rows} rows: ids past {rows - 1} would fail inside the model. Use the "
            "tokenizer files that belong to the model.")


def _from_config(config):
    from transformers import AutoModelForSequenceClassification

    return AutoModelForSequenceClassification.from_config(config, trust_remote_code=False)


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


def _tiny_model(texts: list[str]):
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = smoke.train_wordpiece_tokenizer(texts)
    config = BertConfig(vocab_size=len(tokenizer), num_labels=NUM_LABELS, **TINY_BERT)
    model = BertForSequenceClassification(config)
    dims = ", ".join(f"{k}={v}" for k, v in TINY_BERT.items())
    return model, tokenizer, f"random init, tiny BERT ({dims}) with a WordPiece tokenizer trained on the corpus"


def _texts(config: WorkloadConfig, real_data: bool, data_dir: Path | None,
           allow_download: bool):
    """The train, test and held-out reviews: the IMDB sample (seed) or a generated corpus."""
    if real_data:
        dsets, source = imdb.load_imdb(data_dir, allow_download)
        texts = imdb.seed_sample(dsets, config.train_samples, config.test_samples, config.seed, source)
        return imdb.add_heldout(dsets, texts, config.eval_samples, config.seed, source)
    # a generated corpus has no "every one": None means as many as the test split
    heldout = config.test_samples if config.eval_samples is None else config.eval_samples
    return smoke.sentiment_corpus(config.train_samples, config.test_samples, config.seed, heldout)


def build(config: WorkloadConfig, device: torch.device, *, real_data: bool,
          data_dir: Path | None, allow_download: bool, allow_random_init: bool = False,
          **_: object) -> PreparedWorkload:
    texts = _texts(config, real_data, data_dir, allow_download)
    torch.manual_seed(config.training_seed)  # the same initial weights for every precision
    if config.model == TINY_MODEL:
        model, tokenizer, weights_source = _tiny_model(texts.train_texts)
        accuracy_meaningful = True  # training from scratch is the smoke experiment
    else:
        model, tokenizer, weights_source, accuracy_meaningful = load_model(
            config.model, allow_random_init=allow_random_init, allow_download=allow_download)
    check_max_length(model, config.max_length, weights_source)
    model = model.float().to(device)

    mask_form = TOKENIZED_FORM  # until probed on the model, below

    def encode(batch: list[str]) -> dict[str, torch.Tensor]:
        enc = dict(tokenizer(batch, padding="max_length", truncation=True,
                             max_length=config.max_length, return_tensors="pt"))
        return with_mask_form({k: v.to(device) for k, v in enc.items()}, mask_form)

    mask_form = attention_mask_form(model, encode(texts.train_texts[:1]))

    steps_per_epoch = -(-len(texts.train_labels) // config.batch_size)
    optimizer = make_adamw(model, config.lr, config.weight_decay, device)
    hidden = model.config
    return PreparedWorkload(
        name="bert", model=model, optimizer=optimizer,
        scheduler=linear_schedule(optimizer, steps_per_epoch * config.epochs),
        forward=_forward,
        train_inputs=encode(texts.train_texts),
        train_labels=torch.tensor(texts.train_labels, device=device),
        test_inputs=encode(texts.test_texts),
        test_labels=torch.tensor(texts.test_labels, device=device),
        heldout_inputs=encode(texts.heldout_texts) if texts.heldout_texts else {},
        heldout_labels=(torch.tensor(texts.heldout_labels, device=device)
                        if texts.heldout_texts else None),
        heldout_source=texts.heldout_source,
        data_source=texts.source, weights_source=weights_source,
        accuracy_meaningful=accuracy_meaningful,
        tokens_per_sample=config.max_length,
        flops_per_sample=bert_train_flops_per_sample(
            hidden.hidden_size, hidden.num_hidden_layers, hidden.intermediate_size,
            config.max_length, NUM_LABELS),
        details={"architecture": type(model).__name__, "hidden_size": hidden.hidden_size,
                 "layers": hidden.num_hidden_layers, "attention_mask": mask_form,
                 "parameters": sum(p.numel() for p in model.parameters())},
    )
