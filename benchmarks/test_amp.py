"""AMP vs fp32: training time, accuracy parity and AMP health, per workload x precision."""

import pytest

from ampcore import gates
from ampcore.pytest_plugin import enforce, record_extra_info


def test_train(amp_runs, amp_case, benchmark):
    """Time the profile's whole training run, one benchmark round per block of steps."""
    result = amp_runs.benchmark(*amp_case, benchmark)
    record_extra_info(benchmark, result, amp_runs)
    assert len(result.accuracy_per_epoch) == result.config["epochs"]


def test_amp_beats_fp32_on_bert(amp_runs, amp_mixed_case):
    workload, precision = amp_mixed_case
    if workload != "bert":
        pytest.skip(f"{workload}: speedup is reported, not asserted (the seed found no AMP gain)")
    if not amp_runs.on_gpu:
        pytest.skip(f"speedup is asserted on CUDA only; device is {amp_runs.device}")
    if not amp_runs.timing_enabled:
        pytest.skip(amp_runs.timing_disabled_reason)
    fp32, amp = amp_runs.get(workload, "fp32"), amp_runs.get(workload, precision)
    enforce(gates.speedup_verdict(fp32, amp, amp_runs.options.min_speedup))


def test_accuracy_parity(amp_runs, amp_mixed_case):
    workload, precision = amp_mixed_case
    fp32, amp = amp_runs.get(workload, "fp32"), amp_runs.get(workload, precision)
    floor = amp_runs.workload_config(workload).accuracy_floor
    enforce(gates.parity_verdict(fp32, amp, amp_runs.options.acc_tol, floor))


def test_amp_health(amp_runs, amp_mixed_case):
    enforce(gates.health_verdict(amp_runs.get(*amp_mixed_case)))
