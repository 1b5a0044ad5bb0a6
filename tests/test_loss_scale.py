"""Loss-scale health: the GradScaler's configuration and its scale's moves, counted on the
device without syncs, reset in place after the warm-up, saved in the record (schema 4) and
judged by ``ampcore compare`` (a configuration change, more backoffs)."""

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import torch

from ampcore.cli import main
from ampcore.core.registry import get_precision
from ampcore.history.compare import REGRESSION
from ampcore.history.storage import read_run
from ampcore.judge.record import SCHEMA, SCHEMA_KEY, BenchmarkRecord, describe_loss_scale
from ampcore.measure.counters import count_step
from ampcore.train.loop import Trainer
from ampcore.train.plan import plan_steps
from ampcore.train.loss_scale import ScaleHealth
from ampcore.train.precision import ActivePrecision
from tests.support import synthetic

pytestmark = pytest.mark.usefixtures("one_cpu_thread")
CPU = torch.device("cpu")
START = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)


# --- counting on the device ----------------------------------------------------------------------

def _fp16(init_scale=1024.0, growth_interval=2):
    """An amp-fp16 ActivePrecision whose scaler grows after ``growth_interval`` clean steps."""
    amp = ActivePrecision(get_precision("amp-fp16"), CPU)
    amp.scaler = torch.amp.GradScaler("cpu", init_scale=init_scale, growth_interval=growth_interval)
    amp.scale_health = ScaleHealth(amp.scaler)
    return amp


def _stepper(amp):
    """One optimizer step on a 3-weight model; ``overflow`` makes the gradients inf."""
    weight = torch.nn.Parameter(torch.ones(3))
    optimizer = torch.optim.SGD([weight], lr=0.01)

    def step(overflow: bool) -> None:
        optimizer.zero_grad()
        amp.backward((weight * (float("inf") if overflow else 1.0)).sum())
        amp.optimizer_step(optimizer)

    return step


def _expected(pattern, scale, interval, growth=2.0, backoff=0.5):
    """GradScaler's rule worked by hand: (final, min, growths, backoffs)."""
    minimum, growths, backoffs, clean = scale, 0, 0, 0
    for overflow in pattern:
        if overflow:
            scale, clean, backoffs = scale * backoff, 0, backoffs + 1
        else:
            clean += 1
            if clean == interval:
                scale, clean, growths = scale * growth, 0, growths + 1
        minimum = min(minimum, scale)
    return scale, minimum, growths, backoffs


@pytest.mark.parametrize("pattern", [
    [False, False, True, False, False, False, True, True],
    [bool(x) for x in np.random.default_rng(3).random(60) < 0.3],
], ids=["by-hand", "random"])
def test_growths_backoffs_and_minimum_are_counted_exactly(pattern):
    amp = _fp16()
    step = _stepper(amp)
    for overflow in pattern:
        step(overflow)
    final, minimum, growths, backoffs = _expected(pattern, 1024.0, 2)
    assert backoffs == sum(pattern) and growths > 0  # the pattern moved the scale both ways
    assert amp.scaler_state() == {
        "enabled": True, "init_scale": 1024.0, "growth_factor": 2.0, "backoff_factor": 0.5,
        "growth_interval": 2, "final_scale": final, "min_scale": minimum,
        "growths": growths, "backoffs": backoffs}


def test_clean_steps_count_no_backoff():
    """Negative control: nothing overflows, so the scale only grows."""
    amp = _fp16(growth_interval=3)
    step = _stepper(amp)
    for _ in range(7):
        step(False)
    state = amp.scaler_state()
    assert (state["backoffs"], state["growths"]) == (0, 2)
    assert state["min_scale"] == 1024.0 and state["final_scale"] == 4096.0


def test_counting_adds_no_sync_to_the_step(monkeypatch):
    """A step with the counting against the same step without: six small device ops more,
    not one sync or cast (a CPU GradScaler's own step syncs, on either side)."""
    amp = _fp16()
    step = _stepper(amp)
    step(False)  # the first, eager step allocates the counters
    counted = count_step(lambda: step(True), CPU)
    monkeypatch.setattr(amp.scale_health, "before_update", lambda scaler: None)
    monkeypatch.setattr(amp.scale_health, "after_update", lambda scaler: None)
    plain = count_step(lambda: step(True), CPU)
    assert (counted.syncs, counted.casts) == (plain.syncs, plain.casts)
    added = {op: n - plain.ops.get(op, 0) for op, n in counted.ops.items()
             if n != plain.ops.get(op, 0)}
    assert added == {"aten.copy_": 1, "aten.gt": 1, "aten.lt": 1, "aten.add_": 2,
                     "aten.minimum": 1}


@pytest.mark.parametrize("precision_id", ["fp32", "amp-bf16"])
def test_disabled_scaler_records_only_that_it_is_off(precision_id):
    amp = ActivePrecision(get_precision(precision_id), CPU)
    _stepper(amp)(False)
    assert amp.scaler_state() == {
        "enabled": False, "init_scale": None, "growth_factor": None, "backoff_factor": None,
        "growth_interval": None, "final_scale": None, "min_scale": None, "growths": None,
        "backoffs": None}


# --- reset after the warm-up ---------------------------------------------------------------------

def _poisoned_trainer(make_tiny_workload):
    workload = make_tiny_workload()
    workload.train_inputs["x"][17, 0] = float("inf")  # one sample, seen once per epoch
    plan = plan_steps(workload.train_size, 10, 2, seed=0, min_rounds=4, device=CPU)
    return Trainer(workload, ActivePrecision(get_precision("amp-fp16"), CPU), plan), plan


def test_restore_resets_the_counters_in_place(make_tiny_workload):
    trainer, plan = _poisoned_trainer(make_tiny_workload)
    saved = trainer._snapshot()
    for batch in plan.batches[:5]:  # step 0..4 of the first epoch hold sample 17 once
        trainer._train_step(batch)
    health = trainer.amp.scale_health
    tensors = [health._previous, health._minimum, health._growths, health._backoffs]
    addresses = [t.data_ptr() for t in tensors]
    assert trainer.amp.scaler_state()["backoffs"] == 1
    trainer._restore(saved)
    assert [health._previous, health._minimum, health._growths, health._backoffs] == tensors
    assert [t.data_ptr() for t in tensors] == addresses  # what a captured step writes to
    state = trainer.amp.scaler_state()
    assert (state["final_scale"], state["min_scale"]) == (65536.0, 65536.0)
    assert (state["growths"], state["backoffs"]) == (0, 0)


def test_warm_up_overflows_are_not_counted(make_tiny_workload, train_all):
    warmed, plan = _poisoned_trainer(make_tiny_workload)
    warmed.warm_up(len(plan.rounds[0]) + 3)  # the warm-up meets the poisoned sample
    train_all(warmed)
    plain, _ = _poisoned_trainer(make_tiny_workload)
    train_all(plain)
    state = warmed.amp.scaler_state()
    assert state == plain.amp.scaler_state()
    assert state["backoffs"] == warmed.skipped_steps() == 2  # one per epoch
    assert state["min_scale"] == state["final_scale"] == 65536.0 * 0.5 ** 2


# --- the record ----------------------------------------------------------------------------------

FP16_SCALER = {"enabled": True, "init_scale": 65536.0, "growth_factor": 2.0,
               "backoff_factor": 0.5, "growth_interval": 2000, "final_scale": 16384.0,
               "min_scale": 8192.0, "growths": 1, "backoffs": 3, "skipped_steps": 3}


def test_record_round_trip_and_listing(make_result):
    result = make_result(grad_scaler=FP16_SCALER)
    record = BenchmarkRecord.from_result(result)
    assert record.grad_scaler == {k: v for k, v in FP16_SCALER.items() if k != "skipped_steps"}
    again = BenchmarkRecord.from_extra_info(json.loads(json.dumps(record.to_extra_info())))
    assert again == record and again.schema == SCHEMA == 4
    assert isinstance(again.grad_scaler_backoffs, int) and again.grad_scaler_enabled is True
    text = "final 16384, min 8192, 1 growths, 3 backoffs"
    assert describe_loss_scale(record.grad_scaler) == text
    from ampcore.judge.table import results_table

    assert text in results_table([result])


def test_schema_3_files_load_with_the_new_fields_absent(tmp_path):
    doc = synthetic.amp_session(np.random.default_rng(0), START)
    for bench in doc["benchmarks"]:
        bench["extra_info"][SCHEMA_KEY] = 3
        for key in [k for k in bench["extra_info"] if k.startswith("grad_scaler_")]:
            if key != "grad_scaler_final_scale":
                del bench["extra_info"][key]
    path = tmp_path / "schema3.json"
    path.write_text(json.dumps(doc))
    run, problems = read_run(path)
    assert not [p for p in problems if p.severity == "error"]
    for bench in run.benchmarks.values():
        scaler = bench.record.grad_scaler
        assert bench.record.schema == 3 and scaler.pop("final_scale", None) is None
        assert set(scaler.values()) == {None}
        assert describe_loss_scale(bench.record.grad_scaler) is None


def test_malformed_scaler_fields_read_as_not_available():
    record = BenchmarkRecord.from_extra_info({
        SCHEMA_KEY: SCHEMA, "workload": "bert", "precision": "amp-fp16",
        "grad_scaler_enabled": "yes", "grad_scaler_backoffs": "many"})
    assert record.grad_scaler_enabled is None and record.grad_scaler_backoffs is None


# --- compare -------------------------------------------------------------------------------------

RECORDED = {f"grad_scaler_{k}": v for k, v in FP16_SCALER.items() if k != "skipped_steps"}
OFF = {**{k: None for k in RECORDED}, "grad_scaler_enabled": False}


def _compare(tmp_path, monkeypatch, capsys, baseline: dict, candidate: dict):
    """Save two sessions whose bert-amp-fp16 records carry these fields (fp32: scaling off)
    and run ``ampcore compare``: exit status, JSON, text."""
    store = tmp_path / ".benchmarks" / "m"
    for index, fields in ((1, baseline), (2, candidate)):
        doc = synthetic.amp_session(np.random.default_rng(index), START + timedelta(hours=index),
                                    commit=f"{index:02x}" * 20, precisions=("fp32", "amp-fp16"),
                                    records={"*": OFF, "bert-amp-fp16": fields})
        synthetic.write_run(store, index, doc)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "verdict.json"
    status = main(["compare", str(store), "--json", str(out)])
    captured = capsys.readouterr()
    return status, json.loads(out.read_text()), captured.out


def _verdicts(data: dict, name: str = "bert-amp-fp16") -> dict:
    bench = next(b for b in data["benchmarks"] if b["name"] == f"test_train[{name}]")
    return {m["metric"]: m for m in bench["metrics"]
            if m["metric"] in ("loss_scale_config", "loss_scale_backoffs")}


def _regressions(data: dict) -> set:
    return {(b["name"], m["metric"]) for b in data["benchmarks"] for m in b["metrics"]
            if m["status"] == REGRESSION}


def test_equal_runs_pass_with_both_rows_judged(tmp_path, monkeypatch, capsys):
    status, data, _ = _compare(tmp_path, monkeypatch, capsys, RECORDED, RECORDED)
    assert status == 0 and _regressions(data) == set()
    rows = _verdicts(data)
    assert {m: v["status"] for m, v in rows.items()} == {"loss_scale_config": "ok",
                                                         "loss_scale_backoffs": "ok"}
    assert _verdicts(data, "bert-fp32")["loss_scale_config"]["status"] == "ok"  # off in both


def test_a_configuration_change_is_a_regression_naming_it(tmp_path, monkeypatch, capsys):
    changed = {**RECORDED, "grad_scaler_init_scale": 1024.0, "grad_scaler_growth_interval": 500}
    status, data, text = _compare(tmp_path, monkeypatch, capsys, RECORDED, changed)
    assert status == 1
    assert _regressions(data) == {("test_train[bert-amp-fp16]", "loss_scale_config")}
    config = _verdicts(data)["loss_scale_config"]
    assert config["note"] == "init scale 65536 -> 1024; growth interval 2000 -> 500"
    assert config["change"] == 2 and config["threshold"] == 0
    assert "growth interval 2000 -> 500" in text


@pytest.mark.parametrize("baseline, candidate, note", [
    (RECORDED, OFF, "loss scaling turned off"),
    (OFF, RECORDED, "loss scaling turned on"),
    (RECORDED, {**RECORDED, "grad_scaler_backoff_factor": 0.25}, "backoff factor 0.5 -> 0.25"),
    (RECORDED, {**RECORDED, "grad_scaler_growth_factor": 4.0}, "growth factor 2 -> 4"),
], ids=["off", "on", "backoff-factor", "growth-factor"])
def test_each_setting_is_named(tmp_path, monkeypatch, capsys, baseline, candidate, note):
    status, data, _ = _compare(tmp_path, monkeypatch, capsys, baseline, candidate)
    config = _verdicts(data)["loss_scale_config"]
    assert status == 1 and (config["status"], config["note"]) == (REGRESSION, note)


@pytest.mark.parametrize("backoffs, expected", [
    (5, REGRESSION), (4, "ok"), (3, "ok"), (0, "improvement")])  # the baseline backed off 3 times
def test_more_backoffs_than_the_threshold_are_a_regression(tmp_path, monkeypatch, capsys,
                                                           backoffs, expected):
    candidate = {**RECORDED, "grad_scaler_backoffs": backoffs}
    status, data, _ = _compare(tmp_path, monkeypatch, capsys, RECORDED, candidate)
    row = _verdicts(data)["loss_scale_backoffs"]
    assert (row["status"], row["change"], row["threshold"]) == (expected, backoffs - 3, 1)
    assert _regressions(data) == ({("test_train[bert-amp-fp16]", "loss_scale_backoffs")}
                                  if expected == REGRESSION else set())
    assert status == (1 if expected == REGRESSION else 0)


def test_older_files_are_not_recorded_never_judged(tmp_path, monkeypatch, capsys):
    before = {k: None for k in RECORDED}  # a schema 3 record: none of the fields
    status, data, _ = _compare(tmp_path, monkeypatch, capsys, before, RECORDED)
    rows = _verdicts(data)
    assert status == 0 and {v["status"] for v in rows.values()} == {"n/a"}
    assert rows["loss_scale_config"]["note"] == "loss scaling settings not recorded in the baseline"
    assert rows["loss_scale_backoffs"]["note"] == ("grad_scaler_backoffs not recorded in the "
                                                   "baseline")
