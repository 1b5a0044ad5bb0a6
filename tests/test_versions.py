"""The supported range: pyproject's lower bounds, the oldest-set pins and ampcore.core.versions agree,
and a library below its floor stops a run with its name, version and floor."""

import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from ampcore.core import versions
from ampcore.cli import main

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

pytest_plugins = ["pytester"]
ROOT = Path(__file__).resolve().parent.parent
OLD = {"transformers": "4.40.2", "torch": "2.4.1+cu121"}


def declared_lower_bounds() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = project["dependencies"] + project["optional-dependencies"]["bench"]
    bounds = {}
    for line in lines:
        requirement = Requirement(line)
        for spec in requirement.specifier:
            if spec.operator == ">=":
                bounds[requirement.name] = spec.version
    return bounds


def oldest_pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / ".ci" / "oldest.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[name.strip()] = version.strip()
    return pins


def test_floors_are_pyprojects_lower_bounds_and_the_oldest_pins():
    bounds = declared_lower_bounds()
    assert {name: bounds[name] for name in versions.FLOORS} == versions.FLOORS
    assert oldest_pins() == versions.FLOORS


def fake_versions(monkeypatch, old=OLD):
    real = versions.installed_version
    monkeypatch.setattr(versions, "installed_version", lambda name: old.get(name) or real(name))


def test_a_library_below_its_floor_is_named_with_its_version_and_the_floor(monkeypatch):
    fake_versions(monkeypatch)
    with pytest.raises(versions.UnsupportedVersionError) as info:
        versions.check()
    message = str(info.value)
    assert "transformers 4.40.2 is older than 4.46.3" in message
    assert "torch 2.4.1+cu121 is older than 2.5.1" in message
    assert "pip install -U 'torch>=2.5.1' 'transformers>=4.46.3'" in message
    assert "datasets" not in message  # the installed one is in range


def test_the_installed_libraries_are_in_range():
    assert versions.problem(versions.FLOORS) is None


@pytest.mark.parametrize("version, older", [
    ("2.5.1", False), ("2.5.1+cu124", False), ("2.5.1a0+e000cf0ad9.nv24.10", False),
    ("2.11.0", False), ("2.5.0", True), ("2.4.1+cu121", True), ("not-a-version", False)])
def test_vendor_builds_of_a_supported_release_are_that_release(version, older):
    assert versions.is_older(version, "2.5.1") is older


def test_an_absent_library_is_not_judged():
    assert versions.too_old({"torchao": "0.1"}, lambda name: None) == []


def test_ampcore_run_stops_before_training(monkeypatch, capsys, tmp_path):
    fake_versions(monkeypatch)
    status = main(["run", "--workload", "bert", "--precision", "fp32", "--profile", "smoke",
                   "--device", "cpu", "--json", str(tmp_path / "out.json")])
    err = capsys.readouterr().err
    assert status == 1 and "transformers 4.40.2 is older than 4.46.3" in err
    assert "Traceback" not in err and not (tmp_path / "out.json").exists()


def test_the_training_path_stops_at_the_workload(monkeypatch):
    from ampcore.workloads import get_workload

    fake_versions(monkeypatch, {"tokenizers": "0.19.1"})
    with pytest.raises(versions.UnsupportedVersionError,
                       match="tokenizers 0.19.1 is older than 0.20.3"):
        get_workload("bert")


def test_the_suite_stops_once_at_its_first_training_test(pytester, monkeypatch):
    # The plugin loads before any conftest; the first fixture that trains checks the floors.
    monkeypatch.setenv("AMPCORE_DEVICE", "cpu")
    pytester.makeconftest("from ampcore.core import versions\n"
                          "versions.installed_version = lambda name: {'pytest-benchmark': '4.0.0'}"
                          ".get(name, '99')\n")
    pytester.makepyfile(test_inner="def test_a(amp_runs):\n    pass\n\n"
                                   "def test_b(amp_runs):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["*pytest-benchmark 4.0.0 is older than 5.1.0*"])
    assert "passed" not in result.stdout.str()
