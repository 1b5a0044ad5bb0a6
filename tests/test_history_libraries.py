"""``ampcore compare`` names the libraries that changed between baseline and candidate: what an
upgrade comparison upgraded, compared and shown first as "upgrade:" lines, never a refusal."""

import json
from datetime import datetime, timedelta, timezone

import numpy as np

from ampcore.cli import main
from ampcore.history import environments
from ampcore.history.storage import Run
from tests.support import synthetic

START = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)
LIBRARIES = {"torch": "2.7.1+cu128", "transformers": "4.57.1", "tokenizers": "0.22.1",
             "datasets": "3.1.0", "torchvision": "0.22.1", "safetensors": "0.6.2",
             "huggingface_hub": "0.36.0", "numpy": "2.3.4", "torchao": None}


def env(**libraries) -> dict:
    """The default H200 environment with the libraries record of ampcore.measure.environment."""
    base = synthetic.environment()
    return {**base, "libraries": {**LIBRARIES, **libraries}}


def save(directory, index, environment):
    rng = np.random.default_rng(index)
    doc = synthetic.amp_session(rng, START + timedelta(hours=index), commit=f"{index:02x}" * 20,
                                env=environment)
    return synthetic.write_run(directory, index, doc)


def compare(tmp_path, monkeypatch, capsys, *args):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "verdict.json"
    status = main(["compare", str(tmp_path / "store"), "--json", str(out), *args])
    return status, json.loads(out.read_text()), capsys.readouterr().out


def test_an_upgrade_is_shown_and_still_compared(tmp_path, monkeypatch, capsys):
    store = tmp_path / "store" / "machine"
    save(store, 1, env())
    save(store, 2, env(transformers="5.17.0", tokenizers="0.23.3", torchao="0.14.0"))
    status, data, text = compare(tmp_path, monkeypatch, capsys)
    assert status == 0 and data["verdict"] == "ok" and data["environment_differences"] == []
    assert data["library_changes"] == ["transformers 4.57.1 -> 5.17.0", "tokenizers 0.22.1 -> 0.23.3",
                                       "torchao not installed -> 0.14.0"]
    assert data["upgrades"] == data["library_changes"]  # torch, CUDA, driver unchanged
    assert ("  upgrade: transformers 4.57.1 -> 5.17.0\n  upgrade: tokenizers 0.22.1 -> 0.23.3\n"
            "  upgrade: torchao not installed -> 0.14.0\n") in text


def test_unchanged_libraries_are_not_listed(tmp_path, monkeypatch, capsys):
    store = tmp_path / "store" / "machine"
    save(store, 1, env())
    save(store, 2, env())
    _, data, text = compare(tmp_path, monkeypatch, capsys)
    assert data["library_changes"] == data["upgrades"] == [] and "upgrade:" not in text


def run_with(environment: dict) -> Run:
    return Run(path=None, datetime=None, commit=None, branch=None, dirty=None, version=None,
               machine_info={"ampcore": environment})


def test_pooled_baselines_and_records_without_a_libraries_entry():
    # Several baseline versions are all named; a run saved before "libraries" was recorded
    # still has its top-level torch/transformers/torchvision/datasets, and nothing else.
    old = run_with(synthetic.environment())  # transformers 4.46.0, no "libraries"
    pooled = [old, run_with(env(transformers="4.57.1"))]
    changes = environments.library_changes(pooled, run_with(env(transformers="5.17.0")))
    assert changes == ["transformers 4.46.0, 4.57.1 -> 5.17.0"]
    assert environments.library_changes([old], run_with(env(tokenizers="0.23.3"))) == [
        "transformers 4.46.0 -> 4.57.1"]  # tokenizers: the old run did not record it
