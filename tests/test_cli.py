"""The command line end to end on the smoke profile, its errors, and the results table/JSON."""

import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

import ampcore.train.run
from ampcore.cli import main
from ampcore.train.result import read_json, write_json
from ampcore.judge.table import results_table

pytestmark = pytest.mark.usefixtures("isolated_env", "one_cpu_thread")
SEED_COLUMNS = ("Training Method", "Time Taken (s)", "Test Accuracy")
SMOKE = ["--profile", "smoke", "--device", "cpu", "--no-progress"]


# --- one real end-to-end run, shared by the tests that read its output -------------------------

@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, one_cpu_thread):
    """``ampcore run`` on resnet18 in fp32 and amp-bf16 (the smoke profile, a few seconds)."""
    path = tmp_path_factory.mktemp("cli") / "r.json"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["run", "--workload", "resnet18", "--precision", "fp32", "amp-bf16",
                     *SMOKE, "--json", str(path)])
    return {"code": code, "out": out.getvalue(), "err": err.getvalue(), "json": path}


@pytest.mark.slow
def test_cli_run_prints_the_seed_table(cli_run):
    assert cli_run["code"] == 0, cli_run["err"]
    lines = cli_run["out"].splitlines()
    header = next(line for line in lines if line.startswith("| Training Method"))
    assert [c.strip() for c in header.strip("|").split("|")][:3] == list(SEED_COLUMNS)
    rows = [line for line in lines if line.startswith("| Regular") or line.startswith("| Mixed")]
    assert [r.split("|")[1].strip() for r in rows] == ["Regular (fp32)", "Mixed precision (bf16)"]
    assert "### resnet18 (smoke profile, cpu)" in cli_run["out"]
    for row in rows:
        time_taken, accuracy = (c.strip() for c in row.split("|")[2:4])
        assert float(time_taken) >= 0 and 0.0 <= float(accuracy) <= 1.0
    assert f"wrote {cli_run['json']}" in cli_run["err"]


@pytest.mark.slow
def test_cli_run_writes_readable_json(cli_run):
    results = read_json(cli_run["json"])
    assert [(r.workload, r.precision) for r in results] == [("resnet18", "fp32"), ("resnet18", "amp-bf16")]
    for r in results:
        assert (r.profile, r.device) == ("smoke", "cpu")
        assert r.final_accuracy > 0.5  # 10 classes: far above chance
        assert len(r.round_times_s) == r.config["rounds"]
    # Each run's summary is stored next to its raw fields.
    runs = json.loads(cli_run["json"].read_text())["runs"]
    assert runs[0]["summary"]["final_accuracy"] == results[0].final_accuracy


def test_cli_refuses_to_overwrite_json(tmp_path, capsys):
    path = tmp_path / "r.json"
    path.write_text("saved results")
    code = main(["run", "--workload", "resnet18", "--precision", "fp32", *SMOKE, "--json", str(path)])
    assert code != 0
    assert path.read_text() == "saved results"
    err = capsys.readouterr().err
    assert str(path) in err and "overwrite" in err


def test_write_json_never_overwrites(tmp_path, make_result):
    path = write_json([make_result()], tmp_path / "sub" / "r.json")
    with pytest.raises(FileExistsError):
        write_json([make_result(precision="fp32")], path)
    assert [r.precision for r in read_json(path)] == ["amp-fp16"]


# --- usage errors -----------------------------------------------------------------------------

@pytest.mark.parametrize("option, bad, valid", [
    ("--workload", "gpt2", ["bert", "resnet18"]),
    ("--precision", "fp4", ["fp32", "tf32", "amp-fp16", "amp-bf16", "fp8", "fp8-rowwise"]),
], ids=["workload", "precision"])
def test_cli_unknown_id_exits_2_listing_valid_ids(capsys, option, bad, valid):
    code = main(["run", *SMOKE, option, bad])
    assert code == 2
    err = capsys.readouterr().err
    assert repr(bad) in err
    assert all(v in err for v in valid)
    assert "Traceback" not in err


def test_cli_cuda_graphs_on_a_cpu_exits_2_with_the_way_out(capsys):
    assert main(["run", *SMOKE, "--workload", "resnet18", "--precision", "fp32",
                 "--cuda-graphs", "on"]) == 2
    err = capsys.readouterr().err
    assert "CUDA graphs need a CUDA device, not cpu; use --cuda-graphs off" in err
    assert "Traceback" not in err


def test_cli_unknown_profile_exits_2_listing_valid_ids(capsys):
    assert main(["run", "--profile", "huge", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "--profile: expected one of seed, smoke, got 'huge'" in err and "Traceback" not in err


def test_cli_tf32_on_cpu_names_mode_and_device(capsys):
    code = main(["run", "--workload", "resnet18", "--precision", "tf32", *SMOKE])
    assert code != 0
    err = capsys.readouterr().err
    assert "'tf32'" in err and "'cpu'" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("workload", ["bert", "resnet18"])
def test_cli_seed_profile_without_data_dir_names_the_option(capsys, workload):
    code = main(["run", "--workload", workload, "--precision", "fp32", "--profile", "seed",
                 "--device", "cpu", "--no-progress"])
    assert code == 1
    err = capsys.readouterr().err
    assert "--data-dir" in err and "Traceback" not in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cli_cuda_without_a_gpu_is_a_clear_error(capsys):
    code = main(["run", "--workload", "resnet18", "--precision", "fp32", "--profile", "smoke",
                 "--device", "cuda", "--no-progress"])
    assert code != 0
    err = capsys.readouterr().err
    assert err.startswith("ampcore: error:")
    assert "'cuda'" in err and "CUDA is not available" in err and "--device cpu" in err


# --- what the CLI asks to run (training replaced by a stub) -----------------------------------

@pytest.fixture
def recorded_runs(monkeypatch, make_result):
    """Replace training with a stub returning a made-up result; collect the specs asked for."""
    specs = []

    def fake_run_experiment(spec, progress=False):
        specs.append(spec)
        return make_result(workload=spec.workload, precision=spec.precision, profile=spec.profile,
                           device=spec.device)

    monkeypatch.setattr(ampcore.train.run, "run_experiment", fake_run_experiment)
    return specs


def test_cli_all_precisions_on_cpu_skips_tf32_with_a_note(recorded_runs, capsys):
    assert main(["run", "--workload", "all", "--precision", "all", *SMOKE]) == 0
    asked = [(s.workload, s.precision) for s in recorded_runs]
    assert asked == [(w, p) for w in ("bert", "resnet18", "llama")
                     for p in ("fp32", "amp-fp16", "amp-bf16")]
    assert all((s.profile, s.device) == ("smoke", "cpu") for s in recorded_runs)
    err = capsys.readouterr().err
    assert "skipped" in err and "'tf32'" in err and "'fp8'" in err and "'fp8-rowwise'" in err


def test_cli_passes_options_through_and_drops_repeats(recorded_runs, tmp_path):
    assert main(["run", "--workload", "bert", "--precision", "amp-bf16", "fp32", "amp-bf16",
                 *SMOKE, "--max-grad-norm", "1.5", "--max-length", "16", "--bert-model", "x",
                 "--allow-random-init", "--data-dir", str(tmp_path)]) == 0
    assert [s.precision for s in recorded_runs] == ["amp-bf16", "fp32"]
    spec = recorded_runs[0]
    assert (spec.max_grad_norm, spec.max_length, spec.model) == (1.5, 16, "x")
    assert spec.allow_random_init and not spec.allow_download and not spec.compile
    assert spec.data_dir == tmp_path


@pytest.mark.parametrize("argv, message", [
    (["--max-grad-norm", "nan"], "--max-grad-norm: expected a finite number > 0, got 'nan'"),
    (["--max-grad-norm", "0"], "--max-grad-norm: expected a finite number > 0, got '0'"),
    (["--max-length", "0"], "--max-length: expected a whole number >= 1, got '0'"),
    (["--nproc", "1.5"], "--nproc: expected a whole number >= 1, got '1.5'"),
    (["--cuda-graphs", "maybe"], "--cuda-graphs: expected one of auto, on, off, got 'maybe'"),
    (["--max-grad-norm", "-1"], "--max-grad-norm: expected a finite number > 0, got '-1'"),
    (["--max-length", "-5"], "--max-length: expected a whole number >= 1, got '-5'"),
    (["--device", "tpu"], "--device: expected cpu, cuda or cuda:N, got 'tpu'"),
    (["--device", "mps"], "--device: expected cpu, cuda or cuda:N, got 'mps'"),
    (["--device", "meta"], "--device: expected cpu, cuda or cuda:N, got 'meta'"),
    (["--inject", "slow"], "--inject: unknown injection 'slow'; valid: attention-fallback, "
     "autocast-fp32-op, host-overhead, extra-sync, host-check, optimizer-unfused, activation-memory, "
     "accuracy-loss, gpu-work"),
    (["--llama-model", "llama-huge"], "--llama-model: unknown llama architecture 'llama-huge'; "
     "valid: llama-125m, llama-wide, builtin:tiny, or llama:hidden=H,layers=L,heads=A,"
     "intermediate=I"),
    (["--llama-model", "llama:hidden=64"], "--llama-model: llama architecture "
     "'llama:hidden=64' lacks layers, heads, intermediate"),
], ids=["grad-norm-nan", "grad-norm-0", "max-length-0", "nproc-1.5", "cuda-graphs",
        "grad-norm--1", "max-length--5", "device-tpu", "device-mps", "device-meta",
        "inject-unknown", "llama-model-unknown", "llama-model-incomplete"])
def test_cli_bad_value_exits_2_before_training(recorded_runs, capsys, argv, message):
    assert main(["run", "--workload", "resnet18", "--precision", "fp32", *SMOKE, *argv]) == 2
    err = capsys.readouterr().err
    assert f"ampcore: error: {message}" in err and "Traceback" not in err
    assert recorded_runs == []  # nothing trained


def test_cli_unwritable_json_exits_2_before_training(recorded_runs, tmp_path, capsys):
    (tmp_path / "plain-file").write_text("not a directory")
    targets = [tmp_path / "plain-file" / "r.json"]
    if Path("/proc").is_dir():
        targets.append(Path("/proc") / "ampcore-out" / "r.json")
    for target in targets:
        assert main(["run", "--workload", "resnet18", "--precision", "fp32", *SMOKE,
                     "--json", str(target)]) == 2
        err = capsys.readouterr().err
        assert f"--json {target} cannot be written" in err and "Traceback" not in err
    assert recorded_runs == []  # nothing trained


def test_write_json_is_atomic(tmp_path, make_result, monkeypatch):
    """A failure while writing leaves no half-written file that would block the next try."""
    results = [make_result(), make_result(precision="fp32")]
    monkeypatch.setattr(type(results[1]), "to_dict", lambda self: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        write_json(results, tmp_path / "r.json")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def interrupted_runs(monkeypatch, make_result):
    """Training stubbed: the first run finishes, the second is interrupted (Ctrl-C)."""
    def fake_run_experiment(spec, progress=False):
        if spec.precision != "fp32":
            raise KeyboardInterrupt
        return make_result(workload=spec.workload, precision=spec.precision, profile=spec.profile,
                           device=spec.device)

    monkeypatch.setattr(ampcore.train.run, "run_experiment", fake_run_experiment)


@pytest.mark.parametrize("given_json", [True, False], ids=["--json", "no-json"])
def test_ctrl_c_keeps_the_finished_runs_marked_partial(interrupted_runs, tmp_path, capsys,
                                                      monkeypatch, given_json):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    path = tmp_path / "r.json"
    argv = ["run", "--workload", "resnet18", "--precision", "fp32", "amp-bf16", *SMOKE]
    assert main(argv + (["--json", str(path)] if given_json else [])) == 130
    out, err = capsys.readouterr()
    if not given_json:
        (path,) = (tmp_path / "tmp").glob("ampcore-interrupted-*.json")
    assert f"wrote the 1 finished run(s) to {path} (marked \"partial\": true)" in err
    assert "| Regular (fp32)" in out and "ampcore: interrupted" in err
    assert json.loads(path.read_text())["partial"] is True
    assert [r.precision for r in read_json(path)] == ["fp32"]


def test_ctrl_c_before_any_run_finished_says_so(monkeypatch, tmp_path, capsys):
    def interrupted(spec, progress=False):
        raise KeyboardInterrupt

    monkeypatch.setattr(ampcore.train.run, "run_experiment", interrupted)
    path = tmp_path / "r.json"
    assert main(["run", "--workload", "resnet18", "--precision", "fp32", *SMOKE,
                 "--json", str(path)]) == 130
    assert "nothing to save" in capsys.readouterr().err and not path.exists()


def test_cli_data_dir_with_the_smoke_profile_is_reported_unused(recorded_runs, tmp_path, capsys):
    assert main(["run", "--workload", "resnet18", "--precision", "fp32", *SMOKE,
                 "--data-dir", str(tmp_path)]) == 0
    assert (f"note: --data-dir / $AMPCORE_DATA_DIR {tmp_path} is not used: the smoke profile "
            "trains on built-in data") in capsys.readouterr().err
    assert main(["run", "--workload", "resnet18", "--precision", "fp32", *SMOKE]) == 0
    assert "is not used" not in capsys.readouterr().err


def test_cli_nproc_beyond_the_cpu_cores_is_refused_before_training(recorded_runs, monkeypatch,
                                                                  capsys):
    from ampcore.launch import torchrun as launch

    monkeypatch.setattr(launch, "cpu_cores", lambda: 2)
    assert main(["run", "--workload", "resnet18", "--precision", "fp32", *SMOKE,
                 "--nproc", "3"]) == 2  # a value out of range: a usage error
    err = capsys.readouterr().err
    assert "2 CPU cores are available" in err and "use --nproc 2 or fewer" in err
    assert recorded_runs == []


def test_cli_bad_environment_value_names_the_variable(recorded_runs, capsys, monkeypatch):
    monkeypatch.setenv("AMPCORE_MAX_LENGTH", "long")
    assert main(["run", "--workload", "bert", "--precision", "fp32", *SMOKE]) == 2
    assert ("--max-length (from $AMPCORE_MAX_LENGTH): expected a whole number >= 1, got 'long'"
            in capsys.readouterr().err)
    assert recorded_runs == []


def test_cli_honours_the_environment_its_help_names(recorded_runs, tmp_path, monkeypatch):
    """AMPCORE_DATA_DIR, AMPCORE_BERT_MODEL and the rest, as the suite does; a flag wins."""
    monkeypatch.setenv("AMPCORE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("AMPCORE_BERT_MODEL", "my/bert")
    monkeypatch.setenv("AMPCORE_MAX_LENGTH", "24")
    monkeypatch.setenv("AMPCORE_ALLOW_RANDOM_INIT", "1")
    monkeypatch.setenv("AMPCORE_WORKLOADS", "resnet18")  # the flag below wins
    monkeypatch.setenv("AMPCORE_PRECISIONS", "amp-bf16")
    assert main(["run", "--workload", "bert", *SMOKE]) == 0
    (spec,) = recorded_runs
    assert (spec.workload, spec.precision) == ("bert", "amp-bf16")
    assert (spec.data_dir, spec.model, spec.max_length) == (tmp_path, "my/bert", 24)
    assert spec.allow_random_init and not spec.allow_download


def test_cli_help_needs_no_torch():
    code = ("import sys, contextlib, io\n"
            "from ampcore.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "    main(['run', '--help'])\n"
            "assert 'torch' not in sys.modules")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


# --- the results table ---------------------------------------------------------------------------

def test_results_table_speedup_and_random_init_note(make_result):
    fp32 = make_result(precision="fp32", round_times_s=[2.0, 4.0, 2.0], environment={"gpu": "H100"})
    amp = make_result(precision="amp-bf16", accuracy_meaningful=False)
    table = results_table([fp32, amp])
    assert table.startswith("### bert (seed profile, H100)")
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in table.splitlines() if line.startswith("| ") and "---" not in line}
    assert rows["Training Method"][2] == "Speedup vs fp32 (training time)"
    assert rows["Regular (fp32)"][:3] == ["8.0", "0.900", "1.00x"]
    assert rows["Mixed precision (bf16)"][:4] == ["4.0", "0.900 (random init)", "2.00x", "62"]
    # peak MiB, skipped steps, loss scale (a result saved before the scale's moves were)
    assert rows["Mixed precision (bf16)"][4:] == ["1,024", "3", "final 1024"]


# --- the module entry point ----------------------------------------------------------------------

@pytest.mark.slow
def test_python_dash_m_ampcore_runs(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "AMPCORE_DATA_DIR"}
    env["AMPCORE_CACHE_DIR"] = str(tmp_path / "cache")
    env["OMP_NUM_THREADS"] = "1"  # as one_cpu_thread does in this process
    proc = subprocess.run(
        [sys.executable, "-m", "ampcore", "run", "--workload", "resnet18", "--precision", "fp32",
         *SMOKE, "--json", str(tmp_path / "r.json")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "| Regular (fp32)" in proc.stdout
    assert [r.precision for r in read_json(tmp_path / "r.json")] == ["fp32"]


def test_cli_injection_that_cannot_apply_stops_before_training(isolated_env, capsys):
    # resnet18 has no attention layers: the build refuses, naming the kind and the workload
    status = main(["run", "--workload", "resnet18", "--precision", "fp32", *SMOKE,
                   "--inject", "attention-fallback"])
    err = capsys.readouterr().err
    assert status == 2, err
    assert "injection 'attention-fallback' cannot apply to workload 'resnet18'" in err
    assert "Traceback" not in err


# --- conventions: --version, - for stdout ---------------------------------------------------------

def test_cli_version_names_the_package_version(capsys):
    import ampcore
    from ampcore.history.__main__ import main as history_main

    for entry in (main, history_main):  # ampcore and python -m ampcore.history
        with pytest.raises(SystemExit) as exit_info:
            entry(["--version"])
        assert exit_info.value.code == 0
        assert capsys.readouterr().out.strip() == f"ampcore {ampcore.__version__}"


def test_cli_json_dash_writes_the_results_to_stdout_and_no_file(recorded_runs, tmp_path,
                                                               monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--workload", "resnet18", "--precision", "fp32", *SMOKE,
                 "--json", "-"]) == 0
    captured = capsys.readouterr()
    assert [r["precision"] for r in json.loads(captured.out)["runs"]] == ["fp32"]
    assert "| Regular (fp32)" in captured.err  # the table moves out of the JSON's way
    assert not (tmp_path / "-").exists()


def test_license_file_is_the_bsd_3_clause_pyproject_declares():
    from pathlib import Path

    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the backport pyproject depends on
        import tomli as tomllib
    root = Path(__file__).resolve().parent.parent
    declared = tomllib.loads((root / "pyproject.toml").read_text())["project"]["license"]
    text = (root / "LICENSE").read_text(encoding="utf-8")
    assert declared == "BSD-3-Clause" and text.startswith("BSD 3-Clause License")
    assert "ampcore developers" in text and "Neither the name of the copyright holder" in text
