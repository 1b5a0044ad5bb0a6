"""The run request (``ampcore.options.request``): the options turned into the runs, once, for
both faces; what cannot run comes back with its reason."""

import pytest
import torch

import ampcore.options.request as request_module
from ampcore.core import registry
from ampcore.core.errors import DeviceUnavailableError, UsageError
from ampcore.options.request import build_request
from ampcore.options.table import RUN, SUITE, resolve

CPU = {"profile": "smoke", "device": "cpu"}


def request_for(command=RUN, **given):
    return build_request(resolve(command, {**CPU, **given}, environ={}))


def test_the_runs_are_by_workload_then_seed_then_precision():
    request = request_for(workloads="bert resnet18", precisions="fp32 amp-bf16", seeds="2",
                          max_length="16", inject="extra-sync", eval_samples="8")
    assert [(s.workload, s.precision, s.train_seed) for s in request.runs] == [
        (w, p, seed) for w in ("bert", "resnet18") for seed in (None, 43)
        for p in ("fp32", "amp-bf16")]
    spec = request.runs[0]
    assert (spec.profile, spec.device, spec.max_length, spec.injections, spec.eval_samples) == (
        "smoke", "cpu", 16, ("extra-sync",), 8)
    assert not spec.cuda_graphs and spec.capture_fallback and spec.model is None


def test_every_mode_is_checked_once_and_those_the_device_cannot_run_come_back(monkeypatch):
    checked = []
    real_check = request_module.check_supported
    monkeypatch.setattr(request_module, "check_supported",
                        lambda precision, device: checked.append(precision.id)
                        or real_check(precision, device))
    request = request_for(precisions="all", seeds="3")
    assert sorted(checked) == sorted(registry.PRECISIONS)  # each once, however many runs
    assert set(request.refused) == {"tf32", "fp8", "fp8-rowwise"}
    assert "'tf32'" in str(request.cannot_run("tf32")) and request.cannot_run("fp32") is None
    assert {s.precision for s in request.runs} == {"fp32", "amp-fp16", "amp-bf16"}


def test_capture_asked_for_off_cuda_blocks_every_run():
    request = request_for(SUITE, cuda_graphs="on")
    assert isinstance(request.blocked, UsageError) and request.runs == []
    assert "use --cuda-graphs off" in str(request.cannot_run("fp32"))
    assert request.cuda_graphs is False


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_machine_without_it_blocks_every_run():
    request = request_for(device="cuda")
    assert isinstance(request.blocked, DeviceUnavailableError)
    assert request.refused == {} and request.runs == []


def test_the_profile_is_chosen_by_the_device_when_none_is_named():
    request = build_request(resolve(RUN, {"device": "cpu"}, environ={}))
    if torch.cuda.is_available():
        assert (request.profile, request.profile_reason) == ("seed", "CUDA is available")
    else:
        assert request.profile == "smoke" and "no CUDA" in request.profile_reason
    assert request_for().profile_reason is None


@pytest.mark.parametrize("command, flag", [(RUN, "--data-dir"), (SUITE, "--amp-data-dir")])
def test_an_unused_data_dir_is_named_with_the_faces_option(tmp_path, command, flag):
    note = request_for(command, data_dir=str(tmp_path)).unused_options()
    assert note.startswith(f"{flag} / $AMPCORE_DATA_DIR {tmp_path} is not used: the smoke")
    assert request_for(command).unused_options() is None


@pytest.mark.parametrize("command, flag", [(RUN, "--max-length"), (SUITE, "--amp-max-length")])
def test_a_max_length_no_asked_workload_takes_is_named(command, flag):
    note = request_for(command, workloads="resnet18 torchvision:vit_b_16@32",
                       max_length="64").unused_options()
    assert note == (f"{flag} / $AMPCORE_MAX_LENGTH 64 is not used: resnet18, "
                    "torchvision:vit_b_16@32 take no sequence length")
    # negative control: one asked workload takes it
    assert request_for(command, workloads="resnet18 bert", max_length="64").unused_options() is None


def test_an_injection_that_cannot_act_on_an_asked_precision_is_refused():
    # autocast-fp32-op changes what autocast does: on fp32 it would change nothing while the
    # run is recorded as injected.
    with pytest.raises(UsageError, match="'autocast-fp32-op' cannot act on precision 'fp32'"):
        request_for(precisions="fp32 amp-bf16", inject="autocast-fp32-op")
    assert request_for(precisions="amp-bf16", inject="autocast-fp32-op").runs  # negative control
