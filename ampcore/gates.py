"""The suite's pass/fail rules as pure functions over ``RunResult``s.

Each returns a ``Verdict``: passed, failed with a message that prints the numbers, or not
applicable with the reason (the benchmark test then skips with it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ampcore.result import RunResult
from ampcore.stats import bootstrap_speedup_ci

MAX_SKIPPED_FRACTION = 0.05  # a speedup made of skipped steps is not a speedup


@dataclass(frozen=True)
class Verdict:
    passed: bool
    message: str
    skip_reason: str | None = None

    @classmethod
    def skip(cls, reason: str) -> Verdict:
        return cls(passed=True, message=reason, skip_reason=reason)


@dataclass(frozen=True)
class Speedup:
    ratio: float  # median fp32 round time / median candidate round time
    low: float
    high: float


def speedup(baseline: RunResult, candidate: RunResult, confidence: float = 0.95) -> Speedup:
    """Speedup of ``candidate`` over ``baseline`` from the rounds of both runs.

    Both runs follow the same round plan (same workload and profile), so the ratio of median
    round times is the ratio of throughputs; the interval is a bootstrap over both samples.
    """
    if baseline.samples_per_round != candidate.samples_per_round:
        raise ValueError(f"{baseline.name} and {candidate.name} have different round plans")
    ratio, low, high = bootstrap_speedup_ci(baseline.round_times_s, candidate.round_times_s,
                                            confidence=confidence)
    return Speedup(ratio, low, high)


def speedup_verdict(fp32: RunResult, amp: RunResult, min_speedup: float) -> Verdict:
    """AMP must beat fp32: the interval's lower bound must reach ``min_speedup``."""
    s = speedup(fp32, amp)
    text = (f"{amp.name} speedup over fp32 = {s.ratio:.2f}x, 95% CI [{s.low:.2f}, {s.high:.2f}] "
            f"(fp32 {fp32.train_time_s:.2f} s, {amp.precision} {amp.train_time_s:.2f} s over "
            f"{len(amp.round_times_s)} rounds); required lower bound >= {min_speedup:.2f}x")
    return Verdict(s.low >= min_speedup, text)


def disagreements(a: RunResult, b: RunResult) -> int:
    """Test samples the two runs classify differently (paired on the shared test set)."""
    return sum(x != y for x, y in zip(a.predictions, b.predictions, strict=True))


def parity_verdict(fp32: RunResult, amp: RunResult, tolerance: float, floor: float) -> Verdict:
    """fp32 accuracy - AMP accuracy <= tolerance, once fp32 has shown it learned something."""
    if not fp32.accuracy_meaningful:
        return Verdict.skip(f"{fp32.workload} was trained from random initial weights "
                            f"({fp32.weights_source}): its accuracy says nothing about parity")
    if fp32.final_accuracy < floor:
        return Verdict(False, f"{fp32.name} reached test accuracy {fp32.final_accuracy:.4f}, "
                       f"below the floor {floor:.2f} a parity check needs: the fp32 run itself "
                       "did not learn the task")
    gap = fp32.final_accuracy - amp.final_accuracy
    n = len(amp.predictions)
    text = (f"{amp.name}: accuracy {amp.final_accuracy:.4f} vs fp32 {fp32.final_accuracy:.4f} "
            f"(gap {gap:+.4f}, tolerance {tolerance:.4f}); the two disagree on "
            f"{disagreements(fp32, amp)} of {n} test samples")
    return Verdict(gap <= tolerance, text)


def loss_parity_verdict(fp32: RunResult, amp: RunResult, tolerance: float) -> Verdict:
    """AMP held-out loss - fp32 held-out loss <= tolerance (nats per token), for the workloads
    judged by loss (a language model), once fp32 has learned more than a uniform guess."""
    fp32_loss, amp_loss = fp32.test_loss_per_epoch[-1], amp.test_loss_per_epoch[-1]
    uniform = fp32.details.get("uniform_loss")
    if uniform is not None and not fp32_loss < uniform:
        return Verdict(False, f"{fp32.name} reached held-out loss {fp32_loss:.4f}, not below "
                       f"{uniform:.4f}, a uniform guess over its vocabulary: the fp32 run itself "
                       "did not learn the text")
    gap = amp_loss - fp32_loss
    text = (f"{amp.name}: held-out loss {amp_loss:.4f} (perplexity {math.exp(amp_loss):.2f}) vs "
            f"fp32 {fp32_loss:.4f} ({math.exp(fp32_loss):.2f}), gap {gap:+.4f}, tolerance "
            f"{tolerance:.4f} nats per token")
    return Verdict(gap <= tolerance, text)


def health_verdict(run: RunResult, max_skipped_fraction: float = MAX_SKIPPED_FRACTION) -> Verdict:
    """No non-finite loss, and GradScaler skipped at most a small fraction of steps."""
    limit = max_skipped_fraction * run.total_steps
    text = (f"{run.name}: {run.nonfinite_losses} non-finite losses, {run.skipped_steps} of "
            f"{run.total_steps} steps skipped by the GradScaler (limit {limit:.1f}), final scale "
            f"{run.grad_scaler.get('final_scale')}")
    return Verdict(run.nonfinite_losses == 0 and run.skipped_steps <= limit, text)
