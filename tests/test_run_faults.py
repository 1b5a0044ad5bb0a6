"""``ampcore run`` when something goes wrong after training began: a later run raises, or the
results cannot be written; and the llama architectures refused before anything trains."""

import errno
import json
import os
import tempfile

import pytest
import torch

import ampcore.train.run
from ampcore.cli import main
from ampcore.core import files
from ampcore.core.errors import UsageError
from ampcore.train.result import read_json
from ampcore.workloads import llama

pytestmark = pytest.mark.usefixtures("isolated_env")
SMOKE = ["--profile", "smoke", "--device", "cpu", "--no-progress"]
TWO_RUNS = ["run", "--workload", "resnet18", "--precision", "fp32", "amp-bf16", *SMOKE]
FULL_DISK = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.fixture
def temp_dir(tmp_path, monkeypatch):
    """The system's temporary directory, where fallback files go, in the test's tmp_path."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


@pytest.fixture
def second_run_raises(monkeypatch, make_result):
    """Training stubbed: fp32 finishes, the next run raises ``second_run_raises.error``."""
    class Stub:
        error: Exception = RuntimeError("shape '[2, 3, -1, 3]' is invalid for input of size 36")
        specs: list = []

    def run_experiment(spec, progress=False):
        Stub.specs.append(spec)
        if spec.precision != "fp32":
            raise Stub.error
        return make_result(workload=spec.workload, precision=spec.precision,
                           profile=spec.profile, device=spec.device)

    monkeypatch.setattr(ampcore.train.run, "run_experiment", run_experiment)
    return Stub


# --- case 4: a later run raises ---------------------------------------------------------------

@pytest.mark.parametrize("error, status", [
    (RuntimeError("shape '[2, 3, -1, 3]' is invalid for input of size 36"), 1),
    (UsageError("bad value"), 2),  # an AmpcoreError keeps its own exit status
], ids=["unexpected", "ampcore-error"])
def test_a_later_run_that_raises_keeps_the_finished_runs(second_run_raises, tmp_path, capsys,
                                                         error, status):
    second_run_raises.error = error
    path = tmp_path / "r.json"
    assert main([*TWO_RUNS, "--json", str(path)]) == status
    out, err = capsys.readouterr()
    assert "| Regular (fp32)" in out
    assert f'ampcore: failed; wrote the 1 finished run(s) to {path} (marked "partial": true)' in err
    detail = str(error) if status == 2 else f"RuntimeError: {error}"
    assert err.rstrip().endswith(f"ampcore: error: run resnet18/amp-bf16 failed: {detail}")
    assert ("Traceback" in err) == (status == 1)  # a bug's traceback, for its report
    assert json.loads(path.read_text())["partial"] is True
    assert [r.precision for r in read_json(path)] == ["fp32"]


def test_without_json_a_failure_saves_to_the_temporary_directory(second_run_raises, temp_dir,
                                                                 capsys):
    assert main(TWO_RUNS) == 1
    (path,) = temp_dir.glob("ampcore-failed-*.json")
    assert f"wrote the 1 finished run(s) to {path}" in capsys.readouterr().err
    assert json.loads(path.read_text())["partial"] is True


def test_a_first_run_that_raises_says_so_and_saves_nothing(second_run_raises, temp_dir, capsys):
    second_run_raises.error = UsageError("bad value")
    assert main(["run", "--workload", "resnet18", "--precision", "amp-bf16", *SMOKE]) == 2
    assert "ampcore: error: run resnet18/amp-bf16 failed: bad value" in capsys.readouterr().err
    assert list(temp_dir.iterdir()) == []


@pytest.mark.parametrize("spec, message", [
    ("llama:hidden=6,layers=1,heads=2,intermediate=8",
     "head_dim = hidden / heads = 6 / 2 = 3 is odd, and rotary position embeddings need an "
     "even one"),
    ("llama:hidden=64,layers=1,heads=4,intermediate=8,kv_heads=3",
     "heads must be a multiple of kv_heads; got heads=4, kv_heads=3"),
    ("llama:hidden=99999999999999999999,layers=1,heads=2,intermediate=8",
     "hidden=99,999,999,999,999,999,999 is beyond 65,536 (4x the largest published Llama's)"),
    ("llama:hidden=64,layers=100000,heads=4,intermediate=8", "layers=100,000 is beyond 512"),
    ("llama:hidden=64,layers=1,heads=4,intermediate=8,vocab=9999999", "vocab=9,999,999"),
    ("llama:hidden=64,layers=1,heads=4,intermediate=8,hidden=32", "gives hidden twice"),
    ("llama:hidden=\u00b2,layers=1,heads=4,intermediate=8", "'hidden=\u00b2' is not key=N"),
], ids=["odd-head-dim", "kv-heads", "huge-hidden", "many-layers", "huge-vocab", "twice",
        "superscript"])
def test_llama_specs_it_cannot_train_are_refused_naming_the_field(spec, message):
    with pytest.raises(UsageError) as raised:
        llama.architecture(spec)
    assert message in str(raised.value)


def test_every_llama_preset_passes_the_checks():
    for name in llama.ARCHITECTURES:
        sizes = llama.architecture(name)
        assert (sizes["hidden"] // sizes["heads"]) % 2 == 0


def test_a_bad_llama_spec_stops_the_cli_before_any_run(second_run_raises, capsys):
    argv = ["run", "--workload", "resnet18", "llama", "--precision", "fp32", *SMOKE,
            "--llama-model", "llama:hidden=6,layers=1,heads=2,intermediate=8"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "ampcore: error: --llama-model: llama architecture" in err and "head_dim" in err
    assert "Traceback" not in err and second_run_raises.specs == []


# --- case 5: where the results go -------------------------------------------------------------

def test_a_missing_json_directory_is_refused_before_training(second_run_raises, tmp_path,
                                                             capsys):
    path = tmp_path / "typo" / "r.json"
    assert main(["run", "--workload", "resnet18", "--precision", "fp32", *SMOKE,
                 "--json", str(path)]) == 2
    err = capsys.readouterr().err
    assert (f"ampcore: error: --json {path}: the directory {path.parent} does not exist; "
            "create it, correct the path, or give --mkdir to create it") in err
    assert second_run_raises.specs == [] and not path.parent.exists()


def test_mkdir_creates_the_json_directory(second_run_raises, tmp_path):
    path = tmp_path / "new" / "dir" / "r.json"
    assert main(["run", "--workload", "resnet18", "--precision", "fp32", *SMOKE,
                 "--json", str(path), "--mkdir"]) == 0
    assert [r.precision for r in read_json(path)] == ["fp32"]


def test_a_full_disk_at_the_end_writes_the_results_to_a_fallback_file(
        second_run_raises, tmp_path, temp_dir, monkeypatch, capsys):
    def full_disk(path, text):
        raise FULL_DISK

    monkeypatch.setattr(files, "create_new", full_disk)
    path = tmp_path / "r.json"
    assert main(["run", "--workload", "resnet18", "--precision", "fp32", *SMOKE,
                 "--json", str(path)]) == 1
    out, err = capsys.readouterr()
    (fallback,) = temp_dir.glob("ampcore-results-*.json")
    assert "| Regular (fp32)" in out and "Traceback" not in err
    assert (f"ampcore: error: --json {path} could not be written: No space left on device; "
            f"wrote the 1 run(s) to {fallback} instead") in err
    assert "partial" not in json.loads(fallback.read_text())
    assert [r.precision for r in read_json(fallback)] == ["fp32"] and not path.exists()


def test_a_file_that_appeared_meanwhile_is_kept_and_the_results_go_elsewhere(
        monkeypatch, make_result, tmp_path, temp_dir, capsys):
    path = tmp_path / "r.json"

    def run_experiment(spec, progress=False):
        path.write_text("someone else's")
        return make_result(workload=spec.workload, precision=spec.precision)

    monkeypatch.setattr(ampcore.train.run, "run_experiment", run_experiment)
    assert main(["run", "--workload", "resnet18", "--precision", "fp32", *SMOKE,
                 "--json", str(path)]) == 1
    (fallback,) = temp_dir.glob("ampcore-results-*.json")
    assert "instead" in capsys.readouterr().err and path.read_text() == "someone else's"
    assert [r.precision for r in read_json(fallback)] == ["fp32"]


def test_when_no_place_takes_the_results_it_says_so(second_run_raises, tmp_path, temp_dir,
                                                    monkeypatch, capsys):
    def full_disk(descriptor):
        raise FULL_DISK

    monkeypatch.setattr(os, "fsync", full_disk)  # every write fails, the fallback's too
    path = tmp_path / "r.json"
    assert main(["run", "--workload", "resnet18", "--precision", "fp32", *SMOKE,
                 "--json", str(path)]) == 1
    err = capsys.readouterr().err
    assert (f"ampcore: error: the 1 run(s) could not be saved: --json {path} could not be "
            "written: No space left on device; the temporary directory could not be written: "
            "No space left on device") in err
    assert list(temp_dir.iterdir()) == [] and list(tmp_path.glob("*.json")) == []


def test_a_write_that_fails_after_claiming_the_name_leaves_no_empty_file(tmp_path, monkeypatch):
    def no_hard_links(source, target):
        raise OSError(errno.EPERM, "no hard links here")

    def full_disk(source, target):
        raise FULL_DISK

    monkeypatch.setattr(os, "link", no_hard_links)
    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError):
        files.create_new(tmp_path / "r.json", "{}")
    assert list(tmp_path.iterdir()) == []


def test_the_parameter_count_is_the_built_models():
    sizes = llama.architecture("llama:hidden=64,layers=2,heads=4,intermediate=96,kv_heads=2,vocab=320")
    model = llama.build_model(sizes, sizes["vocab"], 16)
    assert llama.parameter_count(sizes) == sum(p.numel() for p in model.parameters())


def test_a_llama_too_large_for_the_device_is_refused_before_it_trains(capsys):
    # 512 layers of hidden 65,536: ~26 trillion parameters, far beyond any machine's memory.
    spec = "llama:hidden=65536,layers=512,heads=512,intermediate=262144"
    assert main(["run", "--workload", "llama", "--llama-model", spec, "--precision", "fp32",
                 *SMOKE]) == 2
    err = capsys.readouterr().err
    assert "parameters need at least" in err and "more than cpu has" in err, err


def test_a_llama_that_fits_passes_the_memory_check():
    sizes = llama.architecture("llama-125m")
    llama.check_fits("llama-125m", sizes, torch.device("cpu"))  # ~2 GiB of training state
    with pytest.raises(UsageError, match="more than cpu has"):
        llama.check_fits("llama-125m", sizes | {"layers": 10**6}, torch.device("cpu"))
