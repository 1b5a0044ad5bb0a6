"""A Llama-architecture causal language model trained from random weights on packed text.

transformers' ``LlamaForCausalLM`` built from a ``LlamaConfig`` (RMSNorm, rotary position
embeddings, SwiGLU MLP, SDPA attention, untied output head), trained as next-token
prediction on IMDB review text (seed) or the generated smoke corpus: the reviews are
tokenized, joined with ``[SEP]`` after each one and cut into sequences of ``max_length + 1``
tokens (input = the first ``max_length``, labels = the last ``max_length``). The held-out
sequences come from IMDB's test split (seed; the generated test reviews in smoke), so the
held-out loss is per token on text the model never saw.

The tokenizer ships with the run: a WordPiece vocabulary of the training text's most frequent
words (``ampcore.data.smoke.train_wordpiece_tokenizer``, deterministic), 32,000 tokens in the
seed profile like Llama's. The model's vocabulary is padded to a multiple of 64, so the
output head has shapes float8 can take.

``WorkloadConfig.model`` names the architecture: a preset of ``ARCHITECTURES`` or
``llama:hidden=H,layers=L,heads=A,intermediate=I[,kv_heads=K,vocab=V]``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch

from ampcore.data import imdb, smoke
from ampcore.core.errors import DataSizeError, UsageError
from ampcore.measure.flops import llama_train_flops_per_sample
from ampcore.core.profiles import TINY_MODEL, WorkloadConfig
from ampcore.workloads.base import PreparedWorkload, make_adamw

SPEC_PREFIX = "llama:"
SIZE_KEYS = ("hidden", "layers", "heads", "intermediate", "kv_heads", "vocab")
ARCHITECTURES: dict[str, dict[str, int]] = {
    # ~134M parameters with the seed's 32,000-token vocabulary (85M outside the embeddings).
    "llama-125m": dict(hidden=768, layers=12, heads=12, intermediate=2048, vocab=32000),
    # Wide and shallow, where float8's GEMM savings outweigh its casts (issue 15, item 3).
    "llama-wide": dict(hidden=4096, layers=4, heads=32, intermediate=14336, vocab=32000),
    TINY_MODEL: dict(hidden=64, layers=2, heads=4, intermediate=176, vocab=256),
}
# Four times the largest published Llama's sizes (Llama 3.1 405B: hidden 16,384, 126 layers,
# 128 heads, intermediate 53,248, vocabulary 128,256), rounded up: any real architecture
# passes, and a typo stops here instead of in the model's constructor or the allocator.
SIZE_LIMITS = dict(hidden=65536, layers=512, heads=512, intermediate=262144, kv_heads=512,
                   vocab=524288)
LIMITS_WHY = "4x the largest published Llama's"
VOCAB_MULTIPLE = 64
TRAINING_BYTES_PER_PARAMETER = 16  # fp32 weights and gradients, AdamW's exp_avg and exp_avg_sq
WARMUP_FRACTION = 0.1  # of the steps: linear warm-up, then linear decay to zero
SEPARATOR = "[SEP]"
CAUSAL_ATTENTION = "ampcore_causal_sdpa"


def architecture(name: str) -> dict[str, int]:
    """The sizes ``name`` stands for (a preset, or a ``llama:key=value,...`` spec)."""
    if name in ARCHITECTURES:
        sizes = dict(ARCHITECTURES[name])
    elif name.startswith(SPEC_PREFIX):
        sizes = _parse_spec(name)
    else:
        raise UsageError(f"unknown llama architecture {name!r}; valid: {', '.join(ARCHITECTURES)}, "
                         f"or {SPEC_PREFIX}hidden=H,layers=L,heads=A,intermediate=I")
    sizes.setdefault("kv_heads", sizes["heads"])
    sizes.setdefault("vocab", 32000)
    _check_shape(name, sizes)
    return sizes


def _check_shape(name: str, sizes: dict[str, int]) -> None:
    """What the model cannot be built or trained with, refused before anything trains."""
    for key, limit in SIZE_LIMITS.items():
        if sizes[key] > limit:
            raise UsageError(f"llama architecture {name!r}: {key}={sizes[key]:,} is beyond "
                             f"{limit:,} ({LIMITS_WHY}): is a digit too many?")
    for whole, part in (("hidden", "heads"), ("heads", "kv_heads")):
        if sizes[whole] % sizes[part]:
            raise UsageError(f"llama architecture {name!r}: {whole} must be a multiple of "
                             f"{part}; got {whole}={sizes[whole]}, {part}={sizes[part]}")
    head_dim = sizes["hidden"] // sizes["heads"]
    if head_dim % 2:  # rotary embeddings rotate pairs of a head's dimensions
        raise UsageError(f"llama architecture {name!r}: head_dim = hidden / heads = "
                         f"{sizes['hidden']} / {sizes['heads']} = {head_dim} is odd, and rotary "
                         "position embeddings need an even one: change hidden or heads")


def parameter_count(sizes: dict[str, int]) -> int:
    """Llama's parameters at ``sizes`` (untied input and output embeddings, RMSNorm weights)."""
    hidden, kv = sizes["hidden"], sizes["hidden"] // sizes["heads"] * sizes["kv_heads"]
    layer = 2 * hidden * hidden + 2 * hidden * kv + 3 * hidden * sizes["intermediate"] + 2 * hidden
    return sizes["layers"] * layer + 2 * sizes["vocab"] * hidden + hidden


def device_memory(device: torch.device) -> int | None:
    """The bytes ``device`` holds in all (a CPU: the machine's memory); None when unknown."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_fits(name: str, sizes: dict[str, int], device: torch.device) -> None:
    """Refuse sizes whose training state alone (fp32 weights and gradients, AdamW's two
    moments: 16 bytes a parameter, activations not counted) exceeds the device's memory."""
    need, memory = TRAINING_BYTES_PER_PARAMETER * parameter_count(sizes), device_memory(device)
    if memory is not None and need > memory:
        raise UsageError(f"llama architecture {name!r}: {parameter_count(sizes):,} parameters "
                         f"need at least {need / 2**30:,.1f} GiB to train (16 bytes each: "
                         f"weights, gradients, AdamW moments), more than {device} has "
                         f"({memory / 2**30:,.1f} GiB): use smaller sizes")


def _parse_spec(name: str) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for item in name[len(SPEC_PREFIX):].split(","):
        key, _, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if key not in SIZE_KEYS or not value.isdecimal() or int(value) < 1:
            raise UsageError(f"llama architecture {name!r}: {item!r} is not key=N with key one of "
                             f"{', '.join(SIZE_KEYS)} and N >= 1")
        if key in sizes:
            raise UsageError(f"llama architecture {name!r} gives {key} twice: give it once")
        sizes[key] = int(value)
    missing = [k for k in SIZE_KEYS[:4] if k not in sizes]
    if missing:
        raise UsageError(f"llama architecture {name!r} lacks {', '.join(missing)}")
    return sizes


def pack(token_lists: list[list[int]], length: int, count: int, separator: int,
         where: str) -> torch.Tensor:
    """``count`` sequences of ``length + 1`` tokens cut from the documents in order, each
    document followed by ``separator``; the tokens past the last whole sequence are dropped."""
    need = count * (length + 1)
    stream: list[int] = []
    for tokens in token_lists:
        stream.extend(tokens)
        stream.append(separator)
        if len(stream) >= need:
            break
    if len(stream) < need:
        raise DataSizeError(f"{where} holds {len(stream)} tokens; the profile asks for {count} "
                            f"sequences of {length + 1} ({need} tokens). Use more text or fewer "
                            "or shorter sequences.")
    return torch.tensor(stream[:need], dtype=torch.long).view(count, length + 1)


def _enough_texts(texts: list[str], tokens: int) -> list[str]:
    """The first texts whose words add up to ``tokens``: WordPiece gives at least one token a
    word, so they hold enough tokens (all texts when they do not)."""
    words = 0
    for index, text in enumerate(texts):
        words += len(text.split()) + 1
        if words >= tokens:
            return texts[:index + 1]
    return texts


def lm_texts(config: WorkloadConfig, real_data: bool, data_dir: Path | None,
             allow_download: bool) -> tuple[list[str], list[str], str]:
    """(training texts, held-out texts, source), in a seeded order."""
    train_tokens = config.train_samples * (config.max_length + 1)
    test_tokens = config.test_samples * (config.max_length + 1)
    if not real_data:
        # Generated reviews average ~18 tokens: ask for twice what the sequences need.
        splits = smoke.sentiment_corpus(train_tokens // 9 + 1, test_tokens // 9 + 1, config.seed)
        return splits.train_texts, splits.test_texts, splits.source
    dsets, source = imdb.load_imdb(data_dir, allow_download)
    train = list(dsets["train"].shuffle(seed=config.seed)["text"])
    if "test" in dsets:
        test = list(dsets["test"].shuffle(seed=config.seed)["text"])
        where = f"{source}: train split -> training text, test split -> held-out text"
    else:  # held out from the end of the shuffled train split
        held = max(1, len(train) // 10)
        train, test = train[:-held], train[-held:]
        where = f"{source}: shuffled train split, the last {held} reviews held out"
    return (_enough_texts(train, train_tokens), _enough_texts(test, test_tokens),
            f"{where} (seed {config.seed})")


def causal_attention() -> str:
    """The attention implementation llama is built with: SDPA told that every sequence is
    causal and unpadded (packed), so it takes the causal flash/cuDNN kernel and no mask.

    transformers' own "sdpa" decides that at run time: eagerly it checks for padding (a host
    sync), and under torch.compile before torch 2.14 it passes a materialised causal mask,
    which made the compiled step's attention take the slow masked kernel.
    A transformers without the attention registry (before 4.48) keeps "sdpa"."""
    try:
        from transformers import AttentionInterface
        from transformers.integrations.sdpa_attention import sdpa_attention_forward
    except ImportError:
        return "sdpa"

    def causal_sdpa(module, query, key, value, attention_mask, **kwargs):
        kwargs.pop("is_causal", None)
        return sdpa_attention_forward(module, query, key, value, None, is_causal=True, **kwargs)

    # No mask function is registered under this name, so transformers builds no mask for it.
    AttentionInterface.register(CAUSAL_ATTENTION, causal_sdpa)
    return CAUSAL_ATTENTION


def build_model(sizes: dict[str, int], vocab_size: int, max_length: int) -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=vocab_size, hidden_size=sizes["hidden"], intermediate_size=sizes["intermediate"],
        num_hidden_layers=sizes["layers"], num_attention_heads=sizes["heads"],
        num_key_value_heads=sizes["kv_heads"], max_position_embeddings=max_length,
        tie_word_embeddings=False, attn_implementation=causal_attention(), use_cache=False)
    return LlamaForCausalLM(config)


def causal_lm_forward(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
    # (batch, tokens, vocab) against (batch, tokens) labels: the loop's loss is the mean over
    # every token (``loop.class_loss``).
    return model(input_ids=inputs["input_ids"]).logits


def warmup_linear_schedule(optimizer: torch.optim.Optimizer,
                           total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """Linear warm-up over the first tenth of the steps, then linear decay to zero."""
    warmup = max(1, math.ceil(WARMUP_FRACTION * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def build(config: WorkloadConfig, device: torch.device, *, real_data: bool,
          data_dir: Path | None, allow_download: bool, **_: object) -> PreparedWorkload:
    sizes = architecture(config.model)
    check_fits(config.model, sizes, device)
    if not config.train_samples or not config.test_samples:
        raise UsageError("the llama workload needs train_samples and test_samples (sequences)")
    train_texts, test_texts, source = lm_texts(config, real_data, data_dir, allow_download)
    tokenizer = smoke.train_wordpiece_tokenizer(train_texts, vocab_size=sizes["vocab"])
    separator = tokenizer.convert_tokens_to_ids(SEPARATOR)

    def sequences(texts: list[str], count: int, split: str) -> torch.Tensor:
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
        return pack(ids, config.max_length, count, separator, f"the {split} text of {source}")

    train = sequences(train_texts, config.train_samples, "training")
    test = sequences(test_texts, config.test_samples, "held-out")
    vocab_size = -(-len(tokenizer) // VOCAB_MULTIPLE) * VOCAB_MULTIPLE
    torch.manual_seed(config.seed)  # the same initial weights for every precision
    model = build_model(sizes, vocab_size, config.max_length).to(device)
    steps = -(-config.train_samples // config.batch_size) * config.epochs
    optimizer = make_adamw(model, config.lr, config.weight_decay, device)
    dims = ", ".join(f"{k}={v}" for k, v in sizes.items() if k != "vocab")
    return PreparedWorkload(
        name="llama", model=model, optimizer=optimizer,
        scheduler=warmup_linear_schedule(optimizer, steps), forward=causal_lm_forward,
        train_inputs={"input_ids": train[:, :-1].to(device)}, train_labels=train[:, 1:].to(device),
        test_inputs={"input_ids": test[:, :-1].to(device)}, test_labels=test[:, 1:].to(device),
        data_source=source,
        weights_source=f"random init, Llama ({config.model}: {dims}), WordPiece tokenizer of "
                       f"{len(tokenizer)} tokens trained on the training text",
        accuracy_meaningful=True,  # next-token accuracy; parity is judged on the loss
        tokens_per_sample=config.max_length,
        flops_per_sample=llama_train_flops_per_sample(
            sizes["hidden"], sizes["layers"], sizes["heads"], sizes["kv_heads"],
            sizes["intermediate"], vocab_size, config.max_length),
        details={"architecture": type(model).__name__, "hidden_size": sizes["hidden"],
                 "layers": sizes["layers"], "heads": sizes["heads"],
                 "kv_heads": sizes["kv_heads"], "intermediate_size": sizes["intermediate"],
                 "vocab_size": vocab_size, "tokenizer_tokens": len(tokenizer),
                 "uniform_loss": math.log(len(tokenizer)),
                 "parameters": sum(p.numel() for p in model.parameters())},
    )
