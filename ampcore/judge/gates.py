"""The suite's pass/fail rules as pure functions over ``RunResult``s.

Each returns a ``Verdict``: passed, failed with a message that prints the numbers, or not
applicable with the reason (the benchmark test then skips with it).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from ampcore.judge.accuracy import UNPAIRED_THRESHOLD, judge_paired, unpaired_threshold
from ampcore.judge.metrics import DEFAULT_ALPHA
from ampcore.judge.speedup import speedup
from ampcore.train.result import RunResult

MAX_SKIPPED_FRACTION = 0.05  # a speedup made of skipped steps is not a speedup


@dataclass(frozen=True)
class Verdict:
    passed: bool
    message: str
    skip_reason: str | None = None

    @classmethod
    def skip(cls, reason: str) -> Verdict:
        return cls(passed=True, message=reason, skip_reason=reason)


def speedup_verdict(reference: RunResult, amp: RunResult, min_speedup: float) -> Verdict:
    """AMP must beat the reference (fp32, or the precision a measured claim names): the
    interval's lower bound must reach ``min_speedup``."""
    s = speedup(reference, amp)
    ref = reference.precision
    text = (f"{amp.name} speedup over {ref} = {s.ratio:.2f}x, 95% CI [{s.low:.2f}, {s.high:.2f}] "
            f"({ref} {reference.train_time_s:.2f} s, {amp.precision} {amp.train_time_s:.2f} s over "
            f"{len(amp.round_times_s)} rounds); required lower bound >= {min_speedup:.2f}x")
    return Verdict(s.low >= min_speedup, text)


def disagreements(a: RunResult, b: RunResult) -> int:
    """Test samples the two runs classify differently (paired on the shared test set)."""
    return sum(x != y for x, y in zip(a.predictions, b.predictions, strict=True))


Runs = RunResult | Sequence[RunResult]  # one run, or one per training seed


def _runs(runs: Runs) -> list[RunResult]:
    return [runs] if isinstance(runs, RunResult) else list(runs)


def seed_spread(runs: Sequence[RunResult]) -> str:
    """Each run's held-out accuracy (test accuracy without one) and their spread."""
    values = [r.heldout_accuracy if r.heldout_accuracy is not None else r.final_accuracy
              for r in runs]
    text = ", ".join(f"{v:.4f}" for v in values)
    if len(values) < 2:
        return text
    return (f"{text} (mean {statistics.mean(values):.4f}, spread {max(values) - min(values):.4f}, "
            f"sd {statistics.stdev(values):.4f})")


def seeds_table(runs: Sequence[RunResult]) -> str:
    """One line per (workload, precision): each training seed's accuracy and the spread."""
    groups: dict[str, list[RunResult]] = {}
    for run in runs:
        groups.setdefault(run.name, []).append(run)
    lines = ["accuracy per training seed (held-out set; test split without one):"]
    lines += [f"  {name}: {seed_spread(group)}" for name, group in groups.items()]
    return "\n".join(lines)


def parity_verdict(fp32: Runs, amp: Runs, tolerance: float, floor: float,
                   alpha: float = DEFAULT_ALPHA, repeatable: bool = True) -> Verdict:
    """AMP has not lost accuracy against fp32, once fp32 has shown it learned something (every
    fp32 seed reaches ``floor`` on the test split).

    On the held-out set, the accuracy judge (``judge.accuracy.judge_paired``; several seeds
    pair run i with run i): it fails when fp32 - AMP accuracy is significant at ``alpha`` and
    larger than the margin ``tolerance`` (raised by fp32's seed-to-seed spread). Runs without
    a held-out set fall back to the fixed rule fp32 - AMP test accuracy <= the larger of
    ``tolerance`` and 0.03, and the message says so. A workload that is not ``repeatable``
    on a GPU needs several seeds: one cannot tell a precision's loss from a session's."""
    refs, amps = _runs(fp32), _runs(amp)
    if not refs or len(refs) != len(amps):
        raise ValueError(f"parity pairs fp32 and AMP runs seed by seed; got {len(refs)} and "
                         f"{len(amps)} runs")
    if not repeatable and len(refs) == 1 and refs[0].device.startswith("cuda"):
        return Verdict.skip(
            f"{refs[0].workload} does not repeat exactly on a GPU (training from scratch through "
            "non-deterministic kernels moves held-out accuracy between fresh sessions of one "
            "seed), so one seed cannot judge parity: pass --amp-seeds 3 (or more), and fp32's "
            "seed-to-seed spread sets the margin")
    if not refs[0].accuracy_meaningful:
        return Verdict.skip(f"{refs[0].workload} was trained from random initial weights "
                            f"({refs[0].weights_source}): its accuracy says nothing about parity")
    for i, ref in enumerate(refs):
        if ref.final_accuracy < floor:
            seed = f" (seed {i + 1} of {len(refs)})" if len(refs) > 1 else ""
            return Verdict(False, f"{ref.name}{seed} reached test accuracy "
                           f"{ref.final_accuracy:.4f}, below the floor {floor:.2f} a parity check "
                           "needs: the fp32 run itself did not learn the task")
    pairs = [(r.heldout(), a.heldout()) for r, a in zip(refs, amps)]
    if any(x is None or y is None for x, y in pairs):
        return _threshold_parity(refs, amps, tolerance)
    try:
        judged = judge_paired(pairs, tolerance, alpha)
    except ValueError as exc:  # held-out sets of different sizes: not the same samples
        return Verdict(False, f"{amps[0].name} and {refs[0].name} cannot be paired: {exc}")
    paired = judged.paired
    text = (f"{amps[0].name}: held-out accuracy {paired.candidate_accuracy:.4f} vs fp32 "
            f"{paired.reference_accuracy:.4f} on {paired.n} paired samples "
            f"({refs[0].heldout_source}); {judged.describe('fp32', 'AMP')}")
    if len(refs) > 1:
        text += f"; per seed, fp32: {seed_spread(refs)}; AMP: {seed_spread(amps)}"
    text += (f"; test split ({len(amps[0].predictions)} samples, the seed's table): AMP "
             f"{amps[0].final_accuracy:.4f} vs fp32 {refs[0].final_accuracy:.4f}")
    return Verdict(not judged.worse, text)


def _threshold_parity(refs: list[RunResult], amps: list[RunResult], tolerance: float) -> Verdict:
    """The rule before held-out sets: mean test accuracy gap within a fixed limit (no
    statistics, so no narrower than ``accuracy.UNPAIRED_THRESHOLD``)."""
    ref_acc = statistics.mean(r.final_accuracy for r in refs)
    amp_acc = statistics.mean(a.final_accuracy for a in amps)
    gap, n, limit = ref_acc - amp_acc, len(amps[0].predictions), unpaired_threshold(tolerance)
    text = (f"{amps[0].name}: accuracy {amp_acc:.4f} vs fp32 {ref_acc:.4f} (gap {gap:+.4f}, "
            f"limit {limit:.4f}, the larger of the margin {tolerance:g} and "
            f"{UNPAIRED_THRESHOLD:g}); the two disagree on "
            f"{disagreements(refs[0], amps[0])} of {n} test samples; THRESHOLD ONLY: no "
            "held-out set to test on (--eval-samples 0, or results saved without one)")
    return Verdict(gap <= limit, text)


def loss_parity_verdict(reference: RunResult, amp: RunResult, tolerance: float) -> Verdict:
    """AMP held-out loss - reference held-out loss <= tolerance (nats per token), for the
    workloads judged by loss (a language model), once the reference (fp32, or the precision a
    mode builds on) has learned more than a uniform guess."""
    ref_loss, amp_loss = reference.test_loss_per_epoch[-1], amp.test_loss_per_epoch[-1]
    uniform = reference.details.get("uniform_loss")
    if uniform is not None and not ref_loss < uniform:
        return Verdict(False, f"{reference.name} reached held-out loss {ref_loss:.4f}, not below "
                       f"{uniform:.4f}, a uniform guess over its vocabulary: that run itself "
                       "did not learn the text")
    gap = amp_loss - ref_loss
    text = (f"{amp.name}: held-out loss {amp_loss:.4f} (perplexity {math.exp(amp_loss):.2f}) vs "
            f"{reference.precision} {ref_loss:.4f} ({math.exp(ref_loss):.2f}), gap {gap:+.4f}, "
            f"tolerance {tolerance:.4f} nats per token")
    return Verdict(gap <= tolerance, text)


def health_verdict(run: RunResult, max_skipped_fraction: float = MAX_SKIPPED_FRACTION) -> Verdict:
    """No non-finite loss, and GradScaler skipped at most a small fraction of steps."""
    limit = max_skipped_fraction * run.total_steps
    text = (f"{run.name}: {run.nonfinite_losses} non-finite losses, {run.skipped_steps} of "
            f"{run.total_steps} steps skipped by the GradScaler (limit {limit:.1f}), final scale "
            f"{run.grad_scaler.get('final_scale')}")
    return Verdict(run.nonfinite_losses == 0 and run.skipped_steps <= limit, text)
