"""Hostile and odd history: clocks that skew, thresholds that switch the gate off, impossible
figures, injected Markdown, unbounded options and stray JSON in a storage. Each ends in a
named refusal or a warning, never in a wrong verdict."""

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ampcore.cli import main
from ampcore.history.storage import load_history
from tests.support import synthetic

AMP = 1  # index of test_train[bert-amp-bf16] in a small_history session
SLOWER = {"bert-fp32": 3.0, "bert-amp-bf16": 3.0}
FUTURE = "2099-01-01T00:00:00+00:00"


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    """cwd is tmp_path (no pyproject.toml); the history goes to tmp_path/store."""
    monkeypatch.chdir(tmp_path)
    return tmp_path / "store"


def run(capsys, *argv) -> tuple[int, str, str]:
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def set_key(key, value):
    def mutate(doc):
        doc[key] = value
    return mutate


def set_record(**values):
    def mutate(doc):
        doc["benchmarks"][AMP]["extra_info"].update(values)
    return mutate


# --- case 1: clock skew ------------------------------------------------------------------------

def test_a_future_date_does_not_make_a_3x_slower_run_the_baseline(store, capsys):
    paths = synthetic.small_history(store, 4, step_at=3, step=SLOWER)
    synthetic.edit_run(paths[2], set_key("datetime", FUTURE))
    status, out, err = run(capsys, "compare", store, "--json", "v.json")
    verdict = json.loads(Path("v.json").read_text())
    assert Path(verdict["candidate"]["path"]).name == paths[3].name
    assert status == 1 and "REGRESSION" in out and "improved" not in out
    assert f"{paths[2]}: 'datetime' {FUTURE} is in the future" in err


def test_a_date_earlier_than_the_run_before_is_a_warning_and_the_number_wins(store):
    paths = synthetic.small_history(store, 3)
    synthetic.edit_run(paths[2], set_key("datetime", "2024-06-01T00:00:00+00:00"))
    runs, problems = load_history([store])
    assert [r.path for r in runs] == paths
    (warning,) = [p for p in problems if p.path == paths[2]]
    assert warning.severity == "warning" and f"numbered after {paths[1].name}" in warning.message


def test_a_newest_run_without_a_date_fails_the_gate(store, capsys):
    paths = synthetic.small_history(store, 3)
    synthetic.edit_run(paths[2], lambda doc: doc.pop("datetime"))
    status, out, err = run(capsys, "compare", store)
    assert status == 3 and out == ""
    assert "newest saved run cannot be used" in err and f"{paths[2]}: no valid 'datetime'" in err
    assert "ordered by file name" not in err


def test_storages_are_interleaved_by_date_each_in_number_order(tmp_path):
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    a = synthetic.small_history(tmp_path / "a", 2, start=start)
    b = synthetic.small_history(tmp_path / "b", 2, start=start + timedelta(hours=12))
    synthetic.edit_run(a[1], set_key("datetime", FUTURE))  # skewed: placed at a[0]'s date
    runs, problems = load_history([tmp_path / "a", tmp_path / "b"])
    assert [r.path for r in runs] == [a[0], a[1], b[0], b[1]]
    assert [p.path for p in problems] == [a[1]]


# --- case 6: thresholds that switch the gate off -----------------------------------------------

@pytest.mark.parametrize("toml, named", [
    ("[tool.ampcore.compare]\ntime = 1e308\n", "time = 1e+308 is outside its range [0, 1]"),
    ("[tool.ampcore.compare]\nalpha = 1e-300\n", "alpha = 1e-300 is outside its range "
                                                 "[1e-06, 0.5]"),
    ("[tool.ampcore.compare]\naccuracy = 0.9\n", "accuracy = 0.9 is outside its range [0, 0.25]"),
    ("[tool.ampcore.compare.eager]\nspeedup = 3.0\n", "speedup = 3.0 is outside its range"),
    ("[[tool.ampcore.thresholds]]\nmatch = \"*\"\nloss_scale_config = 5\n",
     "#1: loss_scale_config = 5 is outside its range [0, 4]"),
], ids=["time-1e308", "alpha-1e-300", "accuracy-0.9", "eager-speedup-3", "override-config-5"])
def test_thresholds_that_switch_the_gate_off_are_refused(store, tmp_path, capsys, toml, named):
    synthetic.small_history(store, 3, step_at=2, step=SLOWER)
    (tmp_path / "pyproject.toml").write_text(toml)
    status, out, err = run(capsys, "compare", store)
    assert status == 3 and named in err and str(tmp_path / "pyproject.toml") in err
    assert "improved" not in out and "no regression" not in out


def test_alpha_option_outside_its_range_is_a_usage_error(store, capsys):
    synthetic.small_history(store, 2)
    status, _, err = run(capsys, "compare", store, "--alpha", "1e-300")
    assert status == 2 and "--alpha must be within [1e-06, 0.5], got 1e-300" in err


def test_a_pyproject_found_in_a_parent_directory_is_named_in_every_output(tmp_path, monkeypatch,
                                                                           capsys):
    synthetic.small_history(tmp_path / "store", 3)
    (tmp_path / "pyproject.toml").write_text("[tool.ampcore.compare]\ntime = 0.5\n")
    work = tmp_path / "deep" / "below"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    found = f"{tmp_path / 'pyproject.toml'} (found above the working directory {work})"
    status, out, _ = run(capsys, "compare", tmp_path / "store", "--markdown", "s.md",
                         "--json", "v.json")
    assert status == 0 and f"thresholds: {found}" in out
    assert "found above the working directory" in Path("s.md").read_text()
    verdict = json.loads(Path("v.json").read_text())
    assert verdict["thresholds_source"] == str(tmp_path / "pyproject.toml")
    assert verdict["thresholds_origin"] == f"found above the working directory {work}"
    status, out, _ = run(capsys, "calibrate", tmp_path / "store", "--trials", "0")
    assert status == 0 and f"thresholds: {found}" in out


def test_calibrate_never_suggests_a_threshold_compare_would_refuse():
    from ampcore.history.calibrate import BenchmarkNoise, Calibration
    from ampcore.history.calibration_output import suggestions_toml
    from ampcore.history.config import Thresholds

    noisy = BenchmarkNoise("k[x]", "x", suggested={"time": 1.5, "memory": 0.2})
    text = suggestions_toml(Calibration(3, 2, "pairs", Thresholds(), [noisy]))
    assert "memory = 0.2" in text and "time =" not in text
    assert "# time: 1.5 needed, above its maximum 1: too noisy to gate on" in text


# --- case 7: impossible figures ----------------------------------------------------------------

@pytest.mark.parametrize("mutate, why", [
    (set_record(final_accuracy=2.0), "final_accuracy is 2: an accuracy must be within [0, 1]"),
    (set_record(final_accuracy=float("nan")), "final_accuracy is nan, not a finite number"),
    (set_record(train_time_s=-3.0), "train_time_s is -3: a time must be positive"),
    (lambda doc: doc["benchmarks"][AMP]["stats"].update(
        data=[v / 1000 for v in doc["benchmarks"][AMP]["stats"]["data"]]),
     "the median of stats.data"),
], ids=["accuracy-2", "accuracy-nan", "negative-train-time", "rounds-1000x-smaller"])
def test_impossible_figures_are_skipped_never_judged(store, capsys, mutate, why):
    paths = synthetic.small_history(store, 3)
    synthetic.edit_run(paths[-1], mutate)
    status, out, err = run(capsys, "compare", store)
    assert f"{paths[-1]}: test_train[bert-amp-bf16]: {why}" in err and "benchmark skipped" in err
    assert "improved" not in out  # neither judged nor an accuracy row "not recorded":
    assert not [line for line in out.splitlines() if line.startswith("test_train[bert-amp")]
    assert status == 1 and "missing from the candidate" in out


def test_calibrate_does_not_learn_from_an_impossible_accuracy(store, capsys):
    paths = synthetic.small_history(store, 5)
    synthetic.edit_run(paths[2], set_record(final_accuracy=2.0))
    status, out, err = run(capsys, "calibrate", store, "--trials", "0", "--json", "c.json")
    assert status == 0 and "final_accuracy is 2" in err and "accuracy = " not in out
    changes = [b["changes"].get("accuracy", []) for b in json.loads(Path("c.json").read_text())
               ["benchmarks"]]
    assert all(abs(c) < 0.01 for per in changes for c in per)


# --- case 10: injected Markdown, unbounded options, stray JSON ---------------------------------

def test_names_with_newlines_and_pipes_cannot_inject_markdown(store, capsys):
    paths = synthetic.small_history(store, 2)
    name = "test_train[x|y]\n## injected heading\n| a | b |"

    def rename(doc):
        doc["benchmarks"][AMP]["name"] = doc["benchmarks"][AMP]["fullname"] = name

    for path in paths:
        synthetic.edit_run(path, rename)
    status, out, _ = run(capsys, "compare", store, "--markdown", "-")
    assert status == 0
    assert not [line for line in out.splitlines() if line.startswith(("## injected", "| a"))]
    rows = [line for line in out.splitlines() if "injected" in line and line.startswith("|")]
    for row in rows:
        assert "x\\|y" in row and "\\n## injected heading\\n\\| a \\| b \\|" in row
    # the header's columns, nothing more: the compact table's 7, the evidence table's 9
    assert {row.replace("\\|", "").count("|") - 1 for row in rows} == {7, 9}


@pytest.mark.parametrize("argv, message", [
    (["--trials", "100000000"], "--trials must be within [0, 10000], got 100000000"),
    (["--trials", "-1"], "--trials must be within [0, 10000], got -1"),
    (["--slowdown", "2"], "--slowdown must be between 0 and 1 (exclusive), got 2"),
    (["--seed", "-1"], "--seed must be within [0, 2**63), got -1"),
], ids=["trials-huge", "trials-negative", "slowdown-2", "seed-negative"])
def test_calibrate_options_are_bounded_and_named(store, capsys, argv, message):
    synthetic.small_history(store, 2)
    status, out, err = run(capsys, "calibrate", store, *argv)
    assert status == 2 and message in err and out == ""


def test_a_verdict_saved_into_the_storage_is_a_note_not_an_error(store, tmp_path, capsys):
    synthetic.small_history(store / "machine", 3)
    assert run(capsys, "compare", store, "--json", "verdict.json")[0] == 0
    (store / "verdict.json").write_bytes(Path("verdict.json").read_bytes())  # copied in later
    (store / "machine" / "verdict.json").write_bytes(Path("verdict.json").read_bytes())
    status, out, err = run(capsys, "compare", store)
    assert status == 0 and "no regression" in out
    assert "error" not in err
    assert err.count("is not a pytest-benchmark saved run") == 2 and "note:" in err
