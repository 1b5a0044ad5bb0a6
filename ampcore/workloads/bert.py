"""BERT sequence classification (2 labels) on IMDB (seed) or a generated corpus (smoke)."""

from __future__ import annotations

from pathlib import Path

import torch

from ampcore.data import imdb, smoke
from ampcore.errors import UsageError, WeightsError
from ampcore.flops import bert_train_flops_per_sample
from ampcore.profiles import TINY_MODEL, WorkloadConfig
from ampcore.workloads.base import PreparedWorkload, linear_schedule, make_adamw

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json",
                "pytorch_model.bin.index.json")
NUM_LABELS = 2
# The smoke profile's model: BERT's architecture, small enough to train in seconds on a CPU.
TINY_BERT = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
                 intermediate_size=128, max_position_embeddings=64)
RANDOM_INIT_HINT = "pass --allow-random-init to train from random weights (speed is valid, accuracy is not)"


def _forward(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    return model(**inputs).logits


def sync_free_attention_mask(model: torch.nn.Module, mask: torch.Tensor) -> torch.Tensor:
    """The padding mask in a form the model's attention uses without reading it on the host.

    transformers' SDPA path checks a 2D padding mask with ``mask.all()`` on every forward (to
    drop an all-ones mask), a host sync inside the training step. A prepared 4D boolean mask
    (batch, 1, 1, keys; True = attend) is passed through untouched and broadcasts the same way.
    """
    import importlib.util

    sdpa = getattr(model.config, "_attn_implementation", None) == "sdpa"
    if sdpa and importlib.util.find_spec("transformers.masking_utils") is not None:
        return mask.bool()[:, None, None, :]
    return mask


def has_weights(directory: Path) -> bool:
    return any((directory / name).is_file() for name in WEIGHT_FILES)


def load_model(source: str, *, allow_random_init: bool, allow_download: bool):
    """(model, tokenizer, weights_source, pretrained) from a local directory or a hub id."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    local = Path(source).expanduser()
    hub_kwargs = {} if local.is_dir() else {"local_files_only": not allow_download}
    where = str(local) if local.is_dir() else f"hub id {source!r}"
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(local) if local.is_dir() else source, **hub_kwargs)
        if local.is_dir() and not has_weights(local):
            if not allow_random_init:
                raise WeightsError(f"{local} holds no model weights ({', '.join(WEIGHT_FILES[:2])}); "
                                   f"{RANDOM_INIT_HINT}")
            config = AutoConfig.from_pretrained(str(local), num_labels=NUM_LABELS)
            return (AutoModelForSequenceClassification.from_config(config), tokenizer,
                    f"random init from the config in {local}", False)
        if allow_random_init and not local.is_dir():
            config = AutoConfig.from_pretrained(source, num_labels=NUM_LABELS, **hub_kwargs)
            return (AutoModelForSequenceClassification.from_config(config), tokenizer,
                    f"random init from the config of {source!r}", False)
        model = AutoModelForSequenceClassification.from_pretrained(
            str(local) if local.is_dir() else source, num_labels=NUM_LABELS,
            **_float32_kwarg(), **hub_kwargs)
    except WeightsError:
        raise
    except (OSError, ValueError) as exc:
        hint = "give --bert-model a local directory with config, tokenizer and weights"
        if not allow_download and not local.is_dir():
            hint = "pass --download to allow the Hugging Face hub, or " + hint
        raise WeightsError(f"cannot load the BERT model from {where}: {exc}. To fix: {hint}"
        ) from exc
    return model, tokenizer, f"pretrained weights from {where}", True


def _float32_kwarg() -> dict:
    """Load float32 master weights whatever the checkpoint holds (AMP needs float32 params)."""
    import transformers

    major = int(transformers.__version__.split(".")[0])
    return {"dtype": torch.float32} if major >= 5 else {"torch_dtype": torch.float32}


def _tiny_model(texts: list[str]):
    from transformers import BertConfig, BertForSequenceClassification

    tokenizer = smoke.train_wordpiece_tokenizer(texts)
    config = BertConfig(vocab_size=len(tokenizer), num_labels=NUM_LABELS, **TINY_BERT)
    model = BertForSequenceClassification(config)
    dims = ", ".join(f"{k}={v}" for k, v in TINY_BERT.items())
    return model, tokenizer, f"random init, tiny BERT ({dims}) with a WordPiece tokenizer trained on the corpus"


def build(config: WorkloadConfig, device: torch.device, *, real_data: bool,
          data_dir: Path | None, allow_download: bool, allow_random_init: bool = False,
          **_: object) -> PreparedWorkload:
    if real_data:
        dsets, source = imdb.load_imdb(data_dir, allow_download)
        texts = imdb.seed_sample(dsets, config.train_samples, config.test_samples, config.seed, source)
    else:
        texts = smoke.sentiment_corpus(config.train_samples, config.test_samples, config.seed)

    torch.manual_seed(config.seed)  # the same initial weights for every precision
    if config.model == TINY_MODEL:
        model, tokenizer, weights_source = _tiny_model(texts.train_texts)
        accuracy_meaningful = True  # training from scratch is the smoke experiment
    else:
        model, tokenizer, weights_source, accuracy_meaningful = load_model(
            config.model, allow_random_init=allow_random_init, allow_download=allow_download)
    model = model.float().to(device)
    max_positions = model.config.max_position_embeddings
    if config.max_length > max_positions:
        raise UsageError(f"--max-length {config.max_length} exceeds the model's "
                         f"{max_positions} position embeddings")

    def encode(batch: list[str]) -> dict[str, torch.Tensor]:
        enc = dict(tokenizer(batch, padding="max_length", truncation=True,
                             max_length=config.max_length, return_tensors="pt"))
        enc["attention_mask"] = sync_free_attention_mask(model, enc["attention_mask"])
        return {k: v.to(device) for k, v in enc.items()}

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
        data_source=texts.source, weights_source=weights_source,
        accuracy_meaningful=accuracy_meaningful,
        tokens_per_sample=config.max_length,
        flops_per_sample=bert_train_flops_per_sample(
            hidden.hidden_size, hidden.num_hidden_layers, hidden.intermediate_size,
            config.max_length, NUM_LABELS),
        details={"architecture": type(model).__name__, "hidden_size": hidden.hidden_size,
                 "layers": hidden.num_hidden_layers,
                 "parameters": sum(p.numel() for p in model.parameters())},
    )
