"""The training loop: step plan, call order into the GradScaler, warm-up, non-finite losses."""

import math
from unittest.mock import MagicMock, PropertyMock

import pytest
import torch

from ampcore.core.errors import NonFiniteLossError
from ampcore.train.loop import Trainer
from ampcore.train.plan import plan_steps
from ampcore.core.registry import get_precision
from ampcore.train.precision import ActivePrecision

pytestmark = pytest.mark.usefixtures("one_cpu_thread")
CPU = torch.device("cpu")


def _amp(precision_id):
    return ActivePrecision(get_precision(precision_id), CPU)


def _grad_norm(model):
    return torch.linalg.vector_norm(
        torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None])).item()


def _first_step_with(plan, sample):
    """The first optimizer step whose batch contains ``sample``."""
    return next(i for i, b in enumerate(plan.batches) if sample in b.tolist())


# --- plan_steps ---------------------------------------------------------------------------------

PLAN_CASES = {
    # id: (n_samples, batch_size, epochs, min_rounds)
    "partial-last-batch": (100, 32, 3, 10),
    "exact-batches": (128, 16, 2, 10),
    "one-epoch": (10, 3, 1, 4),
    "many-small-steps": (1000, 7, 2, 5),
    "more-epochs-than-rounds": (40, 8, 6, 4),
    "smoke-bert-shape": (320, 32, 5, 10),
}


@pytest.mark.parametrize("case", list(PLAN_CASES.values()), ids=list(PLAN_CASES))
def test_plan_covers_every_sample_once_per_epoch(case):
    n, batch_size, epochs, min_rounds = case
    plan = plan_steps(n, batch_size, epochs, seed=1, min_rounds=min_rounds, device=CPU)
    steps_per_epoch = math.ceil(n / batch_size)
    assert plan.total_steps == epochs * steps_per_epoch
    for epoch in range(epochs):
        batches = plan.batches[epoch * steps_per_epoch:(epoch + 1) * steps_per_epoch]
        # Every sample exactly once: the epoch's batches are a permutation of range(n).
        assert torch.equal(torch.cat(batches).sort().values, torch.arange(n))
        # Full batches, and the last partial one kept (as a DataLoader with drop_last=False).
        sizes = [len(b) for b in batches]
        assert sizes[:-1] == [batch_size] * (steps_per_epoch - 1)
        assert sizes[-1] == (n % batch_size or batch_size)


@pytest.mark.parametrize("case", list(PLAN_CASES.values()), ids=list(PLAN_CASES))
def test_plan_rounds_partition_steps_and_end_on_epoch_boundaries(case):
    n, batch_size, epochs, min_rounds = case
    plan = plan_steps(n, batch_size, epochs, seed=1, min_rounds=min_rounds, device=CPU)
    steps_per_epoch = math.ceil(n / batch_size)
    # The rounds are consecutive, non-empty and cover every step exactly once, in order.
    assert [i for r in plan.rounds for i in r] == list(range(plan.total_steps))
    assert all(len(r) > 0 for r in plan.rounds)
    # At least min_rounds rounds (a round is one step or more, so never more than the steps).
    assert len(plan.rounds) >= min(min_rounds, plan.total_steps)
    assert len(plan.epoch_of_round) == len(plan.rounds)
    for r, epoch in zip(plan.rounds, plan.epoch_of_round):
        # No round straddles an epoch boundary.
        assert r.start // steps_per_epoch == epoch == (r.stop - 1) // steps_per_epoch
    # epoch_ends: exactly the last round of each epoch.
    ends = {i for i, r in enumerate(plan.rounds) if r.stop % steps_per_epoch == 0}
    assert plan.epoch_ends == frozenset(ends)
    assert len(ends) == epochs
    # Near-equal rounds within an epoch.
    for epoch in range(epochs):
        lengths = [len(r) for r, e in zip(plan.rounds, plan.epoch_of_round) if e == epoch]
        assert max(lengths) - min(lengths) <= 1


def test_plan_has_one_step_rounds_when_epochs_are_shorter_than_the_round_count():
    # 2 steps per epoch cannot make 5 rounds per epoch: every step becomes its own round.
    plan = plan_steps(4, 2, epochs=2, seed=0, min_rounds=10, device=CPU)
    assert [len(r) for r in plan.rounds] == [1, 1, 1, 1]
    assert plan.epoch_ends == frozenset({1, 3})


def test_plan_is_deterministic_for_a_seed_and_shuffles_each_epoch():
    a = plan_steps(100, 16, 3, seed=7, min_rounds=10, device=CPU)
    b = plan_steps(100, 16, 3, seed=7, min_rounds=10, device=CPU)
    c = plan_steps(100, 16, 3, seed=8, min_rounds=10, device=CPU)
    assert all(torch.equal(x, y) for x, y in zip(a.batches, b.batches))
    assert (a.rounds, a.epoch_of_round, a.epoch_ends) == (b.rounds, b.epoch_of_round, b.epoch_ends)
    assert not all(torch.equal(x, y) for x, y in zip(a.batches, c.batches))
    steps = math.ceil(100 / 16)
    assert not torch.equal(torch.cat(a.batches[:steps]), torch.cat(a.batches[steps:2 * steps]))


# --- call order into the GradScaler ---------------------------------------------------------------

@pytest.mark.parametrize("max_grad_norm", [None, 1e-3], ids=["no-clipping", "clipping"])
def test_step_call_order_with_mock_scaler(make_tiny_workload, max_grad_norm):
    workload = make_tiny_workload()
    optimizer = workload.optimizer
    plan = plan_steps(workload.train_size, 16, 1, seed=0, min_rounds=2, device=CPU)
    amp = _amp("fp32")
    recorder = MagicMock()  # the parent records the calls of its children in one order
    norms = {"unscale_": [], "step": []}

    def step(opt):
        norms["step"].append(_grad_norm(workload.model))
        opt.step()  # really step, so that the trainer still trains

    scaler = recorder.scaler
    scaler.scale.side_effect = lambda loss: loss
    scaler.unscale_.side_effect = lambda opt: norms["unscale_"].append(_grad_norm(workload.model))
    scaler.step.side_effect = step
    scaler.is_enabled.return_value = False
    amp.scaler = scaler
    # A gradient hook on one parameter marks where backward happens in the call sequence.
    first_param = next(workload.model.parameters())
    def mark_backward(grad):
        recorder.backward()  # returns None: the gradient is left unchanged

    first_param.register_hook(mark_backward)
    before = first_param.detach().clone()

    trainer = Trainer(workload, amp, plan, max_grad_norm=max_grad_norm)
    for r in range(len(plan.rounds)):
        trainer.run_round(r)

    names = [c[0] for c in recorder.mock_calls
             if c[0] in {"scaler.scale", "backward", "scaler.unscale_", "scaler.step", "scaler.update"}]
    one_step = ["scaler.scale", "backward"]
    one_step += ["scaler.unscale_"] if max_grad_norm is not None else []
    one_step += ["scaler.step", "scaler.update"]
    assert names == one_step * plan.total_steps
    if max_grad_norm is None:
        scaler.unscale_.assert_not_called()
    # scale gets the loss, unscale_ and step get the workload's optimizer.
    for call in scaler.scale.call_args_list:
        loss = call.args[0]
        assert loss.dim() == 0 and loss.requires_grad
    for call in scaler.step.call_args_list + scaler.unscale_.call_args_list:
        assert call.args[0] is optimizer
    if max_grad_norm is not None:
        # unscale_ sees the raw gradients; step sees them clipped: clipping happens in between.
        assert all(n > max_grad_norm for n in norms["unscale_"])
        assert all(n <= max_grad_norm * 1.001 for n in norms["step"])
    else:
        assert all(n > 1e-3 for n in norms["step"])  # control: unclipped grads are larger
    assert not torch.equal(first_param, before)  # the optimizer really stepped
    assert torch.isfinite(trainer.losses).all()


@pytest.mark.parametrize("max_grad_norm", [None, 0.5], ids=["no-clipping", "clipping"])
def test_real_fp16_grad_scaler_is_called_in_order(make_tiny_workload, max_grad_norm):
    # The same order holds with torch's GradScaler itself (wrapped, so calls pass through).
    workload = make_tiny_workload()
    plan = plan_steps(workload.train_size, 25, 1, seed=0, min_rounds=1, device=CPU)
    amp = _amp("amp-fp16")
    real = amp.scaler
    amp.scaler = MagicMock(wraps=real)
    # The loss-scale counting reads the scale tensor itself, an attribute a mock cannot wrap.
    type(amp.scaler)._scale = PropertyMock(side_effect=lambda: real._scale)
    trainer = Trainer(workload, amp, plan, max_grad_norm=max_grad_norm)
    trainer.run_round(0)
    names = [c[0] for c in amp.scaler.mock_calls if c[0] in {"scale", "unscale_", "step", "update"}]
    one_step = ["scale"] + (["unscale_"] if max_grad_norm else []) + ["step", "update"]
    assert names == one_step * plan.total_steps
    assert trainer.check_losses() == {"nonfinite_losses": 0}
    assert trainer.skipped_steps() == 0


# --- training and evaluation ----------------------------------------------------------------

@pytest.mark.parametrize("precision_id", ["fp32", "amp-fp16", "amp-bf16"])
def test_tiny_workload_learns_and_evaluate_is_consistent(make_tiny_workload, train_all, precision_id):
    workload = make_tiny_workload(n_train=200, n_test=100)
    plan = plan_steps(workload.train_size, 20, 5, seed=0, min_rounds=5, device=CPU)
    trainer = train_all(Trainer(workload, _amp(precision_id), plan, eval_batch_size=32))
    assert trainer.steps_done == plan.total_steps
    assert trainer.check_losses() == {"nonfinite_losses": 0}
    losses = trainer.losses
    assert losses[-10:].mean() < 0.5 * losses[:10].mean()
    evaluation = trainer.evaluate()
    predictions = torch.tensor(evaluation.predictions)
    # eval_batch_size 32 does not divide 100: every test sample must still be predicted once.
    assert len(predictions) == 100
    assert evaluation.accuracy == pytest.approx((predictions == workload.test_labels).float().mean().item())
    assert evaluation.accuracy > 0.8  # separable data: far above the 0.5 of chance
    assert math.isfinite(evaluation.loss) and evaluation.loss < math.log(2)
    assert trainer.skipped_steps() == 0


def test_check_losses_reads_only_new_steps(make_tiny_workload):
    workload = make_tiny_workload()
    plan = plan_steps(workload.train_size, 10, 1, seed=0, min_rounds=2, device=CPU)
    trainer = Trainer(workload, _amp("fp32"), plan)
    trainer.run_round(0)
    assert trainer.check_losses() == {"nonfinite_losses": 0}
    assert trainer.checked_steps == trainer.steps_done == len(plan.rounds[0])
    assert torch.isnan(trainer.losses[trainer.steps_done:]).all()  # not yet trained
    trainer.run_round(1)
    assert trainer.check_losses() == {"nonfinite_losses": 0}
    assert trainer.checked_steps == plan.total_steps


# --- warm-up -------------------------------------------------------------------------------------

def _trajectory(make_tiny_workload, train_all, precision_id, warmup_steps, rng_seed=123):
    workload = make_tiny_workload(dropout=0.3, scheduler_steps=8)
    plan = plan_steps(workload.train_size, 16, 2, seed=0, min_rounds=4, device=CPU)  # 16,16,16,2
    trainer = Trainer(workload, _amp(precision_id), plan)
    torch.manual_seed(rng_seed)  # the dropout masks of the timed run come from here
    if warmup_steps is not None:
        trainer.warm_up(warmup_steps)
    train_all(trainer)
    return trainer


@pytest.mark.parametrize("precision_id", ["fp32", "amp-fp16", "amp-bf16"])
def test_warm_up_does_not_change_the_trajectory(make_tiny_workload, train_all, precision_id):
    plain = _trajectory(make_tiny_workload, train_all, precision_id, warmup_steps=None)
    warmed = _trajectory(make_tiny_workload, train_all, precision_id, warmup_steps=3)
    assert torch.equal(plain.losses, warmed.losses)
    for (name, a), b in zip(plain.model.state_dict().items(), warmed.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert plain.workload.scheduler.last_epoch == warmed.workload.scheduler.last_epoch
    assert plain.workload.optimizer.param_groups[0]["lr"] == warmed.workload.optimizer.param_groups[0]["lr"]
    assert plain.amp.scaler_state() == warmed.amp.scaler_state()
    assert plain.skipped_steps() == warmed.skipped_steps() == 0
    # Control: dropout makes the trajectory depend on the RNG, so the RNG restore matters.
    other_rng = _trajectory(make_tiny_workload, train_all, precision_id, warmup_steps=None, rng_seed=124)
    assert not torch.equal(plain.losses, other_rng.losses)


@pytest.mark.parametrize("probe_steps", [0, 3], ids=["no-probe", "probe"])
def test_warm_up_visits_every_batch_shape_then_restores_state(make_tiny_workload, probe_steps):
    workload = make_tiny_workload(dropout=0.3, scheduler_steps=8)
    initial = {k: v.clone() for k, v in workload.model.state_dict().items()}
    calls = []
    forward = workload.forward

    def recording_forward(model, inputs):
        calls.append((model.training, len(inputs["x"])))
        return forward(model, inputs)

    workload.forward = recording_forward
    plan = plan_steps(workload.train_size, 16, 2, seed=0, min_rounds=4, device=CPU)
    trainer = Trainer(workload, _amp("amp-fp16"), plan, eval_batch_size=32,
                      probe_steps=probe_steps)
    rng_before = torch.get_rng_state()
    trainer.warm_up(2)
    # Two training steps of 16, one of the partial batch of 2, then the probe's steps of the
    # first shape (timed ones, then the counters' passes), then the eval path.
    training = [size for training, size in calls if training]
    assert training[:3] == [16, 16, 2]
    if probe_steps:
        assert len(training) > 3 + probe_steps and set(training[3:]) == {16}
        assert len(trainer.probe.host_s) == probe_steps and trainer.probe.counts.aten_ops > 0
    else:
        assert len(training) == 3 and trainer.probe is None
    assert [size for training, size in calls if not training] == [32, 8]
    assert trainer.warmup_steps == 2  # recorded in the result's config
    # Everything is back where it started.
    for k, v in workload.model.state_dict().items():
        assert torch.equal(v, initial[k]), k
    assert workload.optimizer.state_dict()["state"] == {}
    assert workload.scheduler.last_epoch == 0
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert trainer.amp.scaler.get_scale() == 65536.0
    assert trainer.steps_done == 0 and torch.isnan(trainer.losses).all()


# --- non-finite losses ---------------------------------------------------------------------------

@pytest.mark.parametrize("poison", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_nonfinite_loss_without_scaler_names_the_step(make_tiny_workload, train_all, poison):
    workload = make_tiny_workload()
    workload.train_inputs["x"][17, 0] = poison
    plan = plan_steps(workload.train_size, 10, 2, seed=0, min_rounds=4, device=CPU)
    bad_step = _first_step_with(plan, 17)
    trainer = train_all(Trainer(workload, _amp("fp32"), plan))
    with pytest.raises(NonFiniteLossError) as info:
        trainer.check_losses()
    assert info.value.step == bad_step
    assert f"step {bad_step}" in str(info.value)
    assert "tiny/fp32" in str(info.value)


def test_nonfinite_loss_is_reported_at_the_round_that_had_it(make_tiny_workload):
    # Checked round by round (as the runner does), the rounds before the bad one pass.
    workload = make_tiny_workload()
    plan = plan_steps(workload.train_size, 10, 1, seed=0, min_rounds=5, device=CPU)
    bad_step = 3
    workload.train_inputs["x"][plan.batches[bad_step][0], 0] = float("nan")
    trainer = Trainer(workload, _amp("amp-bf16"), plan)
    for r in range(bad_step):
        trainer.run_round(r)
        assert trainer.check_losses() == {"nonfinite_losses": 0}
    trainer.run_round(bad_step)
    with pytest.raises(NonFiniteLossError) as info:
        trainer.check_losses()
    assert info.value.step == bad_step


def test_fp16_grad_scaler_skips_the_step_with_inf_gradients(make_tiny_workload, train_all):
    workload = make_tiny_workload()
    workload.train_inputs["x"][17, 0] = float("inf")  # one sample, seen once per epoch
    plan = plan_steps(workload.train_size, 10, 2, seed=0, min_rounds=4, device=CPU)
    trainer = train_all(Trainer(workload, _amp("amp-fp16"), plan))
    # No error with a GradScaler: the two poisoned steps are counted and skipped.
    assert trainer.check_losses() == {"nonfinite_losses": 2}
    assert trainer.skipped_steps() == 2
    bad = [i for i, b in enumerate(plan.batches) if 17 in b.tolist()]
    assert (~torch.isfinite(trainer.losses)).nonzero().flatten().tolist() == bad
    assert all(torch.isfinite(p).all() for p in workload.model.parameters())
    # The scaler backed off once per overflow (growth needs 2000 clean steps).
    state = trainer.amp.scaler_state()
    assert state["final_scale"] == state["min_scale"] == 65536.0 * 0.5 ** 2
    assert (state["backoffs"], state["growths"]) == (2, 0)


def test_skipped_steps_is_zero_for_clean_training(make_tiny_workload, train_all):
    workload = make_tiny_workload()
    plan = plan_steps(workload.train_size, 10, 2, seed=0, min_rounds=4, device=CPU)
    trainer = train_all(Trainer(workload, _amp("amp-fp16"), plan))
    assert trainer.skipped_steps() == 0
    assert trainer.check_losses() == {"nonfinite_losses": 0}
