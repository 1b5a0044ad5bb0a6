"""What may be compared: benchmarks that measured the same work (``matching.measured_key``),
the fp32 reference found from records, injected runs never as a baseline, and report series
split by what was measured."""

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from ampcore.history import environments, matching
from ampcore.history.__main__ import main
from ampcore.history.report.build import collect_charts
from ampcore.history.speedup import run_speedup
from ampcore.history.storage import load_history, read_run
from tests.support import synthetic
from tests.support.runs import GPU_RUNS

START = datetime(2025, 6, 1, tzinfo=timezone.utc)
BERT_AMP = "test_train[bert-amp-bf16]"


def save(store: Path, index: int, **session) -> Path:
    doc = synthetic.amp_session(np.random.default_rng(index), START + timedelta(hours=index),
                                commit=f"{index:02x}" * 20, **session)
    return synthetic.write_run(store, index, doc)


def compare_json(tmp_path: Path, monkeypatch, *args) -> tuple[int, dict]:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / f"v{len(list(tmp_path.glob('v*.json')))}.json"
    status = main(["compare", *map(str, args), "--json", str(out)])
    return status, json.loads(out.read_text())


def test_other_work_is_not_compared_and_the_fields_are_named(tmp_path, monkeypatch, capsys):
    store = tmp_path / "store"
    first = save(store, 1)
    save(store, 2, records={"bert-amp-bf16": {"config": {"epochs": 1, "batch_size": 32}}})
    status, data = compare_json(tmp_path, monkeypatch, store)
    assert status == 0
    assert data["measured_differences"] == [f"{BERT_AMP} in {first.name}: batch_size 64 vs 32"]
    assert BERT_AMP not in [b["name"] for b in data["benchmarks"]]
    assert len(data["benchmarks"]) == 3
    assert "batch_size 64 vs 32" in capsys.readouterr().out


def test_nothing_measured_alike_exits_4(tmp_path, monkeypatch, capsys):
    store = tmp_path / "store"
    save(store, 1)
    save(store, 2, records={"*": {"profile": "smoke"}})
    status, data = compare_json(tmp_path, monkeypatch, store)
    assert status == 4 and data["benchmarks"] == [] and len(data["measured_differences"]) == 4
    assert data["verdict"] == "refused"
    assert "profile 'seed' vs 'smoke'" in data["measured_differences"][0]
    assert "every shared benchmark measured other work" in capsys.readouterr().out


def test_one_checkpoint_in_two_directories_is_one_model(tmp_path, monkeypatch):
    def model(path: str) -> dict:
        return {"*": {"config": {"epochs": 1, "batch_size": 64, "model": path}}}

    store = tmp_path / "store"
    save(store, 1, records=model(".gpu/models/bert-base-cased"))
    save(store, 2, records=model("/cache/.gpu2/models/bert-base-cased/"))
    save(store, 3, records=model(".gpu/models/all-MiniLM-L6-v2"))
    files = sorted(store.glob("*.json"))
    status, data = compare_json(tmp_path, monkeypatch, files[0], files[1])
    assert status == 0 and data["measured_differences"] == [] and len(data["benchmarks"]) == 4
    status, data = compare_json(tmp_path, monkeypatch, files[1], files[2])
    assert status == 4
    assert data["measured_differences"][0].endswith(
        "model 'bert-base-cased' vs 'all-MiniLM-L6-v2'")


def test_fp32_reference_is_found_from_records_not_the_id(tmp_path):
    rng = np.random.default_rng(0)

    def entry(test: str, precision: str, world_size: int, median: float, param: str) -> dict:
        rounds = list(median * (1 + 0.01 * rng.standard_normal(10)))
        extra = synthetic.extra_info("bert", precision, rounds, world_size=world_size)
        bench = synthetic.benchmark("bert", precision, rounds, extra, test=test)
        bench["name"], bench["fullname"] = f"{test}[{param}]", f"b.py::{test}[{param}]"
        return bench

    doc = synthetic.run_document([
        entry("test_train", "fp32", 1, 0.8, "one"), entry("test_train", "amp-bf16", 1, 0.4, "two"),
        entry("test_ddp", "fp32", 2, 0.5, "three"), entry("test_ddp", "amp-bf16", 2, 0.2, "four"),
        entry("test_ddp", "amp-fp16", 4, 0.2, "five")], START)
    path = tmp_path / "run.json"
    path.write_text(json.dumps(doc))
    run, _ = read_run(path)
    bench = run.benchmarks
    assert matching.reference_benchmark(run, bench["b.py::test_train[two]"]).key == \
        "b.py::test_train[one]"
    assert matching.reference_benchmark(run, bench["b.py::test_ddp[four]"]).key == \
        "b.py::test_ddp[three]"
    ddp_fp32, ddp_amp = bench["b.py::test_ddp[three]"], bench["b.py::test_ddp[four]"]
    assert run_speedup(run, ddp_amp).value == np.median(ddp_fp32.rounds) / np.median(ddp_amp.rounds)
    # no fp32 run at world size 4: no reference, not the one of another world size
    assert matching.reference_benchmark(run, bench["b.py::test_ddp[five]"]) is None


def test_injected_runs_are_candidates_never_baselines(tmp_path, monkeypatch, capsys):
    store = tmp_path / "store"
    clean = save(store, 1)
    injected = save(store, 2, records={"*": {"injections": ("attention-fallback",)}},
                    slowdown={"bert-amp-bf16": 1.3})
    later = save(store, 3)
    status, data = compare_json(tmp_path, monkeypatch, clean, injected)
    assert status == 1 and data["measured_differences"] == []  # the gate sees the injection
    assert any(i.endswith(": attention-fallback") for i in data["injected"])  # and says so
    assert compare_json(tmp_path, monkeypatch, clean, later)[1]["injected"] == []
    status, data = compare_json(tmp_path, monkeypatch, injected, later)
    assert status == 4
    assert data["measured_differences"][0].endswith(
        "the baseline has injected regressions ['attention-fallback']")
    # the newest clean run's baseline is the clean run before the injected one
    status, data = compare_json(tmp_path, monkeypatch, store)
    assert status == 0 and [Path(b["path"]).name for b in data["baseline"]] == [clean.name]
    assert f"skipped 1 more recent run(s) that measured other work: {injected.name}" in \
        data["notes"]


def test_report_draws_one_series_per_measured_work(tmp_path):
    store = tmp_path / "store"
    smaller = {"bert-amp-bf16": {"config": {"epochs": 1, "batch_size": 32}}}
    for index in range(12):
        later = index >= 6  # from run 6 on bert-amp-bf16 trains batches of 32: 20 % faster
        save(store, index + 1, records=smaller if later else None,
             slowdown={"bert-amp-bf16": 0.8} if later else None)
    runs, _ = load_history([store])
    charts = {c.slug: c for c in collect_charts(runs)}
    time = charts["time-test-train-bert-amp-bf16"]
    assert [(s.label, s.x) for s in time.series] == [
        ("median (batch_size=64)", list(range(6))), ("median (batch_size=32)", list(range(6, 12)))]
    assert all(s.changes == [] for s in time.series)  # other work is not a change point
    assert [s.label for s in charts["memory-bert"].series] == [
        "fp32", "amp-bf16 (batch_size=64)", "amp-bf16 (batch_size=32)"]
    assert [s.label for s in charts["time-test-train-bert-fp32"].series] == ["median"]


def test_random_initial_weights_are_other_work_than_pretrained(tmp_path, monkeypatch):
    store = tmp_path / "store"
    save(store, 1)
    save(store, 2, records={"*": {"accuracy_meaningful": False}})
    status, data = compare_json(tmp_path, monkeypatch, store)
    assert status == 4
    assert data["measured_differences"][0].endswith("random_init False vs True")


def test_allow_env_mismatch_never_compares_other_work(tmp_path, monkeypatch):
    """--allow-env-mismatch covers the environment part of the key only."""
    store = tmp_path / "store"
    save(store, 1)
    save(store, 2, env=synthetic.environment(gpu="NVIDIA H100"),
         records={"*": {"config": {"epochs": 1, "batch_size": 32}}})
    status, data = compare_json(tmp_path, monkeypatch, store, "--allow-env-mismatch")
    assert status == 4 and data["benchmarks"] == []
    assert data["environment_differences"][0].startswith("gpu: 'NVIDIA H200'")
    assert all(d.endswith("batch_size 64 vs 32") for d in data["measured_differences"])


REAL = GPU_RUNS


def test_real_gpu_runs_of_other_models_or_gpu_counts_are_refused(tmp_path, monkeypatch):
    """The issue's cases on the committed H200 histories: bert-base vs MiniLM (it gave "3
    regressed"), and DDP on 2 vs 4 GPUs (it was judged)."""
    status, data = compare_json(tmp_path, monkeypatch, REAL / "h200-seed-bert-base-random-init-1.json",
                                REAL / "h200-seed-minilm-pretrained.json")
    assert status == 4 and data["benchmarks"] == []
    assert "model 'bert-base-cased-config' vs 'all-MiniLM-L6-v2-fp16'" in data["measured_differences"][0]
    status, data = compare_json(tmp_path, monkeypatch,
                                REAL / "h200x2-suite-cuda-graphs-bert-base-random-init.json",
                                REAL / "h200x4-suite-ddp4-bert-base-random-init.json")
    judged = [b["name"] for b in data["benchmarks"]]
    assert judged and not [name for name in judged if "ddp" in name]
    ddp = [d for d in data["measured_differences"] if "test_ddp_train" in d]
    assert len(ddp) == 3 and all(d.endswith("world_size 2 vs 4") for d in ddp)


def test_report_splits_series_by_environment_too(tmp_path):
    """A GPU change starts a new line named by it, never a change point inside one."""
    store = tmp_path / "store"
    for index in range(8):
        h100 = index >= 4
        save(store, index + 1, env=synthetic.environment(gpu="NVIDIA H100") if h100 else None,
             slowdown={"bert-fp32": 1.5, "bert-amp-bf16": 1.5} if h100 else None)
    runs, _ = load_history([store])
    charts = {c.slug: c for c in collect_charts(runs)}
    time = charts["time-test-train-bert-fp32"]
    assert [(s.label, s.x) for s in time.series] == [
        ("median (gpu=NVIDIA H200)", [0, 1, 2, 3]), ("median (gpu=NVIDIA H100)", [4, 5, 6, 7])]
    assert all(s.changes == [] for s in time.series)


def test_cpu_runs_differ_by_core_count_and_model_not_the_brand_alone(tmp_path, monkeypatch):
    cpu = synthetic.environment(gpu=None, driver=None, device_type="cpu")
    two = {**cpu, "cpu": "x86_64", "cpu_model": "AMD EPYC", "cpu_count": 2, "cpu_affinity": 2}
    store = tmp_path / "store"
    base = read_run(save(store, 1, env=two))[0]
    other = read_run(save(store, 2, env={**two, "cpu_count": 64, "cpu_affinity": 64}))[0]
    older = read_run(save(store, 3, env=cpu))[0]  # saved before the cores were recorded
    assert any(d.startswith("cpu_cores: 2 ") and "vs 64" in d
               for d in environments.differences(base, other))
    assert not environments.same_environment(base, other)
    assert not any("cpu_cores" in d or "cpu_model" in d for d in environments.differences(older, base))
    assert environments.same_environment(base, read_run(save(store, 4, env=two))[0])
