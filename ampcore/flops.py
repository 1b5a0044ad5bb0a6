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
