"""``ampcore compare``: every verdict, exit status and output, on histories built in tmp dirs."""

import hashlib
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from ampcore.cli import main
from tests.support import synthetic
from ampcore.history.compare import REGRESSION, compare
from ampcore.history.config import GateConfig, Thresholds, load_config, parse_config
from ampcore.history.storage import UnusableInputError, load_history

DATA = Path(__file__).parent / "data" / "history"
START = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)
BERT_AMP = "benchmarks/test_amp.py::test_train[bert-amp-bf16]"


def save(directory: Path, index: int, seed: int | None = None, **session) -> Path:
    """One saved session of the suite (2 workloads x fp32, amp-bf16; 10 rounds, 2 % noise)."""
    rng = np.random.default_rng(index if seed is None else seed)
    doc = synthetic.amp_session(rng, START + timedelta(hours=index), commit=f"{index:02x}" * 20,
                                **session)
    return synthetic.write_run(directory, index, doc)


def pair(tmp_path: Path, **candidate) -> Path:
    """A storage with a baseline run and a candidate run (the candidate changed as asked)."""
    store = tmp_path / ".benchmarks"
    save(store / "Linux-CPython-3.11-64bit", 1)
    save(store / "Linux-CPython-3.11-64bit", 2, **candidate)
    return store


def digest(root: Path) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


def run_compare(tmp_path, monkeypatch, capsys, *args) -> tuple[int, dict, str]:
    """Run the CLI in tmp_path (no pyproject.toml: built-in defaults); exit status, JSON, text."""
    monkeypatch.chdir(tmp_path)
    out = tmp_path / f"verdict{len(list(tmp_path.glob('verdict*.json')))}.json"
    status = main(["compare", *map(str, args), "--json", str(out)])
    captured = capsys.readouterr()
    data = json.loads(out.read_text()) if out.exists() else {}
    return status, data, captured.out + captured.err


def metric(data: dict, name: str, which: str) -> dict:
    bench = next(b for b in data["benchmarks"] if b["name"] == f"test_train[{name}]")
    return next(m for m in bench["metrics"] if m["metric"] == which)


def statuses(data: dict) -> dict:
    return {(b["name"], m["metric"]): m["status"] for b in data["benchmarks"] for m in b["metrics"]
            if m["status"] not in ("ok", "n/a")}


def test_aa_pair_passes(tmp_path, monkeypatch, capsys):
    store = pair(tmp_path)
    status, data, text = run_compare(tmp_path, monkeypatch, capsys, store)
    assert status == 0 and data["verdict"] == "ok" and data["exit_status"] == 0
    assert statuses(data) == {}
    assert "no regression in 4 benchmark(s)" in text
    time = metric(data, "bert-amp-bf16", "time")
    assert time["method"].startswith("one-sided Mann-Whitney U") and time["p_value"] > 0.01
    assert len(time["ci"]) == 2 and time["ci_level"] == 0.95


def test_twenty_percent_slowdown_is_a_regression(tmp_path, monkeypatch, capsys):
    store = pair(tmp_path, slowdown={"bert-amp-bf16": 1.2})
    status, data, text = run_compare(tmp_path, monkeypatch, capsys, store)
    assert status == 1 and data["verdict"] == "regression"
    time = metric(data, "bert-amp-bf16", "time")
    assert time["status"] == REGRESSION
    assert time["change"] == pytest.approx(0.2, abs=0.03)
    assert time["p_value"] < 1e-3 and time["q_value"] < 0.01
    assert time["ci"][0] > 1.1  # the time ratio's interval
    # the speedup over fp32 fell as well (fp32 unchanged), measured within the candidate run
    assert metric(data, "bert-amp-bf16", "speedup")["status"] == REGRESSION
    assert set(statuses(data)) == {("test_train[bert-amp-bf16]", "time"),
                                   ("test_train[bert-amp-bf16]", "speedup")}
    assert "FAIL: 1 benchmark(s) regressed: test_train[bert-amp-bf16]" in text


def test_small_significant_slowdown_under_threshold_passes(tmp_path, monkeypatch, capsys):
    store = pair(tmp_path, noise=0.002, slowdown={"resnet18-fp32": 1.03})
    status, data, _ = run_compare(tmp_path, monkeypatch, capsys, store)
    time = metric(data, "resnet18-fp32", "time")
    assert time["p_value"] < 1e-3 and time["status"] == "ok" and status == 0


def test_speedup_drop_with_unchanged_amp_time(tmp_path, monkeypatch, capsys):
    # fp32 got 20 % faster while AMP stayed put: AMP now buys less, though nothing is slower
    store = pair(tmp_path, slowdown={"bert-fp32": 0.8})
    status, data, _ = run_compare(tmp_path, monkeypatch, capsys, store)
    assert status == 1
    speedup = metric(data, "bert-amp-bf16", "speedup")
    assert speedup["status"] == REGRESSION and speedup["change"] == pytest.approx(-0.2, abs=0.03)
    assert speedup["ci"][1] < 1 and speedup["method"].startswith("bootstrap")
    assert metric(data, "bert-amp-bf16", "time")["status"] == "ok"
    assert metric(data, "bert-fp32", "time")["status"] == "improvement"


def test_accuracy_drop(tmp_path, monkeypatch, capsys):
    store = pair(tmp_path, accuracy={"resnet18-amp-bf16": 0.86})
    status, data, _ = run_compare(tmp_path, monkeypatch, capsys, store)
    assert status == 1
    assert statuses(data) == {("test_train[resnet18-amp-bf16]", "accuracy"): REGRESSION}
    assert metric(data, "resnet18-amp-bf16", "accuracy")["change"] == pytest.approx(-0.04)


def test_accuracy_drop_within_tolerance_passes(tmp_path, monkeypatch, capsys):
    store = pair(tmp_path, accuracy={"resnet18-amp-bf16": 0.88})
    assert run_compare(tmp_path, monkeypatch, capsys, store)[0] == 0


def test_memory_growth(tmp_path, monkeypatch, capsys):
    store = pair(tmp_path, memory={"bert-fp32": 1.15})
    status, data, text = run_compare(tmp_path, monkeypatch, capsys, store)
    assert status == 1
    assert statuses(data) == {("test_train[bert-fp32]", "memory"): REGRESSION}
    assert "+15.0 %" in text and "3.00 GiB" in text


def test_skipped_steps_growth(tmp_path, monkeypatch, capsys):
    store = pair(tmp_path, skipped={"bert-amp-bf16": 5})
    status, data, _ = run_compare(tmp_path, monkeypatch, capsys, store)
    assert status == 1
    assert statuses(data) == {("test_train[bert-amp-bf16]", "skipped_steps"): REGRESSION}


def test_different_gpu_is_refused_then_allowed(tmp_path, monkeypatch, capsys):
    other = synthetic.environment(gpu="NVIDIA A100-SXM4-80GB", driver="535.104.05", cuda="12.2")
    store = pair(tmp_path, env=other)
    status, data, text = run_compare(tmp_path, monkeypatch, capsys, store)
    assert status == 4 and data["verdict"] == "refused" and data["benchmarks"] == []
    differences = "\n".join(data["environment_differences"])
    for field in ("gpu: 'NVIDIA H200'", "'NVIDIA A100-SXM4-80GB'"):
        assert field in differences
    # driver and CUDA are software: upgrades (named, compared), never the refusal's reason
    assert "driver" not in differences and "cuda" not in differences
    assert data["upgrades"] == ["cuda 12.8 -> 12.2", "driver 570.124.06 -> 535.104.05"]
    assert "torch" not in differences  # same torch: not listed
    assert "--allow-env-mismatch" in text
    status, data, text = run_compare(tmp_path, monkeypatch, capsys, store, "--allow-env-mismatch")
    assert status == 0 and data["environment_mismatch_allowed"] is True
    assert "compared anyway" in text


def test_torch_and_tf32_differences_are_listed(tmp_path, monkeypatch, capsys):
    """TF32 flags change the maths: refused; torch is an upgrade: named, not the refusal."""
    store = pair(tmp_path, env=synthetic.environment(torch="2.8.0+cu128", tf32=True))
    status, data, _ = run_compare(tmp_path, monkeypatch, capsys, store)
    differences = "\n".join(data["environment_differences"])
    assert status == 4
    assert "tf32.matmul_tf32: False" in differences and "torch" not in differences
    assert data["upgrades"] == ["torch 2.7.1+cu128 -> 2.8.0+cu128"]


def test_baseline_prefers_runs_of_the_candidates_environment(tmp_path, monkeypatch, capsys):
    machine = tmp_path / "store" / "m"
    save(machine, 1)
    save(machine, 2, env=synthetic.environment(gpu="NVIDIA L4"))
    save(machine, 3)
    status, data, text = run_compare(tmp_path, monkeypatch, capsys, tmp_path / "store")
    assert status == 0 and [Path(b["path"]).name[:4] for b in data["baseline"]] == ["0001"]
    assert "skipped 1 more recent run(s) measured on another environment" in text


def test_rolling_baseline_and_explicit_files(tmp_path, monkeypatch, capsys):
    machine = tmp_path / "store" / "m"
    paths = [save(machine, i) for i in range(1, 6)]
    status, data, _ = run_compare(tmp_path, monkeypatch, capsys, tmp_path / "store",
                                  "--baseline-last", "3")
    assert status == 0
    assert [Path(b["path"]).name for b in data["baseline"]] == [p.name for p in paths[1:4]]
    assert Path(data["candidate"]["path"]).name == paths[4].name
    assert metric(data, "bert-fp32", "time")["note"] == "n=30 vs 10 rounds"
    status, data, _ = run_compare(tmp_path, monkeypatch, capsys, paths[0], paths[2], paths[1])
    assert [Path(b["path"]).name for b in data["baseline"]] == [paths[0].name, paths[2].name]
    assert Path(data["candidate"]["path"]).name == paths[1].name


def test_runs_without_rounds_get_a_labelled_threshold_only_verdict(tmp_path, monkeypatch, capsys):
    store = tmp_path / "store"
    for index, slowdown in ((1, None), (2, {"bert-amp-bf16": 1.2})):
        path = save(store, index, slowdown=slowdown)
        doc = json.loads(path.read_text())
        for bench in doc["benchmarks"]:
            del bench["stats"]["data"]  # as saved without --benchmark-save-data
        path.unlink()
        synthetic.write_run(store, index, doc)
    status, data, text = run_compare(tmp_path, monkeypatch, capsys, store)
    assert status == 1
    time = metric(data, "bert-amp-bf16", "time")
    assert time["status"] == REGRESSION and time["method"].startswith("THRESHOLD ONLY")
    assert time["p_value"] is None
    speedup = metric(data, "bert-amp-bf16", "speedup")
    assert speedup["method"] == "THRESHOLD ONLY (speedup from recorded speedup_vs_fp32)"
    assert "THRESHOLD ONLY" in text


def test_missing_benchmarks_and_extra_info_keys(tmp_path, monkeypatch, capsys):
    store = pair(tmp_path)
    candidate = sorted(store.rglob("0002_*.json"))[0]
    doc = json.loads(candidate.read_text())
    doc["benchmarks"] = [b for b in doc["benchmarks"] if b["name"] != "test_train[resnet18-fp32]"]
    for bench in doc["benchmarks"]:
        bench["extra_info"].pop("final_accuracy")
        bench["extra_info"]["peak_memory_bytes"] = None  # as on a CPU
    candidate.unlink()
    synthetic.write_run(candidate.parent, 2, doc)
    status, data, text = run_compare(tmp_path, monkeypatch, capsys, store)
    assert status == 1 and data["verdict"] == "missing"  # nothing passes silently
    assert data["only_in_baseline"] == ["benchmarks/test_amp.py::test_train[resnet18-fp32]"]
    assert "missing from the candidate" in text
    status, data, text = run_compare(tmp_path, monkeypatch, capsys, store, "--allow-missing")
    assert status == 0 and data["missing_allowed"] is True
    accuracy = metric(data, "bert-fp32", "accuracy")
    assert accuracy["status"] == "n/a" and "final_accuracy" in accuracy["note"]
    assert metric(data, "bert-fp32", "memory")["status"] == "n/a"
    # resnet18's AMP speedup still comes from the candidate's own extra_info
    assert metric(data, "resnet18-amp-bf16", "speedup")["method"].startswith("THRESHOLD ONLY")


def test_corrupt_file_is_named_and_the_rest_compared(tmp_path, monkeypatch, capsys):
    store = pair(tmp_path, slowdown={"bert-amp-bf16": 1.2})
    broken = store / "Linux-CPython-3.11-64bit" / "0000_broken.json"
    broken.write_text('{"machine_info": {"node": "x"}, "benchm')
    markdown = tmp_path / "summary.md"
    status, data, text = run_compare(tmp_path, monkeypatch, capsys, store, "--markdown", markdown)
    assert status == 1
    assert str(broken) in text and "not valid JSON" in text
    assert [p["path"] for p in data["problems"]] == [str(broken)]
    assert "0000_broken.json" in markdown.read_text()


def test_unusable_input_exits_3_and_usage_errors_2(tmp_path, monkeypatch, capsys):
    assert run_compare(tmp_path, monkeypatch, capsys, tmp_path / "absent")[0] == 3
    store = tmp_path / "one"
    save(store, 1)
    status, _, text = run_compare(tmp_path, monkeypatch, capsys, store)
    assert status == 3 and "need at least two readable saved runs" in text
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "bad.json").write_text("{")
    status, _, text = run_compare(tmp_path, monkeypatch, capsys, store,
                                  tmp_path / "elsewhere" / "bad.json")
    assert status == 3 and "must be exactly one readable saved run" in text
    assert run_compare(tmp_path, monkeypatch, capsys, store, "--baseline-last", "0")[0] == 2


def test_outputs_never_overwrite(tmp_path, monkeypatch, capsys):
    store = pair(tmp_path)
    monkeypatch.chdir(tmp_path)
    existing = tmp_path / "taken.json"
    existing.write_text("keep me")
    assert main(["compare", str(store), "--json", str(existing)]) == 2
    assert existing.read_text() == "keep me"
    assert "exists" in capsys.readouterr().err
    summary = tmp_path / "step_summary.md"
    summary.write_text("# earlier step\n")  # GitHub creates $GITHUB_STEP_SUMMARY beforehand
    assert main(["compare", str(store), "--markdown", str(summary)]) == 0
    text = summary.read_text()
    assert text.startswith("# earlier step\n") and "## ampcore compare: ✅ no regression" in text
    assert text.count("| benchmark ") == 2 and "<details><summary>" in text


def test_compare_and_report_leave_the_storage_untouched(tmp_path, monkeypatch, capsys):
    store = pair(tmp_path, slowdown={"bert-amp-bf16": 1.2})
    (store / "Linux-CPython-3.11-64bit" / "0003_corrupt.json").write_text("{")
    before = digest(store)
    run_compare(tmp_path, monkeypatch, capsys, store, "--markdown", tmp_path / "s.md")
    assert main(["report", str(store), "--out", str(tmp_path / "report")]) == 0
    assert main(["calibrate", str(store), "--trials", "2"]) == 0
    assert digest(store) == before
    assert sorted(p.name for p in store.rglob("*") if p.is_file()) == sorted(p.name for p in before)


def test_thresholds_from_pyproject(tmp_path, monkeypatch, capsys):
    store = pair(tmp_path, slowdown={"bert-amp-bf16": 1.2, "resnet18-amp-bf16": 1.2})
    (tmp_path / "pyproject.toml").write_text(
        "[tool.ampcore.compare]\nspeedup = 0.5\n"
        "[[tool.ampcore.thresholds]]\nmatch = \"*bert*\"\ntime = 0.25\n")
    status, data, text = run_compare(tmp_path, monkeypatch, capsys, store)
    assert metric(data, "bert-amp-bf16", "time")["status"] == "ok"
    assert metric(data, "bert-amp-bf16", "time")["threshold"] == 0.25
    assert metric(data, "resnet18-amp-bf16", "time")["status"] == REGRESSION
    assert metric(data, "resnet18-amp-bf16", "speedup")["threshold"] == 0.5
    assert status == 1 and "pyproject.toml" in data["thresholds_source"]
    # --alpha wins over the file and over every override
    status, data, _ = run_compare(tmp_path, monkeypatch, capsys, store, "--alpha", "1e-6")
    assert status == 0 and metric(data, "resnet18-amp-bf16", "time")["status"] == "ok"


def test_config_validation(tmp_path):
    assert load_config(start=tmp_path) == GateConfig()  # no pyproject.toml anywhere above
    config = parse_config({"thresholds": [{"match": "*a*", "time": 0.1},
                                          {"match": "*ab*", "time": 0.2, "memory": 0.5}]})
    assert config.for_benchmark("xab", "n") == Thresholds(time=0.2, memory=0.5)
    assert config.for_benchmark("xa", "n")["time"] == 0.1
    for bad in ({"compare": {"tim": 0.1}}, {"compare": {"alpha": 2}},
                {"thresholds": [{"time": 0.1}]}, {"thresholds": [{"match": "*", "time": "x"}]}):
        with pytest.raises(UnusableInputError):
            parse_config(bad)
    path = tmp_path / "broken.toml"
    path.write_text("[tool.ampcore\n")
    with pytest.raises(UnusableInputError, match="not valid TOML"):
        load_config(path)


def test_project_pyproject_example_is_valid():
    config = load_config(Path(__file__).parents[1] / "pyproject.toml")
    assert config.defaults == Thresholds()  # the defaults live in METRICS only


def test_real_gpu_runs_compare_and_stay_readable_by_pytest_benchmark(tmp_path):
    runs, _ = load_history([DATA / "h200-smoke"])
    comparison = compare(runs[:1], runs[1], GateConfig())
    assert len(comparison.verdicts) == 8 and not comparison.env_differences
    time = comparison.verdicts[0].metrics[0]
    assert time.tested and 0 <= time.q_value <= 1
    # files ampcore derived (synthetic.write_run) and the real ones: pytest-benchmark reads both
    derived = [save(tmp_path, 1), save(tmp_path, 2, slowdown={"bert-fp32": 1.2})]
    real = sorted((DATA / "h200-smoke").rglob("*.json"))[:2]
    code = ("import sys; from pytest_benchmark.cli import main; "
            "sys.argv = ['py.test-benchmark', 'compare', *sys.argv[1:]]; main()")
    result = subprocess.run([sys.executable, "-c", code, *map(str, derived + real)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("test_train[bert-fp32] (") == 4  # both derived, both real


def test_nothing_in_common_exits_3_and_module_entry_point(tmp_path, monkeypatch, capsys):
    from ampcore.history.__main__ import main as history_main

    store = tmp_path / "store"
    save(store, 1)
    path = save(store, 2)
    doc = json.loads(path.read_text())
    for bench in doc["benchmarks"]:
        bench["fullname"] = bench["fullname"].replace("test_train", "test_other")
    path.unlink()
    synthetic.write_run(store, 2, doc)
    monkeypatch.chdir(tmp_path)
    assert history_main(["compare", str(store)]) == 3
    assert "nothing to compare" in capsys.readouterr().out
    assert history_main(["compare", str(tmp_path / "absent")]) == 3
    assert "need at least two readable saved runs" in capsys.readouterr().err


def test_captured_and_eager_steps_are_not_compared(tmp_path, monkeypatch, capsys):
    baseline = synthetic.environment(cuda_graphs=False)
    store = tmp_path / ".benchmarks" / "m"
    save(store, 1, env=baseline)
    save(store, 2, env=synthetic.environment(cuda_graphs=True))
    status, data, _ = run_compare(tmp_path, monkeypatch, capsys, store.parent)
    assert status == 4 and data["verdict"] == "refused"
    assert any(d.startswith("cuda_graphs: False") for d in data["environment_differences"])


@pytest.mark.parametrize("device_type, cuda_graphs, slowdown, expected", [
    ("cuda", False, 1.2, "ok"),  # eager on a GPU: +20 % is within the host's drift
    ("cuda", False, 1.5, "regression"),
    ("cuda", True, 1.2, "regression"),  # captured: the GPU's work, 2 %
    ("cuda", True, 1.03, "regression"),
    ("cpu", False, 1.2, "regression"),  # a CPU's eager rounds do not wait on a host
    ("cpu", False, 1.03, "ok"),  # a CPU keeps the general 5 %
], ids=["eager-gpu-20", "eager-gpu-50", "captured-20", "captured-3", "cpu-20", "cpu-3"])
def test_runs_are_judged_with_the_limits_of_their_step_mode(tmp_path, monkeypatch, capsys,
                                                            device_type, cuda_graphs, slowdown,
                                                            expected):
    env = synthetic.environment(device_type=device_type, cuda_graphs=cuda_graphs)
    store = tmp_path / ".benchmarks" / "m"
    save(store, 1, env=env)
    save(store, 2, env=env, slowdown={"bert-amp-bf16": slowdown})
    _, data, _ = run_compare(tmp_path, monkeypatch, capsys, store.parent)
    time = metric(data, "bert-amp-bf16", "time")
    assert time["status"] == expected
    limits = {("cuda", False): 0.35, ("cuda", True): 0.02}
    assert time["threshold"] == limits.get((device_type, cuda_graphs), 0.05)


def test_a_run_whose_capture_fell_back_is_judged_as_eager(tmp_path, monkeypatch, capsys):
    """In a captured session, a benchmark whose steps could not be captured recorded
    cuda_graphs False in its own config: its time gets the eager limit, the others the
    captured one."""
    env = synthetic.environment(device_type="cuda", cuda_graphs=True)
    store = tmp_path / ".benchmarks" / "m"
    for index, slowdown in ((1, 1.0), (2, 1.2)):
        path = save(store, index, env=env, slowdown={"bert-amp-bf16": slowdown,
                                                     "resnet18-amp-bf16": slowdown})
        synthetic.edit_run(path, lambda doc: [
            b["extra_info"]["config"].update(cuda_graphs=b["name"].startswith("test_train[bert"))
            for b in doc["benchmarks"]])
    _, data, _ = run_compare(tmp_path, monkeypatch, capsys, store.parent)
    bert, resnet = metric(data, "bert-amp-bf16", "time"), metric(data, "resnet18-amp-bf16", "time")
    assert (bert["threshold"], bert["status"]) == (0.02, "regression")
    assert (resnet["threshold"], resnet["status"]) == (0.35, "ok")
