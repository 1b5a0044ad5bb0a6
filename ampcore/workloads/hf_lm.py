"""Any transformers causal language model on packed IMDB text, judged by held-out loss: the
``hf-lm:<id or dir>`` model family (``ampcore.core.families``), llama's experiment with the
model (and its tokenizer) as a choice.

The text and its packing are llama's (``ampcore.workloads.llama``): reviews tokenized by the
model's own tokenizer, each followed by its end-of-text token (else its separator), cut into
sequences of ``max_length + 1`` tokens; the held-out sequences come from IMDB's test split
(the generated test reviews in smoke). The model loads as bert's does (``ampcore.workloads.hf``,
``AutoModelForCausalLM``, float32). FLOPs are approximate (``hf.approximate_flops_per_sample``).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ampcore.core.errors import UsageError, WeightsError
from ampcore.core.profiles import WorkloadConfig
from ampcore.workloads import hf, llama
from ampcore.workloads.base import PreparedWorkload, make_adamw, precision_guard

FAMILY = "hf-lm"


def source(model: str) -> hf.Source:
    return hf.Source(model, "AutoModelForCausalLM", f"workload '{FAMILY}:{model}'",
                     f"{FAMILY}:<directory>", settings=(("is_decoder", True),))


def separator(tokenizer, workload_id: str) -> int:
    """The token that ends each document in the packed stream."""
    for token_id in (tokenizer.eos_token_id, tokenizer.sep_token_id):
        if token_id is not None:
            return token_id
    raise WeightsError(f"workload {workload_id!r}: the tokenizer has neither an end-of-text nor "
                       "a separator token to end each review with; use a model whose tokenizer "
                       "defines one (eos_token or sep_token)")


def build(config: WorkloadConfig, device: torch.device, *, real_data: bool,
          data_dir: Path | None, allow_download: bool, allow_random_init: bool = False,
          **_: object) -> PreparedWorkload:
    workload_id = f"{FAMILY}:{config.model}"
    if not config.train_samples or not config.test_samples:
        raise UsageError(f"workload {workload_id!r} needs train_samples and test_samples "
                         "(sequences)")
    train_texts, test_texts, data_source = llama.lm_texts(config, real_data, data_dir,
                                                          allow_download)
    torch.manual_seed(config.training_seed)  # the same initial weights for every precision
    loaded = hf.load(source(config.model), allow_random_init=allow_random_init,
                     allow_download=allow_download)
    tokenizer, end = loaded.tokenizer, separator(loaded.tokenizer, workload_id)
    hf.check_max_length(loaded.model, config.max_length, loaded.weights_source)

    def sequences(texts: list[str], count: int, split: str) -> torch.Tensor:
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
        return llama.pack(ids, config.max_length, count, end, f"the {split} text of {data_source}")

    train = sequences(train_texts, config.train_samples, "training")
    test = sequences(test_texts, config.test_samples, "held-out")
    model = loaded.model.float().to(device)
    steps = -(-config.train_samples // config.batch_size) * config.epochs
    optimizer = make_adamw(model, config.lr, config.weight_decay, device)
    return PreparedWorkload(
        name=workload_id, model=model, optimizer=optimizer,
        scheduler=llama.warmup_linear_schedule(optimizer, steps),
        forward=precision_guard(workload_id, llama.causal_lm_forward),
        train_inputs={"input_ids": train[:, :-1].to(device)}, train_labels=train[:, 1:].to(device),
        test_inputs={"input_ids": test[:, :-1].to(device)}, test_labels=test[:, 1:].to(device),
        data_source=data_source, weights_source=loaded.weights_source,
        accuracy_meaningful=loaded.pretrained,  # False: random weights (the loss still judges)
        tokens_per_sample=config.max_length,
        flops_per_sample=hf.approximate_flops_per_sample(model, config.max_length),
        details={"architecture": type(model).__name__,
                 "hidden_size": getattr(model.config, "hidden_size", None),
                 "layers": getattr(model.config, "num_hidden_layers", None),
                 "tokenizer_tokens": len(tokenizer), "uniform_loss": math.log(len(tokenizer)),
                 "attention": getattr(model.config, "_attn_implementation", None),
                 "flops": "approximate: 6 x linear weights x tokens + attention",
                 "parameters": sum(p.numel() for p in model.parameters())},
    )
