"""CUDA-graph support that can be checked without a GPU: the choice, the optimizer made
capturable, state restored in place, and the clear refusals off CUDA."""

import copy

import pytest
import torch

from ampcore.train import graphs
from ampcore.launch import worker_environment
from ampcore.core.errors import UsageError
from ampcore.train.loop import Trainer
from ampcore.train.plan import plan_steps
from ampcore.core.registry import get_precision
from ampcore.train.precision import activate
from ampcore.workloads.base import linear_schedule, make_adamw

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize("choice, device, expected", [
    ("auto", CUDA, True), (None, CUDA, True), ("auto", CPU, False),
    ("on", CUDA, True), ("off", CUDA, False), ("off", CPU, False), ("OFF", CUDA, False),
])
def test_resolve_cuda_graphs(choice, device, expected):
    assert graphs.resolve_cuda_graphs(choice, device) is expected


def test_cuda_graphs_on_a_cpu_is_refused_with_the_way_out():
    with pytest.raises(UsageError, match="need a CUDA device, not cpu; use --cuda-graphs off"):
        graphs.resolve_cuda_graphs("on", CPU)
    with pytest.raises(UsageError, match="unknown CUDA-graph choice 'yes'; valid: auto, on, off"):
        graphs.resolve_cuda_graphs("yes", CUDA)


def test_trainer_refuses_cuda_graphs_off_cuda(make_tiny_workload):
    workload = make_tiny_workload()
    plan = plan_steps(workload.train_size, 10, 1, 0, 2, CPU)
    with activate(get_precision("fp32"), CPU) as amp, pytest.raises(UsageError, match="CUDA device"):
        Trainer(workload, amp, plan, cuda_graphs=True)


def _params(n: int = 3) -> list[torch.nn.Parameter]:
    torch.manual_seed(0)
    return [torch.nn.Parameter(torch.randn(4)) for _ in range(n)]


def _train(optimizer: torch.optim.Optimizer, steps: int, scheduler=None) -> None:
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for _ in range(steps):
        optimizer.zero_grad()
        sum((p ** 2).sum() for p in params).backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()


def test_make_capturable_puts_the_learning_rate_in_a_tensor_the_scheduler_fills():
    model = torch.nn.Linear(3, 2)
    optimizer = make_adamw(model, 0.1, 0.01, CPU)
    scheduler = linear_schedule(optimizer, total_steps=4)  # built first, as workloads do
    graphs.make_capturable(optimizer, CPU)
    group = optimizer.param_groups[0]
    lr = group["lr"]
    assert torch.is_tensor(lr) and group["capturable"] is True and float(lr) == pytest.approx(0.1)
    for _ in range(2):
        optimizer.step()  # no gradients: nothing moves, but the scheduler sees a step taken
        scheduler.step()
    assert group["lr"] is lr  # the same tensor a captured step reads, updated in place
    assert float(lr) == pytest.approx(0.1 * (1 - 2 / 4))


def test_make_capturable_refuses_an_optimizer_that_cannot_be_captured():
    with pytest.raises(UsageError, match="SGD cannot be captured.*--cuda-graphs off"):
        graphs.make_capturable(torch.optim.SGD(_params(), lr=0.1), CPU)


def test_reset_optimizer_state_copies_into_the_same_tensors():
    optimizer = torch.optim.AdamW(_params(), lr=0.1)
    _train(optimizer, 3)
    tensors = [t for state in optimizer.state.values() for t in state.values()]
    middle = copy.deepcopy(optimizer.state_dict())
    _train(optimizer, 2)
    graphs.reset_optimizer_state(optimizer, middle)
    after = [t for state in optimizer.state.values() for t in state.values()]
    assert all(a is b for a, b in zip(after, tensors, strict=True))
    for index, state in enumerate(optimizer.state.values()):
        for key, value in state.items():
            torch.testing.assert_close(value, middle["state"][index][key])


def test_reset_to_a_fresh_state_trains_like_a_new_optimizer():
    """An empty saved state means zeros: AdamW's own starting state, step by step."""
    params = _params()
    optimizer = torch.optim.AdamW(params, lr=0.1)
    fresh = copy.deepcopy(optimizer.state_dict())
    start = [p.detach().clone() for p in params]
    _train(optimizer, 3)
    graphs.reset_optimizer_state(optimizer, fresh)
    with torch.no_grad():
        for p, s in zip(params, start, strict=True):
            p.copy_(s)
    _train(optimizer, 2)

    twins = [torch.nn.Parameter(s.clone()) for s in start]
    _train(torch.optim.AdamW(twins, lr=0.1), 2)
    for p, twin in zip(params, twins, strict=True):
        torch.testing.assert_close(p, twin)


def test_reset_restores_the_saved_learning_rate_in_place():
    optimizer = torch.optim.AdamW(_params(), lr=0.1)
    graphs.make_capturable(optimizer, CPU)
    saved = copy.deepcopy(optimizer.state_dict())
    lr = optimizer.param_groups[0]["lr"]
    lr.fill_(0.5)
    graphs.reset_optimizer_state(optimizer, saved)
    assert optimizer.param_groups[0]["lr"] is lr and float(lr) == pytest.approx(0.1)


def test_ddp_workers_turn_the_nccl_watchdog_off_only_for_captured_steps():
    env = worker_environment({}, nproc=2, cpu_count=8, cuda_graphs=True)
    assert env["TORCH_NCCL_ASYNC_ERROR_HANDLING"] == "0"
    assert "TORCH_NCCL_ASYNC_ERROR_HANDLING" not in worker_environment({}, 2, 8)
    kept = worker_environment({"TORCH_NCCL_ASYNC_ERROR_HANDLING": "3"}, 2, 8, cuda_graphs=True)
    assert kept["TORCH_NCCL_ASYNC_ERROR_HANDLING"] == "3"


# torch's words under sync debug mode "error" for a real sync, and the mode's own notice.
REAL_SYNC = "called a synchronizing CUDA operation"
MODE_NOTICE = ("Synchronization debug mode is a prototype feature and does not yet detect all "
               "synchronizing operations")


@pytest.mark.parametrize("message, is_sync", [
    (REAL_SYNC, True), (MODE_NOTICE, False), ("an unrelated failure", False),
])
def test_first_sync_recognises_a_sync_as_the_sync_counter_does(monkeypatch, message, is_sync):
    """One definition of "torch reported a sync" (``counters.is_sync_warning``): the capture
    pre-check and the step counters cannot disagree on a message, the mode's notice included."""
    from ampcore.measure.counters import is_sync_warning

    modes = []
    monkeypatch.setattr(torch.cuda, "get_sync_debug_mode", lambda: 0)  # no GPU needed
    monkeypatch.setattr(torch.cuda, "set_sync_debug_mode", modes.append)

    def step():
        raise RuntimeError(message)

    assert is_sync_warning(message) is is_sync
    if is_sync:
        assert graphs.first_sync(step).reason == "the step synchronises with the host"
    else:  # not a sync: the step's own failure, raised as it is
        with pytest.raises(RuntimeError, match=message[:20]):
            graphs.first_sync(step)
    assert modes == ["error", 0]  # the mode restored
