"""AMP vs the reference precision (fp32): training time, accuracy parity and AMP health, per
workload x precision of the registries (``ampcore.registry``)."""

import pytest

from ampcore import gates
from ampcore.registry import REFERENCE_PRECISION, workload_entry
from ampcore.suite import enforce


def test_train(amp_runs, amp_case, benchmark):
    """Time the profile's whole training run, one benchmark round per block of steps; the run's
    record goes into the benchmark's extra_info."""
    result = amp_runs.benchmark(*amp_case, benchmark)
    assert len(result.accuracy_per_epoch) == result.config["epochs"]


def test_amp_beats_fp32(amp_runs, amp_mixed_case):
    workload, precision = amp_mixed_case
    if not workload_entry(workload).asserts_speedup:
        pytest.skip(f"{workload}: speedup is reported, not asserted (its registry entry "
                    "does not assert one)")
    if not amp_runs.on_gpu:
        pytest.skip(f"speedup is asserted on CUDA only; device is {amp_runs.device}")
    if not amp_runs.timing_enabled:
        pytest.skip(amp_runs.timing_disabled_reason)
    reference, amp = amp_runs.get(workload, REFERENCE_PRECISION), amp_runs.get(workload, precision)
    enforce(gates.speedup_verdict(reference, amp, amp_runs.options.min_speedup))


def test_accuracy_parity(amp_runs, amp_mixed_case):
    """Non-inferiority of AMP on the paired held-out set (every --amp-seeds seed), with the
    exact McNemar test, both accuracies and the interval in the message."""
    workload, precision = amp_mixed_case
    if workload_entry(workload).quality == "loss":
        pytest.skip(f"{workload} is judged by its held-out loss (test_loss_parity)")
    reference = amp_runs.seeds(workload, REFERENCE_PRECISION)
    amp = amp_runs.seeds(workload, precision)
    floor = amp_runs.workload_config(workload).accuracy_floor
    enforce(gates.parity_verdict(reference, amp, amp_runs.options.acc_tol, floor))


def test_amp_health(amp_runs, amp_mixed_case):
    enforce(gates.health_verdict(amp_runs.get(*amp_mixed_case)))


def test_loss_parity(amp_runs, amp_mixed_case):
    workload, precision = amp_mixed_case
    if workload_entry(workload).quality != "loss":
        pytest.skip(f"{workload} is judged by its test accuracy (test_accuracy_parity)")
    reference, amp = amp_runs.get(workload, REFERENCE_PRECISION), amp_runs.get(workload, precision)
    enforce(gates.loss_parity_verdict(reference, amp, amp_runs.options.loss_tol))
