"""bert under DistributedDataParallel on --amp-nproc GPUs (torchrun): scaling and AMP speedup."""

from ampcore import gates
from ampcore.pytest_plugin import enforce, record_ddp_extra_info


def test_ddp_train(amp_runs, amp_ddp_precision, benchmark):
    """One round: the whole torchrun job; its training rounds and scaling are in extra_info."""
    result = amp_runs.ddp(amp_ddp_precision, benchmark)
    single = amp_runs.get("bert", amp_ddp_precision)
    record_ddp_extra_info(benchmark, result, single, amp_runs.options.nproc)
    assert result.details["world_size"] == amp_runs.options.nproc
    assert result.details["scaler_consistent"], "GradScaler decisions differ between ranks"


def test_ddp_amp_beats_fp32(amp_runs, amp_ddp_mixed_precision):
    fp32, amp = amp_runs.ddp("fp32"), amp_runs.ddp(amp_ddp_mixed_precision)
    enforce(gates.speedup_verdict(fp32, amp, amp_runs.options.min_speedup))
