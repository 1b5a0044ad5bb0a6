"""What a workload's build returns (``ampcore.workloads.base.check``): labels that are not
class indices stop the run before training, naming the workload and the field."""

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
