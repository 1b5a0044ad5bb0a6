"""The public workload API (``ampcore.api``, docs/WORKLOADS.md): workloads and precision modes
from installed packages' entry points and from a conftest.py, what a build must return, and
the errors for plugins that fail to load, duplicate ids and fields of the wrong type.

Plugins are installed for real: a ``*.dist-info`` directory with ``entry_points.txt`` on
``sys.path`` (or ``PYTHONPATH`` for a child pytest), found by ``importlib.metadata``."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from ampcore.core import plugins, registry
from ampcore.core.errors import RegistrationError, UsageError, WorkloadContractError

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
SMOKE = ["--profile", "smoke", "--device", "cpu", "--no-progress"]


def doc_example() -> str:
    """The example workload of docs/WORKLOADS.md, as the docs show it."""
    text = (ROOT / "docs" / "WORKLOADS.md").read_text()
    section = text[text.index("## An example"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@pytest.fixture
def fresh_registries(monkeypatch):
    """The registries as they stand, restored after the test, with their plugins not loaded
    yet: the next read loads what the test installed."""
    for table in (registry.WORKLOADS, registry.PRECISIONS):
        monkeypatch.setattr(table, "_items", dict(table._items))
        monkeypatch.setattr(table, "_sources", dict(table._sources))
    discovery = plugins._Discovery()
    discovery.loader = registry._load_plugins
    monkeypatch.setattr(plugins, "_discovery", discovery)


def install(root: Path, dist: str, entry_points: dict[str, list[str]],
            modules: dict[str, str] | None = None) -> Path:
    """A distribution ``dist`` 1.0 with those entry points (group -> ["name = mod:attr"]) and
    modules, installed into ``root`` (put ``root`` on sys.path to see it)."""
    info = root / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("".join(
        f"[{group}]\n" + "".join(line + "\n" for line in lines)
        for group, lines in entry_points.items()))
    for name, source in (modules or {}).items():
        (root / f"{name}.py").write_text(source)
    return root


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    from ampcore.cli import main

    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


PLUGIN = '''
from ampcore.api import Precision, Workload, WorkloadConfig

SMOKE = WorkloadConfig(epochs=2, batch_size=32, lr=1e-2, train_samples=256, test_samples=128,
                       eval_samples=128, accuracy_floor=0.8)


def workloads():
    return [Workload("plugged", "the docs' blobs, from a package", "{example}:build",
                     configs={{"smoke": SMOKE}}, default=False)]


BF16 = Precision("amp-plugged", "amp-bf16 from a package", "Plugged (bf16)",
                 autocast="bfloat16")
'''


# --- the API ------------------------------------------------------------------------------

def test_the_api_names_and_version_and_no_torch_to_import_it():
    import ampcore.api as api

    assert api.API_VERSION == 1
    for name in api.__all__:
        assert getattr(api, name) is not None
    assert api.Workload is registry.Workload and api.register_workload is registry.register_workload
    code = ("import sys; from ampcore.api import Workload, register_workload, WorkloadConfig; "
            "assert 'torch' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_the_built_ins_are_registered_through_the_api():
    for workload_id in ("bert", "resnet18", "llama"):
        assert isinstance(registry.WORKLOADS[workload_id], registry.Workload)
        assert registry.WORKLOADS.source(workload_id) == plugins.BUILT_IN


@pytest.mark.parametrize(("changes", "message"), [
    ({"quality": "speed"}, r"workload 'toy': quality is 'speed'; expected 'accuracy' or 'loss'"),
    ({"configs": {}}, r"workload 'toy': configs is \{\}; expected a non-empty mapping"),
    ({"configs": {"smoke": {"epochs": 1}}}, r"workload 'toy': configs is .*WorkloadConfig"),
    ({"build": 3}, r"workload 'toy': build is 3; expected a function or 'module:function'"),
    ({"run_options": ("epochs",)}, r"workload 'toy': run_options is \('epochs',\)"),
    ({"id": "to y"}, r"workload id 'to y': expected a non-empty string without commas"),
    ({"data": "cifar"}, r"workload 'toy': data is 'cifar'; expected None or 'imdb' or 'mnist'"),
    ({"repeatable": "no"}, r"workload 'toy': repeatable is 'no'; expected True or False"),
])
def test_a_workload_field_of_the_wrong_type_names_the_field(changes, message):
    fields = dict(id="toy", description="toy", build="m:build",
                  configs={"smoke": registry.workload_entry("resnet18").config("smoke")})
    with pytest.raises(RegistrationError, match=message):
        registry.Workload(**{**fields, **changes})


def test_a_build_path_that_does_not_import_names_the_workload():
    toy = registry.Workload("toy", "toy", "no_such_module_for_ampcore:build",
                            configs={"smoke": registry.workload_entry("resnet18").config("smoke")})
    with pytest.raises(UsageError, match=r"^workload 'toy': its build 'no_such_module_for_"
                       r"ampcore:build' cannot be imported \(ModuleNotFoundError"):
        toy.build_function()


@pytest.mark.usefixtures("fresh_registries", "isolated_env")
def test_a_precision_implementation_that_does_not_import_is_a_usage_error(capsys):
    registry.register_precision(registry.Precision(
        "amp-lost", "lost", "Lost", autocast="bfloat16",
        implementation="no_such_module_for_ampcore:Active"))
    code, _, err = run_cli(capsys, "run", "--workload", "resnet18", "--precision", "amp-lost",
                           *SMOKE)
    assert code == 2 and "Traceback" not in err
    assert ("precision 'amp-lost': its implementation 'no_such_module_for_ampcore:Active' "
            "cannot be imported (ModuleNotFoundError") in err


# --- what build returns -------------------------------------------------------------------

def blobs_build(tmp_path, monkeypatch):
    """The docs' example, imported as a module; its registration undone by fresh_registries."""
    (tmp_path / "blobs_doc_example.py").write_text(doc_example())
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "blobs_doc_example", raising=False)
    import blobs_doc_example

    return blobs_doc_example.build


@pytest.mark.parametrize(("breaks", "message"), [
    (lambda w: setattr(w, "train_labels", w.train_labels.tolist()),
     "build returned train_labels of type list; expected a torch.Tensor on the run's device"),
    (lambda w: setattr(w, "test_inputs", {"x": w.test_inputs["x"].to("meta")}),
     "build returned test_inputs['x'] on meta; expected a torch.Tensor on the run's device"),
    (lambda w: setattr(w, "test_labels", w.test_labels[:-1]),
     "build returned test_inputs['x'] with 256 samples and test_labels with 255; expected "
     "the same number of samples"),
    (lambda w: setattr(w, "optimizer", None), "build returned optimizer of type NoneType; "
     "expected a torch.optim.Optimizer"),
    (lambda w: setattr(w, "flops_per_sample", float("nan")), "build returned flops_per_sample "
     "nan; expected None or a positive finite number"),
    (lambda w: setattr(w, "heldout_labels", None), "build returned heldout_labels of type "
     "NoneType"),
])
@pytest.mark.usefixtures("fresh_registries")
def test_a_build_returning_the_wrong_types_is_stopped_naming_the_field(
        tmp_path, monkeypatch, breaks, message):
    import torch

    from ampcore.workloads import get_workload

    build = blobs_build(tmp_path, monkeypatch)

    def broken(*args, **kwargs):
        workload = build(*args, **kwargs)
        breaks(workload)
        return workload

    registry.register_workload(registry.Workload("toy", "broken blobs", broken,
                                                 configs=registry.WORKLOADS["blobs"].configs))
    config = registry.WORKLOADS["toy"].config("smoke")
    with pytest.raises(WorkloadContractError, match=f"^workload 'toy': {re.escape(message)}"):
        get_workload("toy")(config, torch.device("cpu"), real_data=False, data_dir=None,
                            allow_download=False, allow_random_init=False)


@pytest.mark.usefixtures("fresh_registries", "isolated_env")
def test_a_build_returning_no_prepared_workload_fails_the_run_without_a_traceback(capsys):
    registry.register_workload(registry.Workload(
        "toy", "returns a dict", lambda config, device, **_: {"model": None},
        configs={"smoke": registry.workload_entry("resnet18").config("smoke")}))
    code, _, err = run_cli(capsys, "run", "--workload", "toy", "--precision", "fp32", *SMOKE)
    assert code == 1 and "Traceback" not in err
    assert ("workload 'toy': build returned a dict; expected an ampcore.api.PreparedWorkload"
            in err)


# --- plugins: entry points of installed packages -----------------------------------------------

@pytest.mark.usefixtures("fresh_registries", "isolated_env", "one_cpu_thread")
def test_an_installed_plugin_is_seen_by_every_face(tmp_path, monkeypatch, capsys):
    blobs_build(tmp_path, monkeypatch)
    install(tmp_path, "plugged-pkg", {
        plugins.WORKLOAD_GROUP: ["plugged = plugged_pkg:workloads"],
        plugins.PRECISION_GROUP: ["bf16 = plugged_pkg:BF16"]},
        {"plugged_pkg": PLUGIN.format(example="blobs_doc_example")})
    assert "plugged" in registry.WORKLOADS and "amp-plugged" in registry.PRECISIONS
    assert registry.WORKLOADS.source("plugged") == (
        "entry point 'plugged = plugged_pkg:workloads' (group ampcore.workloads) of "
        "distribution plugged-pkg 1.0")
    from ampcore.options import table as options

    suite = options.resolve(options.SUITE, {"workloads": "plugged"}, environ={})
    assert suite.workloads == ["plugged"]
    assert "plugged" in options.get_option("workloads").help_for(options.RUN)
    assert run_cli(capsys, "inject")[0] == 0
    code, out, err = run_cli(capsys, "run", "--workload", "plugged", "--precision", "fp32",
                             "amp-plugged", *SMOKE)
    assert code == 0, err
    assert "### plugged (smoke profile, cpu)" in out and "| Plugged (bf16)" in out
    # Its experiment is smoke only: seed is the usual usage error, nothing trained.
    code, _, err = run_cli(capsys, "run", "--workload", "plugged", "--precision", "fp32",
                           "--profile", "seed", "--device", "cpu", "--no-progress")
    assert code == 2 and "workload 'plugged' has no configuration for the 'seed' profile" in err


@pytest.mark.usefixtures("fresh_registries")
def test_a_plugin_that_fails_to_import_is_one_usage_error(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(install(tmp_path, "broken-pkg", {
        plugins.WORKLOAD_GROUP: ["broken = no_such_module_for_ampcore:WORKLOAD"]})))
    expected = ("entry point 'broken = no_such_module_for_ampcore:WORKLOAD' (group "
                "ampcore.workloads) of distribution broken-pkg 1.0 failed to load: "
                "ModuleNotFoundError: No module named 'no_such_module_for_ampcore'; fix it, or "
                "uninstall it (pip uninstall broken-pkg)")
    with pytest.raises(RegistrationError) as raised:
        registry.workload_entry("bert")
    assert str(raised.value) == expected
    for command in (["inject"], ["run", "--workload", "bert", *SMOKE]):
        code, _, err = run_cli(capsys, *command)
        assert (code, err) == (2, f"ampcore: error: {expected}\n")


def test_a_plugin_that_fails_to_import_stops_the_suite(tmp_path, pytester, monkeypatch):
    install(tmp_path / "site", "broken-pkg", {
        plugins.WORKLOAD_GROUP: ["broken = no_such_module_for_ampcore:WORKLOAD"]})
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))
    pytester.makepyfile(test_nothing="def test_nothing(amp_runs):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: entry point 'broken = no_such_module_for_ampcore:"
                                 "WORKLOAD' (group ampcore.workloads) of distribution "
                                 "broken-pkg 1.0 failed to load: ModuleNotFoundError*"])
    assert "Traceback" not in result.stderr.str()


@pytest.mark.parametrize("entry", ["odd = builtins:len", "odd = math:pi"])
@pytest.mark.usefixtures("fresh_registries")
def test_an_entry_point_giving_no_workload_is_refused(tmp_path, monkeypatch, entry):
    monkeypatch.syspath_prepend(str(install(tmp_path, "odd-pkg", {
        plugins.WORKLOAD_GROUP: [entry]})))
    with pytest.raises(RegistrationError, match=r"of distribution odd-pkg 1.0 (gave a float; "
                       r"expected an ampcore.api.Workload|failed to load: TypeError)"):
        list(registry.WORKLOADS)


@pytest.mark.usefixtures("fresh_registries")
def test_a_plugin_reusing_a_built_in_id_names_both_sources(tmp_path, monkeypatch):
    blobs_build(tmp_path, monkeypatch)
    module = PLUGIN.format(example="blobs_doc_example").replace('"plugged"', '"bert"')
    install(tmp_path, "dup-pkg", {plugins.WORKLOAD_GROUP: ["bert = dup_pkg:workloads"]},
            {"dup_pkg": module})
    with pytest.raises(RegistrationError, match=re.escape(
            "workload 'bert' is registered twice: by ampcore (built in) and by entry point "
            "'bert = dup_pkg:workloads' (group ampcore.workloads) of distribution dup-pkg 1.0; "
            "rename one of them, or uninstall one")):
        registry.workload_entry("bert")


@pytest.mark.usefixtures("fresh_registries")
def test_two_plugins_or_a_conftest_and_a_plugin_of_one_id_name_both(tmp_path, monkeypatch):
    blobs_build(tmp_path, monkeypatch)
    module = PLUGIN.format(example="blobs_doc_example")
    for dist in ("first-pkg", "second-pkg"):
        install(tmp_path, dist, {plugins.WORKLOAD_GROUP: [f"p = {dist[:-4]}_plugin:workloads"]},
                {f"{dist[:-4]}_plugin": module})
    with pytest.raises(RegistrationError, match=r"workload 'plugged' is registered twice: by "
                       r"entry point .* of distribution (first|second)-pkg 1.0 and by entry "
                       r"point .* of distribution (second|first)-pkg 1.0"):
        list(registry.WORKLOADS)
    # Registered by a conftest's line after the plugin was loaded: both named the same way.
    here = registry.Workload("plugged", "mine", "m:f", configs=registry.WORKLOADS["blobs"].configs)
    with pytest.raises(RegistrationError, match=r"registered twice: by entry point .* and by "
                       r"register call at .*test_workload_api.py:\d+"):
        registry.register_workload(here)


# --- a conftest's workload in the suite ----------------------------------------------------------

def test_a_conftest_workload_runs_through_the_suite(pytester, monkeypatch):
    """The docs' example as a conftest: the suite's own tests train, judge and report it."""
    pytester.makeconftest(doc_example())
    pytester.path.joinpath("test_amp.py").write_text((ROOT / "benchmarks" / "test_amp.py").read_text())
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("AMPCORE_DATA_DIR", raising=False)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-ra", "--amp-profile", "smoke", "--amp-device", "cpu",
        "--amp-workloads", "blobs", "--amp-precisions", "fp32,amp-bf16")
    # train x 2, accuracy parity and health pass; the speedup (not asserted), the loss parity
    # (blobs is judged by accuracy) and the measured-claim check are not generated for blobs.
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*ampcore: AMP training summary*",
                                 "### blobs (smoke profile, cpu)"])
    # pytest-benchmark's own table, printed before or after the summary by its version
    result.stdout.fnmatch_lines(["*test_train?blobs-fp32?*"])


def test_a_family_from_scratch_is_not_repeatable_and_says_so_in_its_entry():
    """torchvision models train from random weights through cuDNN's non-deterministic kernels:
    their parity asks for several seeds on a GPU (``gates.parity_verdict``)."""
    assert registry.workload_entry("torchvision:resnet50").repeatable is False
    assert registry.workload_entry("bert").repeatable is True
