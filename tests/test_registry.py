"""The registries are the only lists: a workload and a precision registered from inside a test
train and are reported through ``ampcore run`` and through the suite, with no other file
touched; and the faces (suite, CLI, tables, benchmarks) hold no list or id test of their own."""

import contextlib
import io
import json
import re
from pathlib import Path

import pytest

from ampcore.core import registry
from ampcore.train.precision import ActivePrecision

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ["--profile", "smoke", "--device", "cpu", "--no-progress"]
TOY_METHOD = "Toy mixed precision (bf16)"


# --- the toy workload and precision, defined here -------------------------------------------

def build_toy(config, device, **kwargs):
    """resnet18's smoke builder under another id."""
    from ampcore.workloads import resnet18

    return resnet18.build(config, device, **kwargs)


class ToyActive(ActivePrecision):
    """amp-bf16's behaviour under another id; counts its activations to prove it was used."""

    activations = []

    def __init__(self, precision, device):
        ToyActive.activations.append(precision.id)
        super().__init__(precision, device)


def toy_entries(module: str, ddp: bool = False):
    # Its experiment, in the one profile it runs in, is part of the entry: no profile is edited.
    smoke = registry.workload_entry("resnet18").config("smoke")
    workload = registry.Workload("toy", "resnet18's smoke builder under a new id",
                                 f"{module}:build_toy", configs={"smoke": smoke}, ddp=ddp)
    precision = registry.Precision("amp-toy", "amp-bf16 under a new id", TOY_METHOD,
                                   autocast="bfloat16", implementation=f"{module}:ToyActive")
    return workload, precision


@pytest.fixture
def toy_registered(monkeypatch):
    workload, precision = toy_entries(__name__)
    monkeypatch.setitem(registry.WORKLOADS, "toy", workload)
    monkeypatch.setitem(registry.PRECISIONS, "amp-toy", precision)
    monkeypatch.setattr(ToyActive, "activations", [])


@pytest.mark.usefixtures("isolated_env", "one_cpu_thread", "toy_registered")
def test_a_registered_toy_trains_and_is_reported_by_the_cli(tmp_path):
    from ampcore.cli import main
    from ampcore.train.result import read_json

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["run", "--workload", "toy", "--precision", "amp-toy", *SMOKE,
                     "--json", str(tmp_path / "r.json")])
    assert code == 0, err.getvalue()
    assert "### toy (smoke profile, cpu)" in out.getvalue()
    assert f"| {TOY_METHOD}" in out.getvalue()
    assert ToyActive.activations == ["amp-toy"]
    (result,) = read_json(tmp_path / "r.json")
    assert (result.workload, result.precision) == ("toy", "amp-toy")
    assert result.final_accuracy > 0.5


@pytest.mark.usefixtures("toy_registered")
def test_the_toy_ids_are_options_of_both_faces():
    from ampcore.options import table as options

    for command in (options.RUN, options.SUITE):
        s = options.resolve(command, {"workloads": "toy", "precisions": "all"}, environ={})
        assert s.workloads == ["toy"] and "amp-toy" in s.precisions
        assert "toy" in options.get_option("workloads").help_for(command)


@pytest.mark.usefixtures("isolated_env", "toy_registered")
def test_a_workload_without_a_config_for_the_profile_is_a_usage_error(capsys):
    """The toy runs in smoke only: asking for it in seed is a usage error naming both, from
    the spec, from ``ampcore run`` (exit 2, nothing trained) and from the suite."""
    from ampcore.cli import main
    from ampcore.core.errors import UsageError
    from ampcore.train.spec import RunSpec

    with pytest.raises(UsageError, match=r"^workload 'toy' has no configuration for the 'seed' "
                       r"profile \(it has: smoke\)"):
        RunSpec("toy", "fp32", "seed").workload_config()
    assert main(["run", "--workload", "toy", "--precision", "fp32", "--profile", "seed",
                 "--device", "cpu", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "workload 'toy' has no configuration for the 'seed' profile" in err
    assert "Traceback" not in err
    # The suite: its first case ends the session with the same usage error.
    from ampcore.options import table as options
    from ampcore.suite.session import SuiteSession

    settings = options.resolve(options.SUITE, {"workloads": "toy", "profile": "seed",
                                               "device": "cpu"}, environ={})
    with pytest.raises(pytest.exit.Exception) as exited:
        SuiteSession(settings, config=None).request
    assert exited.value.returncode == pytest.ExitCode.USAGE_ERROR
    assert "workload 'toy' has no configuration for the 'seed' profile" in str(exited.value)


TOY_MODULE = '''
from ampcore.core import registry
{source}

def register():
    workload, precision = toy_entries("toy_ampcore", ddp=True)
    registry.register_workload(workload)
    registry.register_precision(precision)
'''


@pytest.mark.slow
def test_a_registered_toy_runs_through_the_suite(pytester, monkeypatch, tmp_path):
    """A conftest registers the toy; the real benchmark files train, gate and report it, and
    its DDP benchmarks are parametrized (then skip on a CPU)."""
    import inspect

    source = "\n\n".join(inspect.getsource(obj) for obj in (build_toy, ToyActive, toy_entries))
    source = "from ampcore.train.precision import ActivePrecision\nTOY_METHOD = %r\n\n%s" % (TOY_METHOD, source)
    pytester.makepyfile(toy_ampcore=TOY_MODULE.format(source=source))
    pytester.makeconftest("import toy_ampcore\ntoy_ampcore.register()\n")
    for name in ("test_amp.py", "test_ddp.py"):
        pytester.path.joinpath(name).write_text((ROOT / "benchmarks" / name).read_text())
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("AMPCORE_DATA_DIR", raising=False)
    out = tmp_path / "bench.json"
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-ra", "--amp-profile", "smoke", "--amp-device", "cpu",
        "--amp-workloads", "toy", "--amp-precisions", "amp-toy,fp32", f"--benchmark-json={out}")
    # train x 2, parity, health pass; the 2 DDP trains skip (--amp-nproc); the speedup (not
    # asserted for toy), the loss parity (toy is judged by accuracy), the measured-claim check
    # and the DDP speedup are not generated for toy.
    result.assert_outcomes(passed=4, skipped=2)
    result.stdout.fnmatch_lines([
        "*ampcore: AMP training summary*", "### toy (smoke profile, cpu)",
        f"| {TOY_METHOD}*", "*SKIPPED*DDP benchmarks need --amp-nproc >= 2 CUDA GPUs*"])
    saved = json.loads(out.read_text())["benchmarks"]
    assert sorted((b["name"], b["group"]) for b in saved) == [
        ("test_train[toy-amp-toy]", "toy"), ("test_train[toy-fp32]", "toy")]
    toy = next(b for b in saved if b["name"] == "test_train[toy-amp-toy]")["extra_info"]
    assert toy["precision"] == "amp-toy" and toy["speedup_vs_fp32"] > 0


# --- the faces hold no list of their own ----------------------------------------------------------

FACES = [ROOT / "ampcore" / "cli.py", ROOT / "ampcore" / "api.py",
         ROOT / "ampcore" / "judge" / "table.py",
         *sorted((ROOT / "ampcore" / "options").glob("*.py")),
         *sorted((ROOT / "ampcore" / "suite").rglob("*.py")), *sorted((ROOT / "benchmarks").glob("*.py"))]
ID_TEST = re.compile(r"""[=!]=\s*["'](?:%s)["']""" % "|".join(
    re.escape(i) for i in [*registry.WORKLOADS, *registry.PRECISIONS]))


@pytest.mark.parametrize("path", FACES, ids=lambda p: str(p.relative_to(ROOT)))
def test_faces_compare_no_ids(path):
    """Traits come from the registry entries (``mixed``, ``asserts_speedup``, ``ddp``,
    ``method_name``, ``REFERENCE_PRECISION``), not from tests of an id."""
    hits = [line for line in path.read_text().splitlines() if ID_TEST.search(line)]
    assert hits == []


def test_speedup_claims_name_registered_modes_and_a_bound_above_one():
    """Each measured claim names a registered workload and two mixed precisions, the one it
    beats being the one it builds on, and asserts a real gain."""
    assert registry.SPEEDUP_CLAIMS
    for claim in registry.SPEEDUP_CLAIMS:
        precision = registry.get_precision(claim.precision)
        assert precision.mixed and registry.get_precision(claim.over).mixed
        assert precision.builds_on == claim.over
        registry.workload_entry(claim.workload)
        assert claim.min_speedup > 1.0 and "docs/" in claim.measured
    assert [c.model for c in registry.speedup_claims("llama", "fp8")] == ["llama-wide"]
    assert registry.speedup_claims("bert", "fp8") == []
    assert registry.speedup_claims("llama", "amp-bf16") == []


@pytest.mark.parametrize(("model", "compiled", "held"), [
    ("llama-wide", True, True), ("llama-wide", False, False), ("llama-125m", True, False)])
def test_a_run_is_held_to_the_claim_of_its_architecture_and_compile_setting(model, compiled, held):
    claim = registry.claim_for("llama", "fp8", model, compiled)
    assert (claim is not None) == held
    assert registry.claim_for("llama", "amp-bf16", model, compiled) is None
