"""The matrix generates only the tests that can judge their case (issue 26, items 7 and 9):
a structural skip is no test at all, and the CPU matrix leaves emulated modes out unless named.
Collection only (nothing trains), in a subprocess on ampcore's own ``benchmarks``."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ampcore.options import table
from ampcore.suite import cases

ROOT = Path(__file__).resolve().parents[1]
SMOKE_CPU = ("--amp-profile", "smoke", "--amp-device", "cpu")


def run_suite(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``pytest benchmarks ARGS`` from the repository root, without the caller's AMPCORE_*."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AMPCORE_")}
    return subprocess.run([sys.executable, "-m", "pytest", "benchmarks", "-p", "no:cacheprovider",
                           *args], cwd=ROOT, env={**clean, **(env or {})}, capture_output=True,
                          text=True, timeout=300)


def collected(*args: str, env: dict[str, str] | None = None) -> set[str]:
    result = run_suite("--collect-only", "-q", *args, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return {line.split("::", 1)[1] for line in result.stdout.splitlines() if "::" in line}


def test_structural_skips_are_not_generated_and_runnable_cases_are():
    ids = collected(*SMOKE_CPU, "--amp-workloads", "bert,resnet18,llama",
                    "--amp-precisions", "fp32,amp-bf16,fp8")
    # Runnable: each test's own cases (tf32-like device skips stay tests; see below).
    assert {"test_loss_parity[llama-amp-bf16]", "test_accuracy_parity[bert-amp-bf16]",
            "test_accuracy_parity[resnet18-fp8]", "test_amp_beats_fp32[bert-amp-bf16]",
            "test_precision_pays_where_measured[llama-fp8]", "test_amp_health[llama-fp8]",
            "test_ddp_amp_beats_fp32[bert-fp8]"} <= ids
    # Structural: loss-judged vs accuracy-judged, no asserted speedup, no measured claim.
    for absent in ("test_loss_parity[bert-amp-bf16]", "test_loss_parity[resnet18-fp8]",
                   "test_accuracy_parity[llama-amp-bf16]", "test_amp_beats_fp32[resnet18-amp-bf16]",
                   "test_amp_beats_fp32[llama-fp8]", "test_precision_pays_where_measured[bert-fp8]",
                   "test_precision_pays_where_measured[llama-amp-bf16]"):
        assert absent not in ids, absent
    assert not any(i.endswith("[none]") for i in ids)


def test_a_test_with_no_case_left_is_no_test_and_no_skip():
    """Without llama, test_loss_parity and test_precision_pays_where_measured judge nothing:
    they are not collected at all, not one skipped placeholder each."""
    ids = collected(*SMOKE_CPU, "--amp-workloads", "bert,resnet18")
    assert not any(i.startswith(("test_loss_parity", "test_precision_pays")) for i in ids), ids
    result = run_suite(*SMOKE_CPU, "--amp-workloads", "resnet18", "-rs",
                       "-k", "test_loss_parity or test_precision_pays or test_amp_beats")
    assert "skipped" not in result.stdout and "SKIPPED" not in result.stdout, result.stdout
    assert result.returncode == pytest.ExitCode.NO_TESTS_COLLECTED, result.stdout


def test_a_skip_that_depends_on_the_run_stays_a_test():
    """tf32 on a CPU is the device's limit, not the case's: the test is there and skips."""
    ids = collected(*SMOKE_CPU, "--amp-workloads", "bert", "--amp-precisions", "fp32,tf32")
    assert "test_train[bert-tf32]" in ids


def test_the_cpu_default_matrix_leaves_out_fp16_emulation():
    result = run_suite("--collect-only", "-q", *SMOKE_CPU)
    ids = result.stdout
    assert "test_train[bert-amp-bf16]" in ids and "test_train[bert-fp32]" in ids
    assert "amp-fp16" not in ids.replace("amp-fp16 left out", "")
    assert "amp-fp16 left out of the CPU matrix" in ids


@pytest.mark.parametrize("named", [("--amp-precisions", "fp32,amp-fp16"), ()])
def test_a_named_fp16_still_runs_on_a_cpu(named):
    env = None if named else {"AMPCORE_PRECISIONS": "fp32,amp-fp16"}
    ids = collected(*SMOKE_CPU, *named, env=env)
    assert {"test_train[bert-amp-fp16]", "test_amp_health[resnet18-amp-fp16]"} <= ids


def settings_for(given: dict[str, object]) -> table.Settings:
    return table.resolve(table.SUITE, given, environ={})


@pytest.mark.parametrize(("given", "left_out"), [
    ({"device": "cpu"}, ["amp-fp16"]),
    ({"device": "cuda"}, []),  # a GPU's fp16 is real: kept
    ({"device": "cpu", "precisions": "amp-fp16,amp-bf16"}, []),  # named: kept
])
def test_matrix_precisions(given, left_out):
    device = given["device"]  # the session's resolved device
    precisions, dropped = cases.matrix_precisions(settings_for(given), lambda: device)
    assert dropped == left_out
    assert set(precisions) | set(dropped) == set(settings_for(given).precisions)


def test_the_device_is_asked_only_when_a_default_mode_is_emulated():
    def no_device() -> str:
        raise AssertionError("the device was asked for")

    settings = dataclasses.replace(settings_for({}), precisions=["fp32", "amp-bf16"])
    assert cases.matrix_precisions(settings, no_device) == (["fp32", "amp-bf16"], [])
    named = settings_for({"precisions": "fp32,amp-fp16"})
    assert cases.matrix_precisions(named, no_device) == (["fp32", "amp-fp16"], [])


# Collects in-process (pytest.main) so the check sees every module collection imported.
COLLECT_WITHOUT_TORCH = """
import sys, pytest
code = pytest.main(["benchmarks", "--collect-only", "-q", "-p", "no:cacheprovider", *sys.argv[1:]])
assert code == pytest.ExitCode.OK, code
heavy = [m for m in ("torch", "scipy") if m in sys.modules]
assert not heavy, f"collecting the matrix imported {heavy}"
"""


@pytest.mark.parametrize("needs_no_device", [("--amp-device", "cpu"),
                                             ("--amp-precisions", "fp32,amp-bf16,amp-fp16")])
def test_collecting_the_smoke_matrix_imports_no_torch(needs_no_device):
    """torch (about 1.5 s) only when the matrix must ask torch for the device: no device
    named and a default mode emulated on a CPU (amp-fp16); scipy (~0.8 s) only when a
    statistic is computed."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AMPCORE_")}
    result = subprocess.run([sys.executable, "-c", COLLECT_WITHOUT_TORCH, "--amp-profile",
                             "smoke", *needs_no_device], cwd=ROOT, env=clean,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_only_float16_autocast_is_emulation_on_a_cpu():
    assert cases.cpu_emulated("amp-fp16")
    assert not any(cases.cpu_emulated(p) for p in ("fp32", "tf32", "amp-bf16", "fp8"))


def test_the_collection_report_says_what_the_suite_times_with():
    """pytest-benchmark's header lists calibration defaults the suite's rounds do not use."""
    result = run_suite("--collect-only", "-q", *SMOKE_CPU, "--amp-workloads", "bert")
    assert "only timer and disable_gc apply" in result.stdout
