"""The accuracy judge: is a candidate's held-out accuracy worse (or better) than a reference's
on the same samples, by a change both significant on the paired table and larger than a
practical margin? The suite's parity test (``gates.parity_verdict``) and ``ampcore compare``'s
accuracy row (``history.verdicts``) both ask it. Torch-free.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace

from ampcore.judge.metrics import DEFAULT_ALPHA, METRICS
from ampcore.measure.stats import PairedAccuracy, paired_accuracy

Correct = Sequence[bool]  # per-sample correctness on the held-out set

# For runs of one training seed, which are deterministic; the METRICS row says why 0.005.
DEFAULT_MARGIN = METRICS["accuracy"].default_threshold
# With several training seeds the margin is at least this many standard deviations of the
# reference seeds' held-out accuracies: two runs differing only in their seed differ by
# sqrt(2) of them, so a change within 3 is what another seed could do.
SEED_SPREAD_FACTOR = 3.0
# Without per-sample correctness there is no paired test, only the accuracies: a drop must
# exceed the larger of the margin and this, the fixed limit used before held-out sets.
UNPAIRED_THRESHOLD = 0.03


def unpaired_threshold(margin: float) -> float:
    """The limit on the accuracy drop when the runs cannot be paired (no significance test)."""
    return max(margin, UNPAIRED_THRESHOLD)


def practical_margin(threshold: float, reference_accuracies: Sequence[float]
                     ) -> tuple[float, float | None]:
    """The margin and the seed spread that set it: ``threshold`` for one reference run; with
    several, the larger of it and ``SEED_SPREAD_FACTOR`` x the standard deviation of their
    held-out accuracies. The reference's spread, so that a candidate that makes training
    erratic cannot widen its own margin."""
    if len(reference_accuracies) < 2:
        return threshold, None
    spread = statistics.stdev(reference_accuracies)
    return max(threshold, SEED_SPREAD_FACTOR * spread), spread


@dataclass(frozen=True)
class AccuracyJudgement:
    """The paired table of reference vs candidate, the margin applied and the finding."""

    paired: PairedAccuracy  # its interval at 1 - 2 alpha: the lower bound is one-sided
    threshold: float  # the configured margin
    margin: float  # the margin applied (raised by the seeds' spread)
    alpha: float
    worse: bool
    better: bool
    spread: float | None = None  # sd of the reference seeds' held-out accuracies
    note: str = ""  # against several reference runs: how each one judged

    @property
    def confidence(self) -> float:
        return 1 - 2 * self.alpha

    def describe(self, reference: str = "reference", candidate: str = "candidate") -> str:
        """The table, tests, interval and rule, as a verdict's text shows them."""
        p = self.paired
        margin = f"{self.margin:.4f}"
        if self.spread is not None:
            margin += (f" (the larger of {self.threshold:g} and {SEED_SPREAD_FACTOR:g} x the "
                       f"{reference} seeds' sd {self.spread:.4f})")
        seeds = ", with the interval clear of 0" if p.runs > 1 else ""
        text = (f"disagreements: b={p.b} {reference} right/{candidate} wrong, c={p.c} "
                f"{candidate} right/{reference} wrong, exact McNemar p={p.p_mcnemar:.3g} "
                f"(one-sided, {candidate} worse: {p.p_worse:.3g}); {reference} - {candidate} = "
                f"{p.difference:+.4f}, {self.confidence:.0%} CI [{p.low:+.4f}, {p.high:+.4f}] "
                f"({p.method}); worse only when significant (one-sided p < {self.alpha:g}"
                f"{seeds}) and larger than the margin {margin}")
        return f"{text}; {self.note}" if self.note else text


def judge_paired(pairs: Sequence[tuple[Correct, Correct]], threshold: float = DEFAULT_MARGIN,
                 alpha: float = DEFAULT_ALPHA) -> AccuracyJudgement:
    """Reference run i against candidate run i: one pair, or one per training seed.

    Worse when the drop (reference - candidate accuracy, pooled) exceeds the margin
    (``practical_margin`` of the reference runs) and the one-sided exact McNemar test on the
    pooled disagreements is significant at ``alpha``; with several seeds the lower bound of
    ``stats.paired_accuracy``'s interval, which carries the seed-to-seed variance, must also
    be above 0. Better: the same the other way. ValueError for runs of unequal sets."""
    margin, spread = practical_margin(threshold, [_accuracy(ref) for ref, _ in pairs])
    return _judge(pairs, threshold, margin, spread, alpha)


def judge_against_each(references: Sequence[Correct], candidate: Correct,
                       threshold: float = DEFAULT_MARGIN,
                       alpha: float = DEFAULT_ALPHA) -> AccuracyJudgement:
    """One candidate run against several reference runs (compare's pooled baseline): each pair
    judged alone under the margin the references set, worse (better) only when worse (better)
    against every one; the newest reference's table is shown. Pooling the tables would count
    the candidate's samples once per reference run, as if repeated sessions of one seed were
    new evidence."""
    margin, spread = practical_margin(threshold, [_accuracy(ref) for ref in references])
    each = [_judge([(ref, candidate)], threshold, margin, spread, alpha) for ref in references]
    if len(each) == 1:
        return each[0]
    worse, better = all(j.worse for j in each), all(j.better for j in each)
    note = (f"judged against each of {len(each)} baseline runs (the newest shown): worse "
            f"against {sum(j.worse for j in each)}, better against {sum(j.better for j in each)}")
    return replace(each[-1], worse=worse, better=better, note=note)


def _judge(pairs: Sequence[tuple[Correct, Correct]], threshold: float, margin: float,
           spread: float | None, alpha: float) -> AccuracyJudgement:
    p = paired_accuracy(pairs, 1 - 2 * alpha)
    several = p.runs > 1
    worse = p.difference > margin and p.p_worse < alpha and (not several or p.low > 0)
    better = -p.difference > margin and p.p_better < alpha and (not several or p.high < 0)
    return AccuracyJudgement(p, threshold, margin, alpha, worse, better, spread)


def _accuracy(correct: Correct) -> float:
    return sum(map(bool, correct)) / len(correct) if len(correct) else 0.0
