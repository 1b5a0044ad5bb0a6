"""Precision modes: autocast dtype, GradScaler, TF32 flags and device support (on a CPU)."""

import pytest
import torch

from ampcore.measure.environment import tf32_flags

from ampcore.core.errors import UnsupportedPrecisionError, UsageError
from ampcore.core.registry import PRECISIONS, get_precision
from ampcore.train.precision import (
    ActivePrecision,
    activate,
    autocast_dtype,
    check_supported,
    tf32_enabled,
)

CPU = torch.device("cpu")
# What each mode must mean: (autocast dtype or None, GradScaler enabled, TF32 on).
EXPECTED = {
    "fp32": (None, False, False),
    "tf32": (None, False, True),
    "amp-fp16": (torch.float16, True, False),
    "amp-bf16": (torch.bfloat16, False, False),
    "fp8": (torch.bfloat16, False, False),  # plus float8 linears (tests/test_fp8.py)
    "fp8-rowwise": (torch.bfloat16, False, False),
}
CPU_MODES = ["fp32", "amp-fp16", "amp-bf16"]  # tf32 and fp8 exist only on NVIDIA GPUs


def _raw_tf32_settings():
    """The backend values themselves, to check a restore is exact (not just equivalent)."""
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn
    if hasattr(matmul, "fp32_precision") and hasattr(conv, "conv"):
        return (matmul.fp32_precision, conv.conv.fp32_precision)
    return (matmul.allow_tf32, conv.allow_tf32)


def test_registry_lists_exactly_the_six_modes():
    assert list(PRECISIONS) == list(EXPECTED)


@pytest.mark.parametrize("precision_id", list(EXPECTED))
def test_mode_definition(precision_id):
    p = get_precision(precision_id)
    dtype, scaler, tf32 = EXPECTED[precision_id]
    assert (autocast_dtype(p), p.grad_scaler, p.tf32) == (dtype, scaler, tf32)
    assert p.mixed == (dtype is not None)
    assert p is PRECISIONS[precision_id]  # the registry's object itself, not a copy


def test_a_mode_is_bound_as_its_implementation_class():
    from ampcore.train.fp8 import Float8Active

    assert type(ActivePrecision(get_precision("fp32"), CPU)) is ActivePrecision
    assert get_precision("amp-bf16").implementation == "ampcore.train.precision:ActivePrecision"
    assert get_precision("fp8").implementation == "ampcore.train.fp8:Float8Active"
    assert issubclass(Float8Active, ActivePrecision)
    with activate(get_precision("amp-fp16"), CPU) as amp:
        assert type(amp) is ActivePrecision and amp.precision is get_precision("amp-fp16")


@pytest.mark.parametrize("precision_id", CPU_MODES)
def test_forward_context_autocast_dtype(precision_id):
    dtype = EXPECTED[precision_id][0]
    with activate(get_precision(precision_id), "cpu") as amp:
        with amp.forward_context():
            x = torch.randn(4, 4)
            out = x @ x
            assert torch.is_autocast_enabled("cpu") == (dtype is not None)
            if dtype is not None:
                assert torch.get_autocast_dtype("cpu") == dtype
        # Outside the forward context nothing is autocast any more.
        assert not torch.is_autocast_enabled("cpu")
    assert out.dtype == (dtype or torch.float32)


@pytest.mark.parametrize("precision_id", ["fp32", "tf32"])
def test_full_precision_modes_switch_off_an_enclosing_autocast(precision_id):
    # tf32 cannot be activated on a CPU, but its ActivePrecision's forward context can be
    # checked directly: both full-precision modes must run matmuls in float32 even when a
    # caller opened an autocast region around the training loop.
    amp = ActivePrecision(get_precision(precision_id), CPU)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with amp.forward_context():
            assert not torch.is_autocast_enabled("cpu")
            out = torch.randn(3, 3) @ torch.randn(3, 3)
    assert out.dtype == torch.float32


@pytest.mark.parametrize("precision_id", list(EXPECTED))
def test_grad_scaler_enabled_only_for_amp_fp16(precision_id):
    amp = ActivePrecision(get_precision(precision_id), CPU)
    assert amp.scaler.is_enabled() == (precision_id == "amp-fp16")
    state = amp.scaler_state()
    assert state["enabled"] == (precision_id == "amp-fp16")
    if precision_id == "amp-fp16":
        assert state["final_scale"] == 65536.0  # torch's initial scale, nothing stepped yet
    else:
        assert state["final_scale"] is None


def test_disabled_scaler_leaves_the_loss_unscaled():
    amp = ActivePrecision(get_precision("fp32"), CPU)
    loss = torch.tensor(2.5, requires_grad=True)
    assert amp.scaler.scale(loss) is loss


def test_tf32_enabled_flips_flags_and_restores_them():
    before, raw_before = tf32_flags(), _raw_tf32_settings()
    with tf32_enabled(True):
        assert tf32_flags() == {"matmul_tf32": True, "cudnn_conv_tf32": True}
        with tf32_enabled(False):  # nested: the inner setting wins, then the outer returns
            assert tf32_flags() == {"matmul_tf32": False, "cudnn_conv_tf32": False}
        assert tf32_flags() == {"matmul_tf32": True, "cudnn_conv_tf32": True}
    assert tf32_flags() == before
    assert _raw_tf32_settings() == raw_before


@pytest.mark.parametrize("enabled", [True, False], ids=["tf32-on", "tf32-off"])
def test_tf32_flags_restored_when_the_body_raises(enabled):
    before, raw_before = tf32_flags(), _raw_tf32_settings()
    with pytest.raises(RuntimeError, match="boom"):
        with tf32_enabled(enabled):
            assert all(v == enabled for v in tf32_flags().values())
            raise RuntimeError("boom")
    assert tf32_flags() == before
    assert _raw_tf32_settings() == raw_before


@pytest.mark.parametrize("precision_id", CPU_MODES)
def test_activate_turns_tf32_off_and_restores(precision_id):
    # Start from TF32 on, so that a mode which forgets to switch it off would be caught.
    with tf32_enabled(True):
        raw_outer = _raw_tf32_settings()
        with activate(get_precision(precision_id), CPU):
            assert tf32_flags() == {"matmul_tf32": False, "cudnn_conv_tf32": False}
        assert _raw_tf32_settings() == raw_outer
        with pytest.raises(ValueError):
            with activate(get_precision(precision_id), CPU):
                raise ValueError("training failed")
        assert _raw_tf32_settings() == raw_outer


def test_tf32_on_cpu_is_unsupported_and_names_mode_and_device():
    raw_before = _raw_tf32_settings()
    with pytest.raises(UnsupportedPrecisionError) as info:
        with activate(get_precision("tf32"), "cpu"):
            pytest.fail("tf32 must not activate on a CPU")
    message = str(info.value)
    assert "'tf32'" in message and "'cpu'" in message
    assert (info.value.precision, info.value.device) == ("tf32", "cpu")
    assert info.value.exit_code == 1
    assert _raw_tf32_settings() == raw_before  # refused before touching any flag


@pytest.mark.parametrize("precision_id", CPU_MODES)
def test_cpu_modes_are_supported_on_cpu(precision_id):
    check_supported(get_precision(precision_id), CPU)  # must not raise


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
@pytest.mark.parametrize("precision_id", list(EXPECTED))
def test_cuda_without_a_gpu_is_unsupported(precision_id):
    with pytest.raises(UnsupportedPrecisionError, match="CUDA is not available"):
        check_supported(get_precision(precision_id), torch.device("cuda"))


@pytest.mark.parametrize("bad_id", ["fp4", "FP32", "", "amp"])
def test_unknown_precision_lists_valid_ids(bad_id):
    with pytest.raises(UsageError) as info:
        get_precision(bad_id)
    assert repr(bad_id) in str(info.value)
    for valid in EXPECTED:
        assert valid in str(info.value)
    assert info.value.exit_code == 2
