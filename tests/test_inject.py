"""Injected regressions and the step counters that must see them (smoke workloads, CPU)."""

import os

import pytest
import torch

from ampcore.train import inject, regressions
from ampcore.measure.counters import count_step
from ampcore.core.errors import UsageError
from ampcore.train.loop import class_loss
from ampcore.judge.metrics import describe_changes
from ampcore.core.registry import workload_entry
from ampcore.workloads import get_workload

CPU = torch.device("cpu")


def build(workload: str, *kinds: str):
    config = workload_entry(workload).config("smoke")
    prepared = get_workload(workload)(config, CPU, real_data=False, data_dir=None,
                                      allow_download=False, allow_random_init=False)
    return inject.apply(kinds, prepared)


def train_step(w, dtype=torch.bfloat16):
    def step():
        inputs = {name: t[:16] for name, t in w.train_inputs.items()}
        w.optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=dtype):
            logits = w.forward(w.model, inputs)
        class_loss(logits, w.train_labels[:16]).backward()
        w.optimizer.step()
    return step


def counts(workload: str, *kinds: str):
    w = build(workload, *kinds)
    step = train_step(w)
    step()  # first step: optimizer state is created, not representative
    return count_step(step, CPU)


def test_counts_are_deterministic_without_injection():
    a, b = counts("bert"), counts("bert")
    assert a == b
    assert a.aten_ops > 0 and a.casts > 0 and a.bytes_allocated > 0
    assert a.kernel_launches is None  # no CUDA


@pytest.mark.parametrize("kind, counter", [
    ("extra-sync", "syncs"),
    ("activation-memory", "bytes_allocated"),
])
def test_injection_raises_its_counter(kind, counter):
    base, injected = counts("bert"), counts("bert", kind)
    assert getattr(injected, counter) > getattr(base, counter), describe_changes(base.ops, injected.ops)


def test_unfused_optimizer_issues_more_ops():
    # The workloads' AdamW is fused on CUDA only; on a CPU the multi-tensor (foreach) path
    # stands for it, the fallback being the same per-parameter loop on both.
    def with_foreach(w):
        w.optimizer = torch.optim.AdamW(w.model.parameters(), lr=1e-3, foreach=True)
        return w

    def measured(w):
        step = train_step(w)
        step()
        return count_step(step, CPU)

    base = measured(with_foreach(build("bert")))
    injected = measured(build("bert", "optimizer-unfused"))
    assert injected.aten_ops > base.aten_ops, describe_changes(base.ops, injected.ops)


def test_fp32_op_changes_the_casts():
    # Autocast no longer casts the layer's input and weight to bf16; the layer casts its input
    # to float32 instead: the count moves (down here), the GPU time is what grows.
    base, injected = counts("bert"), counts("bert", "autocast-fp32-op")
    assert injected.casts != base.casts
    assert "aten._to_copy" in describe_changes(base.ops, injected.ops)


def test_extra_sync_is_named_by_the_op_that_changed():
    base, injected = counts("bert"), counts("bert", "extra-sync")
    assert injected.syncs == base.syncs + 1
    assert "+1 aten._local_scalar_dense" in describe_changes(base.ops, injected.ops)


def test_host_overhead_adds_no_device_work_but_runs_per_block():
    base, injected = counts("bert"), counts("bert", "host-overhead")
    assert injected.aten_ops == base.aten_ops  # no device work: the bytecode count sees it
    assert injected.python_ops > 1.5 * base.python_ops
    w = build("bert", "host-overhead")
    train_step(w)()
    blocks = regressions.repeated_blocks(w.model)
    assert blocks and all(hasattr(b, "_ampcore_host_work") for b in blocks)


def _bf16_representable(model: torch.nn.Module) -> bool:
    return all(torch.equal(p, p.to(torch.bfloat16).float()) for p in model.parameters())


def test_accuracy_loss_rounds_the_master_weights_after_every_step():
    clean, broken = build("bert"), build("bert", "accuracy-loss")
    assert not _bf16_representable(broken.model)  # the injection waits for the first step
    train_step(clean)(), train_step(broken)()
    assert _bf16_representable(broken.model)
    assert not _bf16_representable(clean.model)  # negative control: fp32 updates survive
    assert all(p.dtype == torch.float32 for p in broken.model.parameters())


def _representable(model: torch.nn.Module, bits: int) -> bool:
    return all(torch.equal(p, regressions.round_mantissa_(p.detach().clone(), bits))
               for p in model.parameters())


def test_accuracy_loss_bits_rounds_to_that_many_mantissa_bits():
    clean, broken = build("bert"), build("bert", "accuracy-loss:10")
    train_step(clean)(), train_step(broken)()
    assert _representable(broken.model, 10) and not _bf16_representable(broken.model)
    assert not _representable(clean.model, 10)  # negative control
    assert broken.details["accuracy_loss"] == {"mantissa_bits": 10}


def _ties_and_randoms() -> torch.Tensor:
    """Random float32 values over many binades, both signs, plus exact ties at 7 and 10 bits."""
    generator = torch.Generator().manual_seed(0)
    values = torch.randn(20_000, generator=generator) * 2.0 ** torch.randint(
        -20, 10, (20_000,), generator=generator).float()
    pattern = values.view(torch.int32)
    ties = [(pattern & -(1 << d)) | (1 << (d - 1)) for d in (16, 13)]  # halfway cases
    return torch.cat([values, *(tie.view(torch.float32) for tie in ties)])


@pytest.mark.parametrize("bits, dtype", [(7, torch.bfloat16), (10, torch.float16)])
def test_mantissa_rounding_is_the_narrow_dtypes_rounding(bits, dtype):
    values = _ties_and_randoms()
    if dtype == torch.float16:  # its normal range only: float32's exponent range is kept
        values = values[(values.abs() >= 2.0 ** -14) & (values.abs() < 60_000)]
    expected = values.to(dtype).float()
    assert torch.equal(regressions.round_mantissa_(values.clone(), bits), expected)
    assert not torch.equal(values, expected)  # negative control: the values needed rounding


def test_mantissa_rounding_keeps_more_with_more_bits():
    values = _ties_and_randoms()
    errors = [(regressions.round_mantissa_(values.clone(), b) - values).abs().max() / values.abs().max()
              for b in (7, 10, 16)]
    assert errors[0] > errors[1] > errors[2] > 0
    assert torch.equal(regressions.round_mantissa_(values.clone(), 23), values)


def test_attention_fallback_keeps_the_result():
    clean, fallback = build("bert"), build("bert", "attention-fallback")
    inputs = {name: t[:8] for name, t in clean.train_inputs.items()}
    clean.model.eval(), fallback.model.eval()  # no dropout: the same maths must agree
    with torch.no_grad():
        a, b = clean.forward(clean.model, inputs), fallback.forward(fallback.model, inputs)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)  # another kernel, same maths


def test_unknown_kind_lists_the_kinds():
    with pytest.raises(UsageError, match="unknown injection 'slow'; valid: attention-fallback"):
        inject.check_kinds(["slow"])


@pytest.mark.parametrize("kind", ["attention-fallback", "autocast-fp32-op"])
def test_injection_that_cannot_apply_names_kind_and_workload(kind):
    with pytest.raises(UsageError, match=f"injection '{kind}' cannot apply to workload 'resnet18'"):
        build("resnet18", kind)


@pytest.mark.parametrize("kinds, message", [
    (["gpu-work"], "injection 'gpu-work' needs MICROSECONDS: gpu-work:MICROSECONDS"),
    (["gpu-work:0"], "in microseconds, a number in \\(0, 1000000\\]"),
    (["gpu-work:fast"], "got 'fast'"),
    (["extra-sync:3"], "injection 'extra-sync' takes no argument"),
    (["accuracy-loss:0"], "a whole number in \\[1, 22\\]"),
    (["accuracy-loss:23"], "got '23'"),
    (["accuracy-loss:7.5"], "got '7.5'"),
])
def test_a_bad_injection_argument_is_a_usage_error(kinds, message):
    with pytest.raises(UsageError, match=message):
        inject.check_kinds(kinds)


def test_gpu_work_takes_microseconds_and_keeps_its_argument():
    assert inject.check_kinds(["gpu-work:340", "gpu-work:340", "extra-sync"]) == (
        "gpu-work:340", "extra-sync")


def test_accuracy_loss_takes_bits_or_none():
    assert inject.check_kinds(["accuracy-loss", "accuracy-loss:9"]) == (
        "accuracy-loss", "accuracy-loss:9")


def test_gpu_work_needs_a_cuda_model():
    with pytest.raises(UsageError, match="'gpu-work' cannot apply to workload 'bert': it runs on cpu"):
        build("bert", "gpu-work:100")


def test_no_injection_is_the_default_path():
    assert inject.apply((), w := build("bert")) is w


def test_python_op_counter_counts_a_first_call_like_a_second():
    # Python 3.12's settrace counted 0 opcodes on a function's first traced call; the counter
    # uses sys.monitoring there. Both calls of the same function must count the same, > 0.
    from ampcore.measure.counters import _count_python_ops

    def work():
        total = 0
        for i in range(50):
            total += i
        return total

    first, second = _count_python_ops(work), _count_python_ops(work)
    assert first == second and first > 50
    assert _count_python_ops(lambda: None) is not None  # the lambda's own instructions


@pytest.mark.parametrize(("cuda", "inside"), [("13.0", "1"), ("12.6", "1"), ("12.4", None),
                                              (None, None)])
def test_the_kernel_counter_releases_cupti_on_cuda_12_6_and_later(monkeypatch, cuda, inside):
    """The profiler is told to release CUPTI (whose hooks slowed later eager launches) only
    where torch supports it, and the environment is left as it was."""
    from ampcore.measure import counters

    monkeypatch.setattr(torch.version, "cuda", cuda)
    monkeypatch.delenv(counters.TEARDOWN, raising=False)
    with counters._cupti_released():
        seen = os.environ.get(counters.TEARDOWN)
    assert seen == inside
    assert counters.TEARDOWN not in os.environ
    monkeypatch.setenv(counters.TEARDOWN, "0")
    with counters._cupti_released():
        pass
    assert os.environ[counters.TEARDOWN] == "0"


def test_apply_refuses_an_injection_that_cannot_act_on_the_precision():
    from ampcore.core.registry import get_precision

    with pytest.raises(UsageError, match="cannot act on precision 'fp32'"):
        inject.apply(("autocast-fp32-op",), build("bert"), get_precision("fp32"))
    assert inject.apply(("autocast-fp32-op",), build("bert"), get_precision("amp-bf16"))


def test_an_injected_run_is_labelled_in_the_results_table(make_result):
    from ampcore.judge.table import results_table

    clean = make_result(precision="fp32")
    injected = make_result(precision="amp-bf16", config={"injections": ["extra-sync"]})
    table = results_table([clean, injected])
    assert "[injected: extra-sync]" in table.splitlines()[-1]
    assert "injected" not in table.splitlines()[-2]  # negative control: the clean fp32 row
