"""Limits from measured noise: ``ampcore calibrate --write`` sets per-step-mode limits and the
data behind them in pyproject.toml, refuses with too few runs (or too few stable ones: an
unstable run is left out of the time-like limits), and ``compare`` refuses a limit
below the measured noise and names a GPU other than the calibrated one."""

import json
import sys
import tomllib
from datetime import datetime, timezone

import numpy as np
import pytest

from ampcore.cli import main
from ampcore.history import limits
from ampcore.history.unstable import unstable_benchmarks
from ampcore.history.config import GateConfig, load_config
from ampcore.history.errors import UnusableInputError
from ampcore.history.storage import load_history
from ampcore.history.verdicts import TIME_LIKE
from tests.support import synthetic

CAPTURED_ENV = synthetic.environment(cuda_graphs=True)
USER_TEXT = '''[project]
name = "theirs"  # a comment of theirs

[tool.ampcore.compare]
memory = 0.05
'''


def history(tmp_path, runs, noise=0.002, env=CAPTURED_ENV):
    store = tmp_path / ".benchmarks" / "m"
    synthetic.write_history(store, runs, env=env, noise=noise)
    return store.parent


def test_ten_captured_runs_give_captured_limits_and_keep_the_users_file(tmp_path, capsys):
    store = history(tmp_path, 10)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(USER_TEXT)
    assert main(["calibrate", str(store), "--trials", "0", "--write", str(pyproject)]) == 0
    text = pyproject.read_text()
    assert text.startswith(USER_TEXT.split("\n\n")[0])  # their lines, comment included
    written = tomllib.loads(text)["tool"]["ampcore"]
    assert written["compare"]["memory"] == 0.05  # their limit untouched
    captured, record = written["compare"]["captured"], written["calibration"]["captured"]
    assert 0 < captured["time"] <= 0.05 and {"time", "speedup", "memory"} <= set(captured)
    assert (record["runs"], record["pairs"], record["gpu"]) == (10, 45, "NVIDIA H200")
    assert 0 < record["noise"]["time"] < captured["time"]
    assert "wrote captured limits" in capsys.readouterr().err
    config = load_config(pyproject)  # what compare then reads
    assert config.captured["time"] == captured["time"]


def test_too_few_runs_write_nothing_and_say_why(tmp_path, capsys):
    store = history(tmp_path, 9)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(USER_TEXT)
    assert main(["calibrate", str(store), "--trials", "0", "--write", str(pyproject)]) == 3
    err = capsys.readouterr().err
    assert "captured: 9 runs of one environment; limits need at least 10" in err
    assert "no limits written" in err and pyproject.read_text() == USER_TEXT


def test_modes_are_measured_apart(tmp_path):
    history(tmp_path / "a", 10)
    history(tmp_path / "b", 10, env=synthetic.environment(cuda_graphs=False), noise=0.05)
    runs, _ = load_history([tmp_path / "a" / ".benchmarks", tmp_path / "b" / ".benchmarks"])
    measured, notes = limits.measure(runs)
    by_mode = {m.mode: m for m in measured}
    assert set(by_mode) == {"captured", "eager"} and not notes
    assert by_mode["eager"].limits()["time"] > by_mode["captured"].limits()["time"]


def test_a_limit_below_the_measured_noise_is_refused_with_the_figure(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[tool.ampcore.compare.captured]\ntime = 0.001\n"
                         "[tool.ampcore.calibration.captured]\npairs = 45\ngpu = \"NVIDIA H200\"\n"
                         "noise = {time = 0.004}\n")
    with pytest.raises(UnusableInputError, match=r"compare.captured\] time = 0.001 is below the "
                       r"A/A noise measured for it, 0.004 \(99th percentile over 45 pairs"):
        load_config(pyproject)
    pyproject.write_text(pyproject.read_text().replace("time = 0.001", "time = 0.02"))
    assert load_config(pyproject).captured["time"] == 0.02  # negative control


def test_compare_names_a_gpu_other_than_the_calibrated_one(tmp_path, monkeypatch, capsys):
    store = history(tmp_path, 2, env=synthetic.environment(gpu="NVIDIA A100", cuda_graphs=True))
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text("[tool.ampcore.calibration.captured]\npairs = 45\n"
                         "gpu = \"NVIDIA H200\"\nnoise = {time = 0.004}\n")
    monkeypatch.chdir(tmp_path)
    main(["compare", str(store), "--json", "-"])
    notes = json.loads(capsys.readouterr().out)["notes"]
    assert any("captured limits were calibrated on NVIDIA H200, this run ran on NVIDIA A100"
               in n for n in notes)


# --- unstable runs are left out of the time-like limits ----------------------------------------

def unstable_run(directory, when=datetime(2025, 1, 5, 18, 0, tzinfo=timezone.utc)):
    """One run of the history's benchmarks with ~30 % round CV (above the default stability
    limit, 25 %) and 25 % slower: noise compare would call unreliable. Saved in a storage of
    its own, so that it falls between the 5th and 6th daily run (by date across storages)."""
    doc = synthetic.amp_session(np.random.default_rng(7), when, env=CAPTURED_ENV, noise=0.3,
                                slowdown={"bert-fp32": 1.25, "bert-amp-bf16": 1.25,
                                          "resnet18-fp32": 1.25, "resnet18-amp-bf16": 1.25})
    return synthetic.write_run(directory / ".benchmarks" / "u", 1, doc)


def time_like(noise):
    return {m: v for m, (v, _) in noise._derived().items() if m in TIME_LIKE}


def test_an_unstable_run_is_left_out_of_the_time_like_limits(tmp_path):
    clean = history(tmp_path / "clean", 10)
    mixed = history(tmp_path / "mixed", 10)
    noisy = unstable_run(tmp_path / "mixed")
    runs, problems = load_history([mixed])
    assert problems == [] and len(runs) == 11 and runs[5].path == noisy  # in the middle
    assert all(bad for bad in unstable_benchmarks([runs[5]], GateConfig()))
    measured, notes = limits.measure(runs, GateConfig())
    (noise,) = measured
    assert [r.file for r in noise.left_out] == [noisy.name]
    assert (noise.runs, noise.pairs, noise.time_pairs) == (11, 55, 45)
    assert any(noisy.name in n and "1 run(s) left out of the time-like limits" in n
               and "round CV" in n for n in notes)
    # the same history without the unstable run: the same time-like limits
    (alone,), _ = limits.measure(load_history([clean])[0], GateConfig())
    assert time_like(noise) == time_like(alone) and "time" in time_like(noise)
    # negative control: every pair counted, as before, gives a wider time limit
    old = limits._pooled("captured", runs)
    assert time_like(old)["time"] > time_like(noise)["time"]
    assert old.noise()["time"] > 10 * noise.noise()["time"]


def test_write_names_the_unstable_run_it_left_out(tmp_path, capsys):
    store = history(tmp_path, 10)
    noisy = unstable_run(tmp_path)
    pyproject = tmp_path / "pyproject.toml"
    assert main(["calibrate", str(store), "--trials", "0", "--write", str(pyproject)]) == 0
    err = capsys.readouterr().err
    assert "captured: 1 run(s) left out of the time-like limits" in err and noisy.name in err
    record = tomllib.loads(pyproject.read_text())["tool"]["ampcore"]["calibration"]["captured"]
    assert (record["runs"], record["pairs"], record["time_pairs"]) == (11, 55, 45)
    assert record["left_out"] == [noisy.name]


def test_too_few_stable_runs_write_nothing_and_say_why(tmp_path, capsys):
    store = history(tmp_path, 9)
    noisy = unstable_run(tmp_path)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(USER_TEXT)
    assert main(["calibrate", str(store), "--trials", "0", "--write", str(pyproject)]) == 3
    err = capsys.readouterr().err
    assert noisy.name in err and ("captured: 10 runs of one environment, 1 of them unstable "
                                  "(above): 9 stable runs left; time-like limits need at least "
                                  "10") in err
    assert "no limits written" in err and pyproject.read_text() == USER_TEXT
