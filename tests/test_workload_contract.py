"""What a workload's build returns (``ampcore.workloads.base.check``): labels that are not
class indices, or a forward whose output the loss cannot take, stop the run before training,
naming the workload and the field."""

from __future__ import annotations

import pytest
import torch

from ampcore.core.errors import WorkloadContractError
from ampcore.workloads.base import PreparedWorkload, check, make_adamw

CPU = torch.device("cpu")


def prepared(labels: torch.Tensor) -> PreparedWorkload:
    model = torch.nn.Linear(4, 2)
    inputs = {"x": torch.randn(len(labels), 4)}
    return PreparedWorkload(
        name="toy", model=model, optimizer=make_adamw(model, 1e-3, 0.0, CPU), scheduler=None,
        forward=lambda m, i: m(i["x"]), train_inputs=inputs, train_labels=labels,
        test_inputs=inputs, test_labels=labels.clone(), data_source="random",
        weights_source="random", accuracy_meaningful=True)


@pytest.mark.parametrize("dtype", [torch.float32, torch.int32, torch.bool])
def test_labels_that_are_not_class_indices_are_refused(dtype):
    labels = torch.tensor([0, 1, 1, 0]).to(dtype)
    with pytest.raises(WorkloadContractError, match=rf"workload 'toy': build returned "
                       rf"train_labels of dtype {dtype}; expected class indices"):
        check(prepared(labels), "toy", CPU)


@pytest.mark.parametrize("dtype", [torch.long, torch.uint8])
def test_class_indices_pass_and_train(dtype):
    workload = check(prepared(torch.tensor([0, 1, 1, 0]).to(dtype)), "toy", CPU)
    logits = workload.forward(workload.model, workload.train_inputs)
    torch.nn.functional.cross_entropy(logits, workload.train_labels)  # the loss takes them


def test_a_bool_is_not_a_token_count():
    workload = prepared(torch.tensor([0, 1, 1, 0]))
    workload.tokens_per_sample = True  # an int to isinstance, but no sequence length
    with pytest.raises(WorkloadContractError, match="tokens_per_sample True; expected None or "
                       "a positive int"):
        check(workload, "toy", CPU)


@pytest.mark.parametrize("forward, says", [
    (lambda m, i: {"logits": m(i["x"])}, "a forward that returns a dict"),
    (lambda m, i: m(i["x"]).argmax(-1), "a forward that returns a torch.int64 tensor"),
    (lambda m, i: m(i["x"]).flatten(), r"a forward whose logits have shape \(4,\) for labels of shape \(2,\)"),
])
def test_a_forward_the_loss_cannot_take_is_refused_before_training(forward, says):
    workload = prepared(torch.tensor([0, 1, 1, 0]))
    workload.forward = forward
    with pytest.raises(WorkloadContractError, match=f"workload 'toy': build returned {says}"):
        check(workload, "toy", CPU)


def test_the_forward_check_leaves_the_model_as_it_was():
    """Negative control: a good forward passes; the check's forward changes no parameter or
    buffer and leaves train mode on (eval only while it runs)."""
    workload = prepared(torch.tensor([0, 1, 1, 0]))
    workload.model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4),
                                         torch.nn.Dropout(0.5), torch.nn.Linear(4, 2))
    seen = []
    forward = workload.forward
    workload.forward = lambda m, i: seen.append(m.training) or forward(m, i)
    before = {k: v.clone() for k, v in workload.model.state_dict().items()}
    rng = torch.get_rng_state()
    assert check(workload, "toy", CPU) is workload
    assert seen == [False] and workload.model.training
    after = workload.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BN running stats too
    assert torch.equal(rng, torch.get_rng_state())  # no dropout draw: the trajectory stands
