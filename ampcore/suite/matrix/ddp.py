"""Workloads with DDP benchmarks (``ddp=True`` in the registry: bert) under
DistributedDataParallel on --amp-nproc GPUs (torchrun): scaling and AMP speedup.

``from ampcore.suite.matrix.ddp import *`` in a test file collects these tests there
(ampcore's own ``benchmarks/test_ddp.py`` is that line). Workers find a workload by its id in
new processes: one from an installed package's entry point, not one a conftest.py registers.
"""

from ampcore.core.registry import REFERENCE_PRECISION
from ampcore.judge import gates
from ampcore.suite.cases import applies_to, asserts_speedup
from ampcore.suite.plugin import enforce

__all__ = ["test_ddp_train", "test_ddp_amp_beats_fp32"]


def test_ddp_train(amp_runs, amp_ddp_case, benchmark):
    """The training rounds the workers timed (at least 10) are the benchmark's rounds; the
    speedup over DDP fp32 and the scaling efficiency over the single-GPU run are in
    extra_info."""
    result = amp_runs.benchmark_ddp(*amp_ddp_case, benchmark)
    world, nproc = result.world_size, amp_runs.options.nproc
    assert world == nproc, f"the run's world size is {world}; --amp-nproc asked for {nproc}"
    assert result.merged.consistent, "GradScaler decisions differ between ranks"


# Generated only where the registry entry asserts a speedup; elsewhere it is reported.
@applies_to(asserts_speedup)
def test_ddp_amp_beats_fp32(amp_runs, amp_ddp_mixed_case):
    workload, precision = amp_ddp_mixed_case
    reference = amp_runs.ddp(workload, REFERENCE_PRECISION)
    enforce(gates.speedup_verdict(reference, amp_runs.ddp(workload, precision),
                                  amp_runs.options.min_speedup))
