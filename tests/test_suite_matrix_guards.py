"""Sessions the suite stops once, up front (issue 26, items 7 and 8): the seed profile without
its data sets, and -n (pytest-xdist) on a session that collects the matrix. Nothing trains."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ampcore.options import table
from ampcore.data import MNIST_RAW_FILES
from ampcore.suite import guards

ROOT = Path(__file__).resolve().parents[1]
SEED_CPU = ("--amp-profile", "seed", "--amp-device", "cpu")

pytest_plugins = ["pytester"]


def run_suite(*args: str) -> subprocess.CompletedProcess:
    """``pytest benchmarks ARGS`` from the repository root, without the caller's AMPCORE_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AMPCORE_")}
    return subprocess.run([sys.executable, "-m", "pytest", "benchmarks", "-p", "no:cacheprovider",
                           "-W", "ignore", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_the_seed_profile_without_its_data_stops_once_at_the_start(tmp_path):
    result = run_suite(*SEED_CPU, "--amp-data-dir", str(tmp_path / "none"))
    output = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert output.count("the seed profile trains on the real data sets") == 1, output
    assert "IMDB for bert" in output and "MNIST for resnet18" in output
    # Not one failure per test, each with the loader's own message.
    assert "failed" not in output and "IMDB data not found" not in output


def test_the_data_check_covers_only_the_workloads_that_will_run(tmp_path):
    result = run_suite(*SEED_CPU, "--amp-data-dir", str(tmp_path), "-k", "resnet18")
    output = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert "MNIST for resnet18" in output and "IMDB" not in output.split("expected layout")[0]


def settings(data_dir: Path | None, download: bool = False) -> table.Settings:
    given = {"data_dir": str(data_dir) if data_dir else None, "download": download or None}
    return table.resolve(table.SUITE, given, environ={})


def test_data_problem_is_none_where_the_data_sets_are(tmp_path):
    (tmp_path / "imdb").mkdir()
    (tmp_path / "imdb" / "train.parquet").touch()
    raw = tmp_path / "mnist" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in MNIST_RAW_FILES:
        (raw / f"{name}.gz").touch()  # gzipped files are a data set too
    assert guards.data_problem(settings(tmp_path), True, ["bert", "resnet18", "llama"]) is None


def test_data_problem_names_each_missing_set_and_its_workloads(tmp_path):
    problem = guards.data_problem(settings(tmp_path), True, ["bert", "llama", "resnet18"])
    assert "IMDB for bert, llama" in problem and "MNIST for resnet18" in problem
    assert "--amp-data-dir" in problem and "--amp-download" in problem


def test_a_workload_is_checked_by_the_data_set_it_names(tmp_path, monkeypatch):
    """The check follows ``Workload.data``, not the module that builds it: a family name reads
    its family's set; a workload naming none (a user's own data) is left to its loader."""
    from ampcore.core import registry
    from ampcore.core.profiles import WorkloadConfig
    own = registry.Workload("own-data", "reads its own files", "mine:build",
                            configs={"seed": WorkloadConfig(epochs=1, batch_size=1, lr=1.0)})
    monkeypatch.setitem(registry.WORKLOADS, own.id, own)
    problem = guards.data_problem(settings(tmp_path), True, ["torchvision:resnet50", own.id])
    assert "MNIST for torchvision:resnet50" in problem and "own-data" not in problem
    assert guards.data_problem(settings(tmp_path), True, [own.id]) is None


def test_every_data_set_a_workload_may_name_has_its_check():
    from ampcore.core.entries import DATA_SETS
    from ampcore.data import DATA_CHECKS
    assert set(DATA_SETS) == set(DATA_CHECKS)


@pytest.mark.parametrize("case", ["smoke profile", "download allowed"])
def test_no_data_problem_where_nothing_is_read_or_it_may_be_fetched(tmp_path, case):
    real_data, download = (False, False) if case == "smoke profile" else (True, True)
    assert guards.data_problem(settings(tmp_path, download), real_data, ["bert"]) is None


def test_xdist_on_the_suite_is_refused_with_why_and_what_to_do():
    pytest.importorskip("xdist")
    result = run_suite("-n", "2", "--amp-profile", "smoke", "--amp-device", "cpu")
    output = result.stdout + result.stderr
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, output
    assert "each worker would train" in output and "not comparable" in output
    assert "without -n" in output and "pytest tests -n auto" in output
    assert "passed" not in output and "INTERNALERROR" not in output


def test_xdist_on_unit_tests_is_not_refused(pytester, monkeypatch):
    """The plugin is active in every session (pytest11): only the matrix makes -n a refusal."""
    pytest.importorskip("xdist")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_unit="def test_a():\n    pass\n\ndef test_b():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2", "-W", "ignore")
    result.assert_outcomes(passed=2)
    assert result.ret == pytest.ExitCode.OK
