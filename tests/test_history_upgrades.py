"""``ampcore compare`` across an upgrade (issue 26, items 2 and 10): a software change (torch,
CUDA, driver, libraries) is compared and named first as "upgrade:" lines; a hardware change
(another GPU model) is still refused (exit 4); and the thresholds of the storage's project are
used, and named, when compare runs from an unrelated working directory."""

import json
from datetime import datetime, timedelta, timezone

import numpy as np

from ampcore.cli import main
from ampcore.history import environments, matching
from ampcore.history.storage import load_history
from tests.support import synthetic

START = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)
LIBRARIES = {"torch": "2.11.0", "transformers": "4.57.1", "torchvision": "0.26.0",
             "datasets": "3.1.0", "torchao": None}


def env(torch: str = "2.11.0", gpu: str = "NVIDIA H200", **changes) -> dict:
    base = synthetic.environment(gpu=gpu, torch=torch)
    return {**base, **changes, "libraries": {**LIBRARIES, "torch": torch}}


def save(directory, index, environment, **session):
    rng = np.random.default_rng(index)
    doc = synthetic.amp_session(rng, START + timedelta(hours=index), commit=f"{index:02x}" * 20,
                                env=environment, **session)
    return synthetic.write_run(directory, index, doc)


def compare(cwd, monkeypatch, capsys, store, *args):
    """Run compare from ``cwd``: exit status, JSON, text and Markdown."""
    monkeypatch.chdir(cwd)
    out, md = cwd / "verdict.json", cwd / "summary.md"
    for path in (out, md):
        path.unlink(missing_ok=True)
    status = main(["compare", str(store), "--json", str(out), "--markdown", str(md), *args])
    text = capsys.readouterr().out
    return status, json.loads(out.read_text()), text, md.read_text()


def context(text: str) -> list[str]:
    """The context lines (``output.context_lines``), stripped: from the first "upgrade:" or
    "candidate:" line on (the headline and any verdict summary come before them)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[next(i for i, line in enumerate(lines)
                      if line.startswith(("upgrade:", "candidate:"))):]


def test_a_torch_upgrade_is_compared_and_named_first(tmp_path, monkeypatch, capsys):
    store = tmp_path / "store" / "machine"
    save(store, 1, env())
    save(store, 2, env(torch="2.12.0", cuda="13.0"))
    status, data, text, markdown = compare(tmp_path, monkeypatch, capsys, tmp_path / "store")
    assert status == 0 and data["verdict"] == "ok" and data["benchmarks"]
    assert data["environment_differences"] == [] and data["environment_mismatch_allowed"] is False
    assert data["upgrades"] == ["torch 2.11.0 -> 2.12.0", "cuda 12.8 -> 13.0"]
    lines = context(text)
    assert lines[:2] == ["upgrade: torch 2.11.0 -> 2.12.0", "upgrade: cuda 12.8 -> 13.0"]
    assert lines[2].startswith("candidate:")
    md_lines = [line for line in markdown.splitlines() if line.startswith("- ")]
    assert md_lines[0] == "- upgrade: torch 2.11.0 -&gt; 2.12.0"  # renders as "->"
    assert "refused" not in text and "--allow-env-mismatch" not in text


def test_an_upgrade_that_slowed_the_training_is_a_regression(tmp_path, monkeypatch, capsys):
    """The exit status is the verdict's: the upgrade is judged, not waved through."""
    store = tmp_path / "store" / "machine"
    save(store, 1, env())
    save(store, 2, env(torch="2.12.0"), slowdown={"bert-amp-bf16": 1.4})
    status, data, text, _ = compare(tmp_path, monkeypatch, capsys, tmp_path / "store")
    assert status == 1 and data["verdict"] == "regression"
    assert data["upgrades"] == ["torch 2.11.0 -> 2.12.0"]
    assert context(text)[0] == "upgrade: torch 2.11.0 -> 2.12.0"


def test_another_gpu_model_is_still_refused(tmp_path, monkeypatch, capsys):
    """Negative control: hardware is not an upgrade."""
    store = tmp_path / "store" / "machine"
    save(store, 1, env())
    save(store, 2, env(gpu="NVIDIA B200"))
    status, data, text, _ = compare(tmp_path, monkeypatch, capsys, tmp_path / "store")
    assert status == 4 and data["verdict"] == "refused" and data["benchmarks"] == []
    assert data["environment_differences"][0].startswith("gpu: 'NVIDIA H200'")
    assert data["upgrades"] == [] and "--allow-env-mismatch" in text
    status, data, _, _ = compare(tmp_path, monkeypatch, capsys, tmp_path / "store",
                                 "--allow-env-mismatch")
    assert status == 0 and data["environment_mismatch_allowed"] is True


def test_a_gpu_and_torch_change_is_refused_for_the_gpu_alone(tmp_path, monkeypatch, capsys):
    store = tmp_path / "store" / "machine"
    save(store, 1, env())
    save(store, 2, env(torch="2.12.0", gpu="NVIDIA B200"))
    status, data, _, _ = compare(tmp_path, monkeypatch, capsys, tmp_path / "store")
    assert status == 4 and data["upgrades"] == ["torch 2.11.0 -> 2.12.0"]
    assert not any(d.startswith("torch") for d in data["environment_differences"])


def test_the_baseline_of_an_upgrade_is_the_last_run_on_the_same_hardware(tmp_path):
    store = tmp_path / "store" / "machine"
    save(store, 1, env())
    save(store, 2, env(gpu="NVIDIA L4"))
    save(store, 3, env(torch="2.12.0"))
    runs, _ = load_history([tmp_path / "store"])
    chosen, notes = matching.choose_baseline(runs[:-1], runs[-1])
    assert [r.path.name[:4] for r in chosen] == ["0001"]
    assert notes and "another environment" in notes[0]
    # calibration's A/A groups still need the same software too
    assert not environments.same_environment(runs[0], runs[2])
    assert environments.same_environment(runs[0], runs[2], software=False)


PYPROJECT = """[tool.ampcore.compare]
alpha = 0.03

[[tool.ampcore.thresholds]]
match = "*bert-amp-bf16*"
time = 0.5
speedup = 0.5
"""


def test_the_storages_project_thresholds_are_used_from_another_cwd(tmp_path, monkeypatch, capsys):
    project = tmp_path / "project"
    store = project / ".benchmarks" / "machine"
    save(store, 1, env())
    save(store, 2, env(), slowdown={"bert-amp-bf16": 1.4})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # negative control: no pyproject.toml by the storage -> built-in defaults, a regression
    status, data, text, _ = compare(elsewhere, monkeypatch, capsys, project / ".benchmarks")
    assert status == 1 and data["thresholds_source"] is None
    assert "thresholds: built-in defaults" in text
    (project / "pyproject.toml").write_text(PYPROJECT)
    status, data, text, markdown = compare(elsewhere, monkeypatch, capsys, project / ".benchmarks")
    assert status == 0, text  # the project's 50 % time limit for bert-amp-bf16
    source = str((project / "pyproject.toml").resolve())
    assert data["thresholds_source"] == source
    assert "above the storage" in data["thresholds_origin"]
    assert f"thresholds: {source} (found above the storage" in text
    assert f"- thresholds: {source}" in markdown
    bench = next(b for b in data["benchmarks"] if b["name"] == "test_train[bert-amp-bf16]")
    assert bench["thresholds"]["time"] == 0.5 and bench["thresholds"]["alpha"] == 0.03


def test_alpha_on_the_command_line_wins_over_the_storages_file(tmp_path, monkeypatch, capsys):
    project = tmp_path / "project"
    store = project / ".benchmarks"
    save(store, 1, env())
    save(store, 2, env())
    (store / "pyproject.toml").write_text(PYPROJECT)  # beside the storage's runs
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _, data, text, _ = compare(elsewhere, monkeypatch, capsys, store, "--alpha", "0.01")
    assert data["thresholds_source"] == str((store / "pyproject.toml").resolve())
    assert "found beside the storage" in text
    assert {b["thresholds"]["alpha"] for b in data["benchmarks"]} == {0.01}
    assert {b["thresholds"]["time"] for b in data["benchmarks"]
            if b["name"] == "test_train[bert-amp-bf16]"} == {0.5}


def test_the_working_directorys_file_wins_over_the_storages(tmp_path, monkeypatch, capsys):
    project = tmp_path / "project"
    store = project / ".benchmarks"
    save(store, 1, env())
    save(store, 2, env())
    (project / "pyproject.toml").write_text(PYPROJECT)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "pyproject.toml").write_text("[tool.ampcore.compare]\nalpha = 0.04\n")
    _, data, text, _ = compare(cwd, monkeypatch, capsys, store)
    assert data["thresholds_source"] == str((cwd / "pyproject.toml").resolve())
    assert "found in the working directory" in text
