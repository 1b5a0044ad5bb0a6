"""Runs trained in fresh processes (``--processes N``): the merge takes each round's median over
the processes, so one slow process moves nothing; a worker's error reaches the parent with its
message; the suite saves the merged rounds as the benchmark's."""

import dataclasses
import json

import pytest

from ampcore import cli
from ampcore.core.errors import AmpcoreError, DataError, UnsupportedPrecisionError, UsageError
from ampcore.launch.fresh import (FreshProcessError, _failure, merge_process_results,
                                  run_in_fresh_processes)
from ampcore.launch.protocol import ERROR_FILE, read_error_file, write_error_file, write_spec
from ampcore.train.spec import RunSpec
from tests.test_suite import make_run, suite  # noqa: F401  (the fixture)

pytest_plugins = ["pytester"]

ROUNDS = [1.00, 1.02, 0.98, 1.01, 0.99]
COUNTS = {"aten_ops_per_step": 500, "syncs_per_step": 0}


def process_run(scale: float, host: float = 0.02, counts: dict = COUNTS, accuracy: float = 0.9):
    run = make_run("amp-bf16", rounds=[scale * r for r in ROUNDS], accuracy=accuracy)
    probe = {"host_step_s": [scale * host] * 4, "eager_step_s": [scale * 0.04] * 4,
             "host_step_median_s": scale * host, "eager_step_median_s": scale * 0.04, **counts}
    return dataclasses.replace(run, step_probe=probe, heldout_accuracy=accuracy)


def test_each_round_is_the_median_over_processes_so_a_slow_process_moves_nothing():
    runs = [process_run(1.0), process_run(1.25), process_run(1.0)]  # the second: a slow host
    merged = merge_process_results(runs)
    assert merged.round_times_s == pytest.approx(ROUNDS)
    assert merged.samples_per_round == runs[0].samples_per_round
    assert merged.step_probe["host_step_median_s"] == pytest.approx(0.02)
    assert merged.step_probe["eager_step_s"] == pytest.approx([0.04] * 4)
    assert merged.config["processes"] == 3 and merged.merged.how == "fresh"
    assert len(merged.merged.parts) == 3 and "processes" not in merged.details
    assert merged.merged.parts[1].round_times_s == pytest.approx([1.25 * r for r in ROUNDS])
    assert [p.step_time_s for p in merged.merged.parts] == pytest.approx([1.0, 1.25, 1.0])
    assert merged.merged.consistent is True


def test_without_the_merge_the_slow_process_would_show():
    """Negative control: one process's rounds carry its host's offset."""
    slow = process_run(1.25)
    assert slow.round_times_s != pytest.approx(ROUNDS)
    two = merge_process_results([process_run(1.0), slow])  # the median of two: their mean
    assert two.round_times_s == pytest.approx([1.125 * r for r in ROUNDS])


def test_counters_that_differ_between_processes_are_flagged():
    runs = [process_run(1.0), process_run(1.0, counts={**COUNTS, "syncs_per_step": 1})]
    merged = merge_process_results(runs)
    assert merged.merged.consistent is False
    assert merged.step_probe["syncs_per_step"] == 0  # the first process's


def test_processes_that_trained_different_plans_are_not_merged():
    other = dataclasses.replace(process_run(1.0), samples_per_round=[32] * len(ROUNDS))
    with pytest.raises(AmpcoreError, match="different plans"):
        merge_process_results([process_run(1.0), other])


def test_a_worker_error_file_becomes_the_parents_error(tmp_path):
    # The worker writes the launchers' one error-file format (ampcore.launch.protocol).
    error = tmp_path / ERROR_FILE
    write_error_file(error, UsageError("no imdb/ under /x"))
    exc = _failure("fresh process 1 of 2 for bert/fp32", 2, error, "")
    assert isinstance(exc, FreshProcessError) and exc.exit_code == 2
    assert str(exc) == "fresh process 1 of 2 for bert/fp32 failed: UsageError: no imdb/ under /x"
    write_error_file(error, UnsupportedPrecisionError("fp8", "cuda", "shape 7x3"))
    exc = _failure("fresh process 1 of 2 for bert/fp8", 1, error, "")
    assert isinstance(exc, UnsupportedPrecisionError) and exc.reason == "shape 7x3"
    assert (exc.precision, exc.device) == ("fp8", "cuda")
    # no error file (a crash), or one cut short: the output's tail says what happened
    exc = _failure("fresh process 2 of 2", -9, tmp_path / "none.json", "line 1\nKilled\n")
    assert "exited with code -9" in str(exc) and str(exc).endswith("Killed")
    error.write_text('{"message": {"mess')
    assert "exited with code 1; its output ended:\n(no output)" in str(
        _failure("fresh process 1 of 1", 1, error, ""))


def test_the_worker_records_its_error_for_the_parent(tmp_path, monkeypatch):
    from ampcore.launch import fresh

    def fail(spec, progress):
        raise DataError("no MNIST under /x")

    monkeypatch.setattr(fresh, "run_experiment", fail)
    write_spec(RunSpec("resnet18", "fp32", "seed", device="cpu"), tmp_path)
    assert fresh.main(["--out", str(tmp_path)]) == 1
    failure = read_error_file(tmp_path / ERROR_FILE)
    assert (failure.error, failure.message, failure.exit_code) == (
        "DataError", "no MNIST under /x", 1)
    assert "Traceback" in failure.traceback and failure.unsupported is None


def test_a_bad_process_count_is_a_usage_error():
    spec = RunSpec("resnet18", "fp32", "smoke", device="cpu")
    with pytest.raises(AmpcoreError, match="--processes must be a whole number, at least 1"):
        run_in_fresh_processes(spec, 0)


def test_processes_and_ddp_together_exit_2(capsys):
    assert cli.main(["run", "--workload", "resnet18", "--precision", "fp32", "--device", "cpu",
                     "--profile", "smoke", "--nproc", "2", "--processes", "2"]) == 2
    assert "a DDP run (--nproc 2) is not repeated: give one" in capsys.readouterr().err


@pytest.mark.slow
def test_a_workers_failure_names_the_process_and_its_error(tmp_path):
    spec = RunSpec("resnet18", "fp32", "seed", device="cpu", data_dir=tmp_path / "empty")
    with pytest.raises(FreshProcessError, match=r"fresh process 1 of 2 for resnet18/fp32 "
                                                r"failed: DataError: .*mnist"):
        run_in_fresh_processes(spec, 2)


@pytest.mark.slow
def test_the_suite_saves_the_merged_rounds_of_fresh_processes(suite, tmp_path):  # noqa: F811
    storage = tmp_path / "storage"
    result = suite.runpytest_subprocess(
        "-p", "no:cacheprovider", "--amp-profile", "smoke", "--amp-workloads", "resnet18",
        "--amp-precisions", "fp32", "-k", "train", "--amp-processes", "2",
        "--benchmark-autosave", f"--benchmark-storage=file://{storage}")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()
    (path,) = storage.rglob("*.json")
    (bench,) = json.loads(path.read_text())["benchmarks"]
    extra = bench["extra_info"]
    assert extra["config"]["processes"] == 2
    assert bench["stats"]["rounds"] == len(extra["samples_per_round"])  # the merged rounds
    assert bench["stats"]["median"] > 0
    result.stdout.fnmatch_lines(["*Each run trained in 2 fresh processes*"])


def test_compare_shows_a_change_of_fresh_processes_and_still_compares(tmp_path, monkeypatch,
                                                                      capsys):
    import numpy as np
    from datetime import datetime, timezone

    from tests.support import synthetic

    store, when = tmp_path / "store" / "machine", datetime(2026, 12, 2, 9, tzinfo=timezone.utc)
    for index, processes in ((1, None), (2, 3)):
        config = {"epochs": 1, "batch_size": 64, **({"processes": processes} if processes else {})}
        doc = synthetic.amp_session(np.random.default_rng(index), when.replace(hour=8 + index),
                                    commit=f"{index:02x}" * 20, records={"*": {"config": config}})
        synthetic.write_run(store, index, doc)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "verdict.json"
    status = cli.main(["compare", str(tmp_path / "store"), "--json", str(out)])
    data, text = json.loads(out.read_text()), capsys.readouterr().out
    assert status == 0 and data["verdict"] == "ok" and data["measured_differences"] == []
    assert "test_train[bert-amp-bf16]: fresh processes 1 -> 3" in data["method_changes"]
    assert "timing method changed (information, not a refusal): " in text
