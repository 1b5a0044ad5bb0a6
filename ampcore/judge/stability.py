"""Is one run's timing stable enough to judge? Its round CV (the spread of its rounds, per
sample) and the spread of the probe's eager steps, each against a limit: calibrated
(``ampcore calibrate --write`` sets ``round_cv`` and ``probe_cv`` in
``[tool.ampcore.compare]``) or the defaults below. A run above either limit was measured on a
loaded or unsteady machine: its time verdicts are unreliable whichever way they point.
Torch-free and pure: the caller passes the numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ampcore.measure import stats

# Defaults when no calibration set them. Round CV: the committed H200 smoke sessions (10
# runs x 8 benchmarks of 8-45 ms rounds, launch-bound, the noisiest the gate meets on a quiet
# GPU) reach 19 %; runs under CPU load reached 26-67 %. The probe's 8 eager steps follow the
# host, so their spread is wider: 24 % at most, 22 % at the 99th percentile, over the 113
# committed H200 runs that saved them. All 138 committed H200 benchmark runs pass both.
DEFAULT_ROUND_CV = 0.25
DEFAULT_PROBE_CV = 0.50
STABILITY_KEYS = ("round_cv", "probe_cv")
MAX_LIMIT = 5.0  # a configured limit above this would turn the check off in all but name

STABLE, UNSTABLE, NOT_CHECKED = "stable", "unstable", "not checked"
# where a CV came from
FROM_ROUNDS, FROM_RECORD, FROM_IQR, FROM_PROBE = ("rounds", "record round_cv", "stats IQR",
                                                  "probe steps")
IQR_TO_SD = 1.349  # the interquartile range of a normal distribution, in sds


@dataclass(frozen=True)
class StabilityLimits:
    round_cv: float = DEFAULT_ROUND_CV
    probe_cv: float = DEFAULT_PROBE_CV


@dataclass(frozen=True)
class Stability:
    """One run's verdict: ``status`` stable, unstable or not checked; ``cv`` and ``limit`` the
    figure that decided (the worst against its limit); ``what`` "round CV" or "probe CV"."""

    status: str
    cv: float | None = None
    limit: float | None = None
    what: str = "round CV"
    source: str = ""

    @property
    def unstable(self) -> bool:
        return self.status == UNSTABLE

    def describe(self) -> str:
        """"round CV 26 % > limit 3 %", or "not checked (no rounds...)"."""
        if self.cv is None or self.limit is None:
            return f"{self.what}: not checked ({self.source or 'no rounds, CV or quartiles saved'})"
        sign = ">" if self.unstable else "<="
        return f"{self.what} {_pct(self.cv)} {sign} limit {_pct(self.limit)}"


def _pct(value: float) -> str:
    return f"{value * 100:.3g} %"


def round_cv(rounds: Sequence[float] | None, samples_per_round: Sequence[int] = (),
             recorded: float | None = None, q1: float | None = None, q3: float | None = None,
             median: float | None = None) -> tuple[float | None, str]:
    """A run's round CV and where it came from: the raw rounds (per sample when the rounds'
    sizes are known, as the suite computes it), else the record's ``round_cv``, else a
    normal-consistent estimate from the stored quartiles; (None, why) when there is nothing."""
    if rounds:
        cv = stats.round_cv(rounds, list(samples_per_round))
        if cv is not None:
            return cv, FROM_ROUNDS
    if recorded is not None and math.isfinite(recorded) and recorded >= 0:
        return float(recorded), FROM_RECORD
    if q1 is not None and q3 is not None and median and median > 0 and q3 >= q1:
        return (q3 - q1) / IQR_TO_SD / median, FROM_IQR
    return None, "no rounds, round_cv or quartiles saved"


def judge_stability(round_cv_value: float | None, round_source: str,
                    probe_steps: Sequence[float], limits: StabilityLimits) -> Stability:
    """Unstable when the round CV exceeds ``limits.round_cv`` or the probe steps' CV exceeds
    ``limits.probe_cv`` (the worse of the two, relative to its limit, is named); not checked
    when neither could be measured."""
    checks = []
    if round_cv_value is not None:
        checks.append(("round CV", round_cv_value, limits.round_cv, round_source))
    probe = stats.coefficient_of_variation(probe_steps) if len(probe_steps) >= 3 else None
    if probe is not None:
        checks.append(("probe CV", probe, limits.probe_cv, FROM_PROBE))
    if not checks:
        return Stability(NOT_CHECKED, source=round_source)
    what, cv, limit, source = max(checks, key=lambda c: c[1] / c[2] if c[2] > 0 else math.inf)
    status = UNSTABLE if cv > limit else STABLE
    return Stability(status, cv, limit, what, source)
