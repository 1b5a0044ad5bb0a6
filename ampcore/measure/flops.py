"""Analytical FLOP counts and model FLOP utilisation: small pure functions."""

from __future__ import annotations


def bert_train_flops_per_sample(hidden: int, layers: int, intermediate: int, seq_len: int,
                                num_labels: int = 2) -> float:
    """Training FLOPs (forward + backward = 3x forward) for one padded sequence.

    Counts the matrix products only, 2 FLOPs per multiply-add: per token and layer the QKV
    and output projections (4 h^2) and the MLP (2 h i); per layer the attention scores and
    their product with V (2 * 2 * s^2 * h); the pooler and classifier on the [CLS] token.
    """
    per_token_params = layers * (4 * hidden * hidden + 2 * hidden * intermediate)
    forward = 2 * seq_len * per_token_params
    forward += layers * 4 * seq_len * seq_len * hidden
    forward += 2 * (hidden * hidden + hidden * num_labels)
    return 3.0 * forward


def tflops(flops_per_sample: float, samples_per_second: float) -> float:
    return flops_per_sample * samples_per_second / 1e12


def mfu(achieved_tflops: float, peak_tflops: float) -> float:
    """Model FLOP utilisation: achieved over the device's peak for the dtype in use."""
    return achieved_tflops / peak_tflops


def llama_train_flops_per_sample(hidden: int, layers: int, heads: int, kv_heads: int,
                                 intermediate: int, vocab: int, seq_len: int) -> float:
    """Training FLOPs (3x forward) for one sequence of a Llama decoder, matrix products only.

    Per token and layer: the query and output projections (2 h^2), the key and value
    projections (2 h * h * kv_heads / heads) and the SwiGLU MLP (3 h i); the output head
    (h * vocab); per layer the attention scores and their product with V counted in full
    (4 s^2 h), as MFU figures usually do although causal attention needs only half.
    """
    kv = hidden * kv_heads // heads
    per_token_params = layers * (2 * hidden * hidden + 2 * hidden * kv + 3 * hidden * intermediate)
    per_token_params += hidden * vocab
    forward = 2 * seq_len * per_token_params + layers * 4 * seq_len * seq_len * hidden
    return 3.0 * forward
