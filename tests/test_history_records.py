"""Benchmark records read back from saved histories: every committed file still loads, the
verdicts on real GPU runs are those of the reader before records, and a record this code
cannot read is refused by name, never half-read."""

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from ampcore.core import registry
from ampcore.history.compare import compare
from ampcore.history.config import GateConfig
from ampcore.history.storage import NOT_A_RUN, load_history, read_run
from ampcore.judge.record import SCHEMA, SCHEMA_KEY, BenchmarkRecord
from tests.support import synthetic
from tests.support.runs import GPU_RUNS

ROOT = Path(__file__).parents[1]
# The trust sessions saved their Python bytecode count as 0 (the Python 3.12 settrace fault
# ampcore.measure.counters now avoids): refused by the integrity check, read by the test below.
TRUST = GPU_RUNS / "trust"
COMMITTED = sorted(p for p in [*GPU_RUNS.rglob("*.json"),
                               *(ROOT / "tests" / "data" / "history").rglob("*.json")]
                   if TRUST not in p.parents and p.name != "compare.json")  # a verdict, no run
SEED_1 = GPU_RUNS / "h200-seed-bert-base-random-init-1.json"
SEED_2 = GPU_RUNS / "h200-seed-bert-base-random-init-2.json"

# `python -m ampcore.history compare SEED_1 SEED_2` before benchmarks carried records (the
# extra_info reader of commit 4a21cca): status and change of every verdict.
VERDICTS_BEFORE_RECORDS = {
    "test_train[bert-fp32]": {"time": ("ok", -0.0054), "accuracy": ("n/a", None),
                              "memory": ("ok", -0.0168), "skipped_steps": ("ok", 0.0)},
    "test_train[bert-tf32]": {"time": ("ok", -0.0217), "speedup": ("ok", 0.0167),
                              "accuracy": ("n/a", None), "memory": ("ok", -0.0169),
                              "skipped_steps": ("ok", 0.0)},
    "test_train[bert-amp-fp16]": {"time": ("regression", 0.3508),
                                  "speedup": ("regression", -0.2637), "accuracy": ("n/a", None),
                                  "memory": ("ok", -0.0129), "skipped_steps": ("ok", 0.0)},
    "test_train[bert-amp-bf16]": {"time": ("ok", 0.0456), "speedup": ("ok", -0.0487),
                                  "accuracy": ("n/a", None), "memory": ("ok", -0.0127),
                                  "skipped_steps": ("ok", 0.0)},
}


def test_every_committed_history_reads_into_records():
    """Saved histories of the format before records (schema 1, no ampcore_schema) still load.
    `ampcore run --json` outputs (a 'runs' key) are not pytest-benchmark files: skipped with
    a note naming them (not an error: other JSON beside the runs is no damage)."""
    read = skipped = 0
    for path in COMMITTED:
        run, problems = read_run(path)
        if run is None and json.loads(path.read_text()).get("machine_info", {}).get(
                "ampcore", {}).get("incomplete"):  # a session cut short: skipped, never judged
            assert [p.severity for p in problems] == ["error"], path
            assert "interrupted session: marked incomplete" in problems[0].message, path
            continue
        if run is None:
            assert "runs" in json.loads(path.read_text())
            assert [(p.severity, p.message) for p in problems] == [("note", NOT_A_RUN)]
            skipped += 1
            continue
        read += 1
        assert not [p for p in problems if p.severity == "error"], path
        for bench in run.benchmarks.values():
            record = bench.record
            assert record is not None and 1 <= record.schema <= SCHEMA, (path, bench.key)
            # a model family's name (hf-text:...) reads as its entry without being registered
            assert registry.WORKLOADS.get(record.workload) is not None and record.precision, (
                path, bench.key)
            assert bench.workload == record.workload and bench.precision == record.precision
    assert read >= 19 and skipped >= 21  # 8 GPU suite files + 11 test histories; 21 run outputs


def test_real_gpu_pair_gives_the_verdicts_of_the_reader_before_records():
    runs, problems = load_history([SEED_1, SEED_2])
    assert not [p for p in problems if p.severity == "error"]
    baseline, candidate = runs
    comparison = compare([baseline], candidate, GateConfig())
    assert not comparison.env_differences and not comparison.measured_differences
    before = {m for metrics in VERDICTS_BEFORE_RECORDS.values() for m in metrics}
    found = {v.name: {m.metric: (m.status, None if m.change is None else round(m.change, 4))
                      for m in v.metrics if m.metric in before} for v in comparison.verdicts}
    assert found == VERDICTS_BEFORE_RECORDS
    # Metrics these files predate (the step decomposition) are not available, never judged.
    assert {m.status for v in comparison.verdicts for m in v.metrics
            if m.metric not in before} == {"n/a"}
    assert [v.name for v in comparison.regressions] == ["test_train[bert-amp-fp16]"]


def _session(path: Path, **changes) -> Path:
    doc = synthetic.amp_session(np.random.default_rng(0), datetime(2025, 1, 1, tzinfo=timezone.utc))
    for index, extra in changes.items():
        doc["benchmarks"][int(index[1:])]["extra_info"].update(extra)
    path.write_text(json.dumps(doc))
    return path


def test_record_of_a_newer_schema_is_refused_by_name(tmp_path):
    path = _session(tmp_path / "future.json", b1={SCHEMA_KEY: 99})
    run, problems = read_run(path)
    (problem,) = [p for p in problems if p.severity == "error"]
    assert problem.path == path
    assert "test_train[bert-amp-bf16]" in problem.message and "99" in problem.message
    assert "benchmark skipped" in problem.message
    assert sorted(b.name for b in run.benchmarks.values()) == [
        "test_train[bert-fp32]", "test_train[resnet18-amp-bf16]", "test_train[resnet18-fp32]"]


def test_malformed_records_are_skipped_never_half_read(tmp_path):
    path = _session(tmp_path / "bad.json", b0={"workload": 7}, b2={SCHEMA_KEY: "two"},
                    b3={"final_accuracy": "high"})
    run, problems = read_run(path)
    errors = sorted(p.message for p in problems if p.severity == "error")
    assert errors == [
        f"test_train[bert-fp32]: extra_info has no 'workload' string (schema {SCHEMA}); "
        "benchmark skipped",
        # a figure a metric needs that is no number is never read as "not recorded"
        "test_train[resnet18-amp-bf16]: final_accuracy is 'high', not a finite number; "
        "benchmark skipped",
        "test_train[resnet18-fp32]: extra_info['ampcore_schema'] is 'two', not a schema "
        "version; benchmark skipped"]
    assert not [k for k in run.benchmarks if "resnet18-amp" in k]


def test_schema_1_reads_like_the_record_it_was_written_from(tmp_path):
    path = _session(tmp_path / "now.json")
    doc = json.loads(path.read_text())
    for bench in doc["benchmarks"]:
        del bench["extra_info"][SCHEMA_KEY]  # as the suite wrote before records existed
    old = tmp_path / "old.json"
    old.write_text(json.dumps(doc))
    (new_run, _), (old_run, _) = read_run(path), read_run(old)
    for key, bench in new_run.benchmarks.items():
        assert old_run.benchmarks[key].record.schema == 1
        assert old_run.benchmarks[key].record == BenchmarkRecord(
            **{**vars(bench.record), "schema": 1})


@pytest.mark.parametrize("extra, message", [
    (None, "no extra_info; only time can be compared"),
    ({}, "an empty extra_info (not an ampcore run?); only time can be compared"),
])
def test_benchmark_without_record_is_timed_only(tmp_path, extra, message):
    """An empty extra_info beside benchmarks with records is an interrupted session
    (tests/test_history_sessions.py); in a run where no benchmark has one, it is timed only."""
    path = _session(tmp_path / "plain.json")
    doc = json.loads(path.read_text())
    if extra is None:
        del doc["benchmarks"][0]["extra_info"]
    else:
        for bench in doc["benchmarks"][1:]:
            del bench["extra_info"]
        doc["benchmarks"][0]["extra_info"] = extra
    path.write_text(json.dumps(doc))
    run, problems = read_run(path)
    bench = run.benchmarks[doc["benchmarks"][0]["fullname"]]
    assert bench.record is None and bench.workload is None
    assert [p.message for p in problems][0] == f"test_train[bert-fp32]: {message}"


def test_trust_sessions_are_refused_only_for_their_zero_bytecode_count():
    files = sorted(TRUST.rglob("*.json"))
    assert len(files) >= 14
    for path in files:
        run, problems = read_run(path)
        errors = [p.message for p in problems if p.severity == "error"]
        assert errors and all("python_ops_per_step is 0" in m or "no usable benchmark" in m
                              for m in errors), (path, errors)
