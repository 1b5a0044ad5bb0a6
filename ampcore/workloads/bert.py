"""BERT sequence classification (2 labels) on IMDB (seed) or a generated corpus (smoke)."""

from __future__ import annotations

from pathlib import Path

import torch

from ampcore.data import imdb, smoke
from ampcore.data.imdb import TextSplits
from ampcore.measure.flops import bert_train_flops_per_sample
from ampcore.core.profiles import TINY_MODEL, WorkloadConfig
from ampcore.workloads import hf
from ampcore.workloads.base import PreparedWorkload, linear_schedule, make_adamw

NUM_LABELS = 2
# The smoke profile's model: BERT's architecture, small enough to train in seconds on a CPU.
TINY_BERT = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=128, max_position_embeddings=64)


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


def load_model(source: str, *, allow_random_init: bool, allow_download: bool) -> hf.Loaded:
    """(model, tokenizer, weights_source, pretrained) from a local directory or a hub id: the
    loading shared with the hf-text and hf-lm families (``ampcore.workloads.hf.load``)."""
    return hf.load(hf.Source(source, "AutoModelForSequenceClassification", "the BERT model",
                             "--bert-model", settings=(("num_labels", NUM_LABELS),)),
                   allow_random_init=allow_random_init, allow_download=allow_download)


def _tiny_model(texts: list[str]) -> hf.Loaded:
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = smoke.train_wordpiece_tokenizer(texts)
    config = BertConfig(vocab_size=len(tokenizer), num_labels=NUM_LABELS, **TINY_BERT)
    model = BertForSequenceClassification(config)
    dims = ", ".join(f"{k}={v}" for k, v in TINY_BERT.items())
    # training from scratch is the smoke experiment: its accuracy means something
    return hf.Loaded(model, tokenizer, f"random init, tiny BERT ({dims}) with a WordPiece "
                     "tokenizer trained on the corpus", True)


def review_texts(config: WorkloadConfig, real_data: bool, data_dir: Path | None,
                 allow_download: bool) -> TextSplits:
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
    texts = review_texts(config, real_data, data_dir, allow_download)
    torch.manual_seed(config.training_seed)  # the same initial weights for every precision
    if config.model == TINY_MODEL:
        loaded = _tiny_model(texts.train_texts)
    else:
        loaded = load_model(config.model, allow_random_init=allow_random_init,
                            allow_download=allow_download)
    hidden = loaded.model.config
    flops = bert_train_flops_per_sample(hidden.hidden_size, hidden.num_hidden_layers,
                                        hidden.intermediate_size, config.max_length, NUM_LABELS)
    return classifier_workload("bert", config, device, texts, loaded, flops)


def bidirectional(model: torch.nn.Module) -> bool:
    """An encoder (its architecture has a masked-LM head: BERT, RoBERTa, DistilBERT, ...),
    whose padding mask the MASK_FORMS may replace. A decoder's prepared 4D mask would replace
    its causal mask too, so decoders keep the tokenizer's mask."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING

    return type(model.config) in MODEL_FOR_MASKED_LM_MAPPING


def classifier_workload(name: str, config: WorkloadConfig, device: torch.device,
                        texts: TextSplits, loaded: hf.Loaded,
                        flops_per_sample: float | None) -> PreparedWorkload:
    """A sequence classifier on ``texts``, padded to ``config.max_length``: bert's, and any
    ``hf-text`` model's (``ampcore.workloads.hf_text``)."""
    tokenizer, weights_source = loaded.tokenizer, loaded.weights_source
    hf.check_max_length(loaded.model, config.max_length, weights_source)
    model = loaded.model.float().to(device)
    mask_form = TOKENIZED_FORM  # until probed on the model, below

    def encode(batch: list[str]) -> dict[str, torch.Tensor]:
        enc = dict(tokenizer(batch, padding="max_length", truncation=True,
                             max_length=config.max_length, return_tensors="pt"))
        return with_mask_form({k: v.to(device) for k, v in enc.items()}, mask_form)

    if bidirectional(model):
        mask_form = attention_mask_form(model, encode(texts.train_texts[:1]))
    steps_per_epoch = -(-len(texts.train_labels) // config.batch_size)
    optimizer = make_adamw(model, config.lr, config.weight_decay, device)
    labels = lambda values: torch.tensor(values, device=device)  # noqa: E731
    return PreparedWorkload(
        name=name, model=model, optimizer=optimizer,
        scheduler=linear_schedule(optimizer, steps_per_epoch * config.epochs), forward=_forward,
        train_inputs=encode(texts.train_texts), train_labels=labels(texts.train_labels),
        test_inputs=encode(texts.test_texts), test_labels=labels(texts.test_labels),
        heldout_inputs=encode(texts.heldout_texts) if texts.heldout_texts else {},
        heldout_labels=labels(texts.heldout_labels) if texts.heldout_texts else None,
        heldout_source=texts.heldout_source,
        data_source=texts.source, weights_source=weights_source,
        accuracy_meaningful=loaded.pretrained, tokens_per_sample=config.max_length,
        flops_per_sample=flops_per_sample,
        details={"architecture": type(model).__name__,
                 "hidden_size": getattr(model.config, "hidden_size", None),
                 "layers": getattr(model.config, "num_hidden_layers", None),
                 "attention_mask": mask_form,
                 "parameters": sum(p.numel() for p in model.parameters())},
    )
