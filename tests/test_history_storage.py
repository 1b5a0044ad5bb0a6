"""Reading pytest-benchmark storage: real saved runs, odd and broken files."""

import json
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from ampcore.history import environments, matching
from ampcore.history.storage import expand_paths, load_history, read_run, storage_roots
from tests.support import synthetic

DATA = Path(__file__).parent / "data" / "history"
H200 = DATA / "h200-smoke"  # 10 sessions of the suite, smoke profile, one H200, same code
CPU = DATA / "cpu-smoke"  # one session on a (busy) 2-core CPU


def test_reads_real_gpu_history_in_order():
    runs, problems = load_history([H200])
    assert problems == []
    assert len(runs) == 10
    assert [r.path.name[:4] for r in runs] == [f"{i:04d}" for i in range(1, 11)]
    first = runs[0]
    assert first.version.startswith("5.")
    assert first.environment["gpu"] == "NVIDIA H200"
    bench = first.benchmarks["benchmarks/test_amp.py::test_train[bert-amp-bf16]"]
    assert (bench.workload, bench.precision) == ("bert", "amp-bf16")
    assert len(bench.rounds) == 10 and bench.median == pytest.approx(np.median(bench.rounds))
    reference = matching.reference_benchmark(first, bench)
    assert reference.key == "benchmarks/test_amp.py::test_train[bert-fp32]"
    assert bench.record.peak_memory_bytes > 0 and bench.record.profile == "smoke"


def test_reads_real_cpu_run_and_its_environment():
    (run,), problems = load_history([CPU])
    assert problems == []
    fingerprint = environments.fingerprint(run)
    assert fingerprint["device_type"] == "cpu" and fingerprint["gpu"] is None
    assert "cpu" in fingerprint


def test_expand_paths_dirs_files_globs_and_urls(tmp_path):
    paths = synthetic.write_history(tmp_path / "store" / "machine", 3)
    files, problems = expand_paths([f"file://{tmp_path / 'store'}", paths[0],
                                    str(tmp_path / "store" / "*" / "0002_*.json")])
    assert files == paths and problems == []  # no repeats, order kept
    files, problems = expand_paths([tmp_path / "nothing", str(tmp_path / "*.nope")])
    assert files == [] and [p.message for p in problems] == ["no such file or directory",
                                                            "the pattern matches no file"]
    assert storage_roots([str(tmp_path / "store" / "*" / "*.json")]) == [(tmp_path / "store").resolve()]


@pytest.mark.parametrize("content, message", [
    (b"", "is empty"),
    (b'{"machine_info": {}, "benchmarks": [', "not valid JSON"),
    (b"\xff\xfe garbage", "not valid JSON"),
    (b"[1, 2]", "not a pytest-benchmark saved run"),
    (b'{"benchmarks": []}', "not a pytest-benchmark saved run"),
    (b'{"machine_info": {}, "benchmarks": []}', "no usable benchmark"),
])
def test_broken_files_are_named_and_skipped(tmp_path, content, message):
    path = tmp_path / "0001_broken.json"
    path.write_bytes(content)
    run, problems = read_run(path)
    assert run is None
    assert any(message in p.message and p.path == path for p in problems)


def test_truncated_file_beside_good_ones_does_not_stop_the_rest(tmp_path):
    paths = synthetic.write_history(tmp_path, 3)
    text = paths[1].read_text()
    paths[1].write_text(text[: len(text) // 2])
    runs, problems = load_history([tmp_path])
    assert [r.path for r in runs] == [paths[0], paths[2]]
    assert len(problems) == 1 and problems[0].path == paths[1]
    assert "truncated" in str(problems[0])


def test_other_version_missing_keys_and_bad_benchmarks_are_reported(tmp_path):
    rng = np.random.default_rng(0)
    doc = synthetic.amp_session(rng, datetime(2025, 1, 1, tzinfo=timezone.utc))
    doc["version"] = "6.0.0"  # a future major version
    del doc["datetime"]
    del doc["machine_info"]["ampcore"]
    del doc["benchmarks"][0]["extra_info"]
    del doc["benchmarks"][1]["stats"]["data"]
    doc["benchmarks"][2]["stats"] = {"median": "fast"}
    doc["benchmarks"][3]["stats"]["data"][0] = None
    path = tmp_path / "old.json"
    path.write_text(json.dumps(doc))
    run, problems = read_run(path)
    text = "\n".join(str(p) for p in problems)
    assert "pytest-benchmark 6.0.0" in text and "read anyway" in text
    assert "no valid 'datetime'" in text
    assert "no 'ampcore' environment" in text
    assert "test_train[bert-fp32]: no extra_info" in text
    assert "test_train[resnet18-fp32]: no numeric stats.median; benchmark skipped" in text
    assert "non-numeric" in text
    assert all(p.path == path for p in problems)
    names = [b.name for b in run.benchmarks.values()]
    assert "test_train[resnet18-fp32]" not in names and len(names) == 3
    assert run.benchmarks["benchmarks/test_amp.py::test_train[bert-amp-bf16]"].rounds is None


def test_reading_never_writes(tmp_path):
    synthetic.write_history(tmp_path, 2)
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.rglob("*")}
    load_history([tmp_path])
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in tmp_path.rglob("*")} == before
