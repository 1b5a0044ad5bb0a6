"""Precision fp8 (ampcore.train.fp8): who can run it, which layers it converts, and the skips.

torchao is an optional extra that CI does not install: the tests that convert a model import
it or skip; everything else runs without it."""

from types import SimpleNamespace

import pytest
import torch

from ampcore.train import fp8
from ampcore.core.errors import UnsupportedPrecisionError
from ampcore.core.registry import get_precision
from ampcore.core.versions import installed_version
from ampcore.history.environments import fingerprint
from ampcore.options.table import SUITE, resolve
from ampcore.train.precision import activate, autocast_dtype, check_supported
from ampcore.suite.session import SuiteSession
from ampcore.workloads.base import PreparedWorkload, make_adamw

CPU = torch.device("cpu")


@pytest.mark.parametrize("device_type, capability, torchao, expected", [
    ("cpu", None, "0.18.0", "needs an NVIDIA GPU of compute capability 8.9 or newer"),
    ("cuda", (8, 0), "0.18.0", "this GPU has 8.0"),
    ("cuda", (8, 6), "0.18.0", "this GPU has 8.6"),
    ("cuda", (9, 0), None, "torchao, which is not installed: pip install 'ampcore[fp8]'"),
    ("cuda", (8, 9), "0.9.0", "torchao >= 0.10; 0.9.0 is installed"),
])
def test_unsupported_reasons(device_type, capability, torchao, expected):
    assert expected in fp8.float8_unsupported_reason(device_type, capability, torchao)


@pytest.mark.parametrize("capability, torchao", [((8, 9), "0.10.0"), ((9, 0), "0.18.0+cu128"),
                                                 ((10, 0), "1.0")])
def test_supported_devices_and_installs(capability, torchao):
    assert fp8.float8_unsupported_reason("cuda", capability, torchao) is None


@pytest.mark.parametrize("precision_id, recipe", [("fp8", "tensorwise"),
                                                  ("fp8-rowwise", "rowwise")])
def test_fp8_is_a_mixed_mode_refused_on_a_cpu(precision_id, recipe):
    precision = get_precision(precision_id)
    assert precision.mixed and precision.option("recipe") == recipe
    assert autocast_dtype(precision) == torch.bfloat16 and not precision.grad_scaler
    with pytest.raises(UnsupportedPrecisionError, match="compute capability 8.9"):
        check_supported(precision, CPU)
    with pytest.raises(UnsupportedPrecisionError):
        with activate(precision, CPU):
            pass


def test_the_float8_check_runs_after_the_checks_every_mode_gets(monkeypatch):
    # Asked for a GPU that is not there, fp8 gives the common reason, not its own.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UnsupportedPrecisionError, match="CUDA is not available"):
        check_supported(get_precision("fp8"), torch.device("cuda"))


def test_only_linears_with_dimensions_divisible_by_16_are_convertible():
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2),
                                torch.nn.Linear(24, 32), torch.nn.Conv2d(16, 16, 3))
    assert fp8.linear_layers(model) == (["0"], ["2", "3"])


def _workload(model: torch.nn.Module) -> PreparedWorkload:
    x = torch.randn(16, 32)
    return PreparedWorkload(
        name="toy", model=model, optimizer=make_adamw(model, 1e-3, 0.0, CPU), scheduler=None,
        forward=lambda m, inputs: m(inputs["x"]), train_inputs={"x": x},
        train_labels=torch.zeros(16, dtype=torch.long), test_inputs={"x": x},
        test_labels=torch.zeros(16, dtype=torch.long), data_source="random",
        weights_source="random init", accuracy_meaningful=True)


def test_a_model_without_a_convertible_linear_is_refused_with_the_reason():
    # resnet18's only linear layer is its 512 -> 10 head: float8 would change nothing.
    active = fp8.Float8Active(get_precision("fp8"), CPU)
    with pytest.raises(UnsupportedPrecisionError, match="no linear layer of toy has in and out "
                       "features divisible by 16"):
        active.prepare(_workload(torch.nn.Sequential(torch.nn.Linear(32, 10))))


@pytest.mark.parametrize("precision_id, recipe", [("fp8", "tensorwise"),
                                                  ("fp8-rowwise", "rowwise")])
def test_prepare_converts_with_the_recipe_of_the_mode(monkeypatch, precision_id, recipe):
    recipes = []
    monkeypatch.setattr(fp8, "convert", lambda model, recipe: recipes.append(recipe))
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.Linear(64, 2))
    workload = fp8.Float8Active(get_precision(precision_id), CPU).prepare(_workload(model))
    assert recipes == [recipe] and workload.details["float8"]["recipe"] == recipe


def test_the_suite_skips_a_run_the_mode_refused_once_built():
    session = SuiteSession(resolve(SUITE, {}, environ={}), config=None)
    error = UnsupportedPrecisionError("fp8", "cuda", "no linear layer of resnet18 ...")
    with pytest.raises(pytest.skip.Exception, match="no linear layer of resnet18"):
        with session._remember_failure("resnet18-fp8"):
            raise error
    assert "resnet18-fp8" not in session.failures
    with pytest.raises(pytest.skip.Exception, match="prerequisite resnet18-fp8 cannot run"):
        session._fail_if_failed("resnet18-fp8")


def test_torchao_version_is_part_of_the_environment_check_of_fp8_runs_only():
    env = {"device_type": "cuda", "gpu": "NVIDIA H200", "tf32": {}}
    fp8 = {"b": SimpleNamespace(precision="fp8")}
    bf16 = {"b": SimpleNamespace(precision="amp-bf16")}

    def run(libraries, benchmarks):
        environment = {**env, "libraries": libraries} if libraries is not None else env
        return SimpleNamespace(environment=environment, machine_info={}, benchmarks=benchmarks)

    with_ao, other_ao = run({"torchao": "0.18.0"}, fp8), run({"torchao": "0.17.0"}, fp8)
    assert fingerprint(with_ao)["torchao"] == "0.18.0"
    assert fingerprint(with_ao) != fingerprint(other_ao)
    assert fingerprint(run(None, fp8))["torchao"] is None  # saved before libraries existed
    # Runs without an fp8 benchmark: a torchao upgrade is shown, never refused.
    assert fingerprint(run({"torchao": "0.18.0"}, bf16)) == fingerprint(run({}, bf16))


# --- with torchao installed (the optional extra) -------------------------------------------------

@pytest.mark.parametrize("recipe", ["tensorwise", "rowwise"])
def test_conversion_keeps_the_fp32_master_weights(recipe):
    pytest.importorskip("torchao.float8")
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
    before = list(model.parameters())
    optimizer = make_adamw(model, 1e-3, 0.0, CPU)
    assert fp8.convert(model, recipe, emulate=True) == ["0"]
    assert type(model[0]).__name__ == "Float8Linear" and type(model[2]) is torch.nn.Linear
    # The same Parameter objects: the optimizer built before the swap still steps them.
    assert all(a is b for a, b in zip(before, model.parameters()))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(torch.randn(16, 32))
    out.float().sum().backward()
    optimizer.step()
    assert out.dtype == torch.bfloat16
    assert all(p.dtype == torch.float32 and p.grad.dtype == torch.float32 for p in before)


def test_prepare_converts_and_records_what_it_kept(monkeypatch):
    pytest.importorskip("torchao.float8")
    real_convert = fp8.convert
    monkeypatch.setattr(fp8, "convert", lambda m, recipe: real_convert(m, recipe, emulate=True))
    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.Linear(64, 2))
    workload = fp8.Float8Active(get_precision("fp8"), CPU).prepare(_workload(model))
    details = workload.details["float8"]
    assert (details["recipe"], details["converted"], details["kept_bf16"]) == ("tensorwise", 1, ["1"])
    assert details["torchao"] == installed_version("torchao")
