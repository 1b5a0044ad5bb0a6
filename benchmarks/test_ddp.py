"""Workloads with DDP benchmarks (``ddp=True`` in the registry: bert) under
DistributedDataParallel on --amp-nproc GPUs (torchrun): scaling and AMP speedup."""

import pytest

from ampcore.judge import gates
from ampcore.core.registry import REFERENCE_PRECISION, workload_entry
from ampcore.suite import enforce


def test_ddp_train(amp_runs, amp_ddp_case, benchmark):
    """The training rounds the workers timed (at least 10) are the benchmark's rounds; the
    speedup over DDP fp32 and the scaling efficiency over the single-GPU run are in
    extra_info."""
    result = amp_runs.benchmark_ddp(*amp_ddp_case, benchmark)
    assert result.details["world_size"] == amp_runs.options.nproc
    assert result.details["scaler_consistent"], "GradScaler decisions differ between ranks"


def test_ddp_amp_beats_fp32(amp_runs, amp_ddp_mixed_case):
    workload, precision = amp_ddp_mixed_case
    if not workload_entry(workload).asserts_speedup:
        pytest.skip(f"{workload}: speedup is reported, not asserted")
    reference = amp_runs.ddp(workload, REFERENCE_PRECISION)
    enforce(gates.speedup_verdict(reference, amp_runs.ddp(workload, precision),
                                  amp_runs.options.min_speedup))
