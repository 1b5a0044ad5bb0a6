"""``METRICS`` drives the history tools: a metric added as one row is judged, listed, charted,
calibrated and configurable with no other code touched; thresholds come from the rows."""

import json
import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from ampcore.history.__main__ import main
from ampcore.history.calibrate import calibrate
from ampcore.history.config import GateConfig, Thresholds, load_config, parse_config
from ampcore.history.report.build import collect_charts
from ampcore.history.storage import UnusableInputError, load_history
from ampcore.judge.metrics import METRICS, Metric
from tests.support import synthetic

TEST_LOSS = Metric("test_loss", "final test loss", "", relative=True, higher_is_worse=True,
                   default_threshold=0.10, calibration_step=0.005, test="relative threshold",
                   field="final_test_loss", digits=3)
START = datetime(2025, 5, 1, tzinfo=timezone.utc)


def _store(tmp_path, candidate_loss: float):
    store = tmp_path / "store"
    for index, loss in ((1, 0.3), (2, candidate_loss)):
        doc = synthetic.amp_session(np.random.default_rng(index), START + timedelta(hours=index),
                                    records={"bert-amp-bf16": {"final_test_loss": loss}})
        synthetic.write_run(store, index, doc)
    return store


def test_a_metric_is_one_row(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(METRICS, TEST_LOSS.name, TEST_LOSS)
    monkeypatch.chdir(tmp_path)  # no pyproject.toml: the rows' defaults
    store = _store(tmp_path, candidate_loss=0.45)
    assert main(["compare", str(store), "--json", "verdict.json"]) == 1
    text = capsys.readouterr().out
    assert "REGRESSION test_train[bert-amp-bf16]: test_loss +50.0 % (limit +10 %)" in text
    row = next(line for line in text.splitlines() if line.split()[:1] == ["test_loss"])
    assert row.split()[:6] == ["test_loss", "REGRESSION", "0.3", "0.45", "+50.0", "%"]
    assert main(["compare", str(store), "--verbose"]) == 1
    row = next(line for line in capsys.readouterr().out.splitlines()
               if line.split()[:2] == ["test_train[bert-amp-bf16]", "test_loss"])
    assert "relative threshold" in row
    data = json.loads((tmp_path / "verdict.json").read_text())
    judged = {(b["name"], m["metric"]): m for b in data["benchmarks"] for m in b["metrics"]}
    assert judged["test_train[bert-amp-bf16]", "test_loss"]["status"] == "regression"
    assert judged["test_train[bert-fp32]", "test_loss"]["status"] == "ok"
    assert data["benchmarks"][0]["thresholds"]["test_loss"] == 0.10

    # configurable like every other metric
    (tmp_path / "pyproject.toml").write_text("[tool.ampcore.compare]\ntest_loss = 0.6\n")
    assert main(["compare", str(store)]) == 0
    assert "test_loss" in capsys.readouterr().out

    runs, _ = load_history([store])
    chart = next(c for c in collect_charts(runs) if c.slug == "test_loss-bert")
    assert chart.title == "bert: final test loss" and len(chart.series) == 2
    noise = {n.name: n for n in calibrate(runs, GateConfig(), trials=0).benchmarks}
    assert noise["test_train[bert-amp-bf16]"].changes["test_loss"] == [pytest.approx(0.5)]


def test_thresholds_are_the_rows_defaults_plus_alpha():
    thresholds = Thresholds()
    assert list(thresholds.as_dict()) == ["alpha", *METRICS]
    assert all(thresholds[name] == m.default_threshold for name, m in METRICS.items())
    assert thresholds.replace(time=0.2)["time"] == 0.2 and thresholds["time"] == 0.05
    with pytest.raises(TypeError, match="no such metric: tim"):
        Thresholds(tim=0.1)


@pytest.mark.parametrize("literal", ["nan", "inf", "+inf"])
def test_thresholds_must_be_finite(tmp_path, literal):
    path = tmp_path / "pyproject.toml"
    path.write_text(f"[tool.ampcore.compare]\nmemory = {literal}\n")
    with pytest.raises(UnusableInputError, match=r"memory must be a finite number, got (nan|inf)"):
        load_config(path)
    with pytest.raises(UnusableInputError, match=r"#1: time must be a finite number, got nan"):
        parse_config({"thresholds": [{"match": "*", "time": math.nan}]})
    with pytest.raises(UnusableInputError, match=r"alpha must be a non-negative number, got -inf"):
        parse_config({"compare": {"alpha": -math.inf}})


def test_eager_limits_come_from_their_own_table_over_the_defaults():
    from ampcore.history.config import parse_config
    from ampcore.history.errors import UnusableInputError

    config = parse_config({"compare": {"time": 0.07, "eager": {"time": 0.5}}})
    eager, cpu = config.for_benchmark("k", "n", "eager"), config.for_benchmark("k", "n")
    assert (eager["time"], eager["speedup"], cpu["time"]) == (0.5, 0.35, 0.07)
    with pytest.raises(UnusableInputError, match=r"compare.eager\]: unknown key 'alpha'"):
        parse_config({"compare": {"eager": {"alpha": 0.1}}})
    with pytest.raises(UnusableInputError, match=r"compare.eager\] must be a table"):
        parse_config({"compare": {"eager": 3}})


def test_captured_steps_have_limits_of_their_own_over_the_defaults():
    from ampcore.history.config import CAPTURED, parse_config
    from ampcore.history.errors import UnusableInputError

    default = parse_config({})
    captured, cpu = default.for_benchmark("k", "n", CAPTURED), default.for_benchmark("k", "n")
    assert (captured["time"], captured["speedup"], cpu["time"]) == (0.02, 0.02, 0.05)
    config = parse_config({"compare": {"captured": {"time": 0.03}},
                           "thresholds": [{"match": "k", "time": 0.1}]})
    assert config.for_benchmark("x", "n", CAPTURED)["time"] == 0.03
    assert config.for_benchmark("k", "n", CAPTURED)["time"] == 0.1  # an override still wins
    with pytest.raises(UnusableInputError, match=r"compare.captured\] must be a table"):
        parse_config({"compare": {"captured": [1]}})
