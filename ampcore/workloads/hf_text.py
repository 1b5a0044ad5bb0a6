"""Any transformers sequence classifier on the seed's IMDB task: the ``hf-text:<id or dir>``
model family (``ampcore.core.families``), bert's experiment with the model as a choice.

The data, tokenization, padding-mask form and loading are bert's (``ampcore.workloads.bert``,
``ampcore.workloads.hf``): the IMDB sample (seed) or the generated corpus (smoke), padded to
``max_length``; the model from ``AutoModelForSequenceClassification`` with a new 2-class head,
in float32. A tokenizer without a padding token (GPT-2's) pads with its end-of-text token, as
transformers' sequence classifiers of decoders expect. FLOPs are approximate
(``hf.approximate_flops_per_sample``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ampcore.core.errors import WeightsError
from ampcore.core.profiles import WorkloadConfig
from ampcore.workloads import bert, hf
from ampcore.workloads.base import PreparedWorkload, precision_guard

FAMILY = "hf-text"


def source(model: str) -> hf.Source:
    return hf.Source(model, "AutoModelForSequenceClassification",
                     f"workload '{FAMILY}:{model}'", f"{FAMILY}:<directory>",
                     settings=(("num_labels", bert.NUM_LABELS),))


def with_padding(loaded: hf.Loaded, workload_id: str) -> hf.Loaded:
    """The tokenizer with a padding token and the model told its id (a decoder's classifier
    reads the last token that is not padding)."""
    tokenizer, config = loaded.tokenizer, loaded.model.config
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise WeightsError(f"workload {workload_id!r}: the tokenizer has neither a padding "
                               "nor an end-of-text token to pad the reviews with; use a model "
                               "whose tokenizer defines one (pad_token or eos_token)")
        tokenizer.pad_token = tokenizer.eos_token
    if getattr(config, "pad_token_id", None) is None:
        config.pad_token_id = tokenizer.pad_token_id
    return loaded


def build(config: WorkloadConfig, device: torch.device, *, real_data: bool,
          data_dir: Path | None, allow_download: bool, allow_random_init: bool = False,
          **_: object) -> PreparedWorkload:
    workload_id = f"{FAMILY}:{config.model}"
    texts = bert.review_texts(config, real_data, data_dir, allow_download)
    torch.manual_seed(config.training_seed)  # the same initial weights (head) every precision
    loaded = with_padding(hf.load(source(config.model), allow_random_init=allow_random_init,
                                  allow_download=allow_download), workload_id)
    flops = hf.approximate_flops_per_sample(loaded.model, config.max_length)
    workload = bert.classifier_workload(workload_id, config, device, texts, loaded, flops)
    workload.forward = precision_guard(workload_id, workload.forward)
    workload.details["flops"] = "approximate: 6 x linear weights x tokens + attention"
    return workload
