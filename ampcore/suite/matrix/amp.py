"""AMP vs the reference precision (fp32) on one device: training time, speedup, accuracy or
loss parity and AMP health, per workload x precision of the registries.

``from ampcore.suite.matrix.amp import *`` in a test file collects these tests there
(ampcore's own ``benchmarks/test_amp.py`` is that line).
"""

import pytest

from ampcore.core.registry import (REFERENCE_PRECISION, claim_for, get_precision, speedup_claims,
                                   workload_entry)
from ampcore.judge import gates
from ampcore.suite.cases import applies_to, asserts_speedup, judged_by_loss
from ampcore.suite.plugin import enforce

__all__ = ["test_train", "test_amp_beats_fp32", "test_accuracy_parity", "test_amp_health",
           "test_loss_parity", "test_precision_pays_where_measured"]


def skip_unless_speed_is_judged(amp_runs) -> None:
    """Speed is asserted on CUDA, with timing on; elsewhere the test skips, saying why."""
    if not amp_runs.on_gpu:
        pytest.skip(f"speedup is asserted on CUDA only; device is {amp_runs.device}")
    if not amp_runs.timing_enabled:
        pytest.skip(amp_runs.timing_disabled_reason)


def test_train(amp_runs, amp_case, benchmark):
    """Time the profile's whole training run, one benchmark round per block of steps; the run's
    record goes into the benchmark's extra_info."""
    result = amp_runs.benchmark(*amp_case, benchmark)
    epochs = result.config["epochs"]
    assert len(result.accuracy_per_epoch) == epochs, (
        f"{len(result.accuracy_per_epoch)} epochs evaluated; the profile trains {epochs}")


# Generated only where the registry entry asserts a speedup; elsewhere it is reported.
@applies_to(asserts_speedup)
def test_amp_beats_fp32(amp_runs, amp_mixed_case):
    workload, precision = amp_mixed_case
    skip_unless_speed_is_judged(amp_runs)
    reference, amp = amp_runs.get(workload, REFERENCE_PRECISION), amp_runs.get(workload, precision)
    enforce(gates.speedup_verdict(reference, amp, amp_runs.options.min_speedup))


@applies_to(lambda workload, precision: not judged_by_loss(workload, precision))
def test_accuracy_parity(amp_runs, amp_mixed_case):
    """Non-inferiority of AMP on the paired held-out set (every --amp-seeds seed), with the
    exact McNemar test, both accuracies and the interval in the message; generated for the
    workloads judged by accuracy (a language model's is test_loss_parity)."""
    workload, precision = amp_mixed_case
    reference = amp_runs.seeds(workload, REFERENCE_PRECISION)
    amp = amp_runs.seeds(workload, precision)
    floor = amp_runs.workload_config(workload).accuracy_floor
    enforce(gates.parity_verdict(reference, amp, amp_runs.options.acc_tol, floor,
                                 repeatable=workload_entry(workload).repeatable))


def test_amp_health(amp_runs, amp_mixed_case):
    enforce(gates.health_verdict(amp_runs.get(*amp_mixed_case)))


@applies_to(judged_by_loss)
def test_loss_parity(amp_runs, amp_mixed_case):
    """The held-out loss against fp32's and, for a mode that builds on another mixed precision
    (fp8 on amp-bf16), against that one's too; generated for the workloads judged by loss."""
    workload, precision = amp_mixed_case
    amp = amp_runs.get(workload, precision)
    references = [REFERENCE_PRECISION, *filter(None, [get_precision(precision).builds_on])]
    verdicts = [gates.loss_parity_verdict(amp_runs.get(workload, r), amp, amp_runs.options.loss_tol)
                for r in references]
    enforce(gates.Verdict(all(v.passed for v in verdicts), "; ".join(v.message for v in verdicts)))


@applies_to(lambda workload, precision: bool(speedup_claims(workload, precision)))
def test_precision_pays_where_measured(amp_runs, amp_mixed_case):
    """Where a measurement showed a mixed precision beating another (``SPEEDUP_CLAIMS``: float8
    over bf16 on the wide llama, compiled), the suite asserts it; generated only for the cases
    with such a claim (elsewhere the speedup over fp32 is reported)."""
    workload, precision = amp_mixed_case
    claims = speedup_claims(workload, precision)
    skip_unless_speed_is_judged(amp_runs)
    model, compiled = amp_runs.workload_config(workload).model, amp_runs.options.compile
    claim = claim_for(workload, precision, model, compiled)
    if claim is None:
        pytest.skip(f"{workload}-{precision} is asserted to pay only on "
                    f"{', '.join(c.where for c in claims)}; this run is {model}"
                    f"{' compiled' if compiled else ' not compiled'}, so it is reported")
    verdict = gates.speedup_verdict(amp_runs.get(workload, claim.over),
                                    amp_runs.get(workload, precision), claim.min_speedup)
    enforce(gates.Verdict(verdict.passed, f"{verdict.message}; measured: {claim.measured}"))
