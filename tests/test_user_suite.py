"""The suite in a user's repository (docs/YOUR-MODEL.md): a conftest registers a workload, one
test file is ``from ampcore.suite.matrix import *``, and ``pytest`` runs the whole matrix on it
(train, speedup, parity, health, DDP), saves histories with raw rounds without any conftest
hook, and ``ampcore compare`` gates them. Also: the example package under examples/my-model
is the code docs/YOUR-MODEL.md shows."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "my-model"
ONE_LINE = "from ampcore.suite.matrix import *  # noqa: F401,F403\n"
# A plain pytest-benchmark test: ampcore must leave its saved entry alone.
PLAIN = "def test_plain(benchmark):\n    benchmark(sum, range(100))\n"
SMOKE = ["-p", "no:cacheprovider", "--amp-device", "cpu", "--amp-profile", "smoke",
         "--amp-workloads", "blobs", "--amp-precisions", "fp32,amp-bf16"]


def doc_example() -> str:
    """The example workload of docs/WORKLOADS.md (the blobs), as the docs show it."""
    text = (ROOT / "docs" / "WORKLOADS.md").read_text()
    return re.search(r"```python\n(.*?)```", text[text.index("## An example"):], re.S).group(1)


@pytest.fixture
def user_repo(pytester, monkeypatch):
    """A repository of the user's: its own conftest workload (the docs' blobs), the one-line
    matrix file, and loose limits on time and speed (rounds of a few milliseconds on a shared
    CPU move by more than the 5 % defaults between two sessions)."""
    pytester.makeconftest(doc_example())
    pytester.makepyfile(test_matrix=ONE_LINE)
    pytester.makefile(".toml", pyproject="[tool.ampcore.compare]\ntime = 1.0\nspeedup = 1.0\n"
                      "host_time = 1.0\neager_time = 1.0\nround_cv = 1.0\n")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # two processes on two cores: one thread each
    for name in ("AMPCORE_DATA_DIR", "AMPCORE_WORKLOADS", "AMPCORE_PRECISIONS"):
        monkeypatch.delenv(name, raising=False)
    return pytester


def saved(storage: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(storage.rglob("*.json"))]


@pytest.mark.slow
def test_the_matrix_runs_in_a_user_repository_and_compare_gates_it(user_repo, tmp_path):
    storage = tmp_path / "storage"
    for _ in range(2):  # a baseline, then a candidate
        result = user_repo.runpytest_subprocess(
            *SMOKE, "-ra", "--benchmark-autosave", f"--benchmark-storage=file://{storage}")
        # train x 2, parity and health pass; the speedup (not asserted), loss parity and
        # measured claim are not generated, and DDP (blobs has none) says why.
        result.assert_outcomes(passed=4, skipped=2)
        result.stdout.fnmatch_lines(["*ampcore: AMP training summary*",
                                     "*SKIPPED*no workload with DDP benchmarks*"])
    runs = saved(storage)
    assert len(runs) == 2
    for run in runs:
        benches = {b["fullname"]: b for b in run["benchmarks"]}
        assert sorted(benches) == ["test_matrix.py::test_train[blobs-amp-bf16]",
                                   "test_matrix.py::test_train[blobs-fp32]"]
        for bench in benches.values():
            assert len(bench["stats"]["data"]) >= 10  # raw rounds, with no conftest hook

    verdict = tmp_path / "verdict.json"
    compare = subprocess.run(
        [sys.executable, "-m", "ampcore", "compare", str(storage), "--json", str(verdict)],
        cwd=user_repo.path, capture_output=True, text=True, timeout=120)
    # Rounds of a few milliseconds on a shared CPU move by 2x between sessions: only timing
    # rows may regress or be unstable (exit 5); what the gate judges exactly (accuracy,
    # counters, health) must pass.
    assert compare.returncode in (0, 1, 5), compare.stdout + compare.stderr
    regressed = {m["metric"] for b in json.loads(verdict.read_text())["benchmarks"]
                 for m in b["metrics"] if m["status"] in ("regression", "unstable")}
    assert regressed <= {"time", "host_time", "eager_time", "speedup"}, compare.stdout
    judged = {b["name"]: {m["metric"]: m for m in b["metrics"]}
              for b in json.loads(verdict.read_text())["benchmarks"]}
    for name in ("test_train[blobs-fp32]", "test_train[blobs-amp-bf16]"):
        # judged on the rounds (not "THRESHOLD ONLY"), under the repository's own limits
        assert judged[name]["time"]["method"].startswith("one-sided Mann-Whitney U"), judged
    assert "pyproject.toml" in compare.stdout


def test_the_matrix_module_exports_the_suite_and_nothing_else():
    from ampcore.suite import matrix
    from ampcore.suite.matrix import amp, ddp

    assert matrix.__all__ == [*amp.__all__, *ddp.__all__]
    assert all(name.startswith("test_") for name in matrix.__all__)
    namespace: dict = {}
    exec(ONE_LINE, namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == sorted(matrix.__all__)


def test_ampcore_runs_its_own_benchmarks_with_the_same_one_line():
    """benchmarks/ is the matrix imported, so its benchmark names, which saved histories
    compare by (benchmarks/test_amp.py::test_train[bert-amp-bf16]), stay what they were."""
    for name, module in (("test_amp.py", "amp"), ("test_ddp.py", "ddp")):
        text = (ROOT / "benchmarks" / name).read_text()
        assert text.startswith(f"from ampcore.suite.matrix.{module} import *"), text
    assert not (ROOT / "benchmarks" / "conftest.py").exists()  # nothing to hook any more
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "benchmarks", "--collect-only", "-q",
         "-p", "no:cacheprovider", "--amp-device", "cpu", "--amp-profile", "smoke",
         "--amp-workloads", "bert", "--amp-precisions", "fp32,amp-bf16"],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    names = {line for line in collected.stdout.splitlines() if "::" in line}
    assert {"benchmarks/test_amp.py::test_train[bert-amp-bf16]",
            "benchmarks/test_amp.py::test_accuracy_parity[bert-amp-bf16]",
            "benchmarks/test_ddp.py::test_ddp_train[bert-amp-bf16]"} <= names, collected.stdout
    assert len(names) == 2 + 3 + 2 + 1, names  # train x 2, speedup/accuracy parity/health, DDP 2 + 1


def test_a_session_without_ampcore_benchmarks_saves_as_asked(pytester, tmp_path):
    """ampcore installed, a plain pytest-benchmark session: saved without raw rounds, as
    pytest-benchmark's own options say."""
    pytester.makepyfile(test_plain=PLAIN)
    storage = tmp_path / "storage"
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--benchmark-autosave",
                                           f"--benchmark-storage=file://{storage}")
    result.assert_outcomes(passed=1)
    ((bench,),) = [run["benchmarks"] for run in saved(storage)]
    assert "data" not in bench["stats"]


def test_raw_rounds_are_added_to_ampcores_benchmarks_only():
    """In a session that also holds other benchmarks, only those ampcore recorded (their
    extra_info has a record) gain their rounds; one saved with them already is kept."""
    from types import SimpleNamespace

    from ampcore.judge.record import SCHEMA_KEY
    from ampcore.suite import plugin

    def bench(name, rounds):
        return SimpleNamespace(fullname=name, stats=SimpleNamespace(data=rounds))

    output = {"benchmarks": [
        {"fullname": "a", "extra_info": {SCHEMA_KEY: 4}, "stats": {"median": 1.0}},
        {"fullname": "b", "extra_info": {}, "stats": {"median": 1.0}},
        {"fullname": "c", "extra_info": {SCHEMA_KEY: 4}, "stats": {"data": [9.0]}}]}
    plugin.pytest_benchmark_update_json(None, [bench("a", [1.0, 2.0]), bench("b", [3.0]),
                                               bench("c", [4.0])], output)
    assert [e["stats"].get("data") for e in output["benchmarks"]] == [[1.0, 2.0], None, [9.0]]


# --- the example package and its page ------------------------------------------------------

def code_blocks(language: str) -> list[str]:
    text = (ROOT / "docs" / "YOUR-MODEL.md").read_text()
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


def test_the_page_shows_the_example_package_as_it_is():
    """docs/YOUR-MODEL.md quotes examples/my-model's files whole: they cannot drift apart."""
    blocks = code_blocks("python") + code_blocks("toml")
    for path in ("src/my_model/__init__.py", "src/my_model/model.py", "pyproject.toml",
                 "tests/test_matrix.py"):
        assert (EXAMPLE / path).read_text() in blocks, f"docs/YOUR-MODEL.md lacks {path}"


def test_the_example_uses_only_the_public_api():
    """The example stands for a user's package: ``ampcore.api`` and the matrix, nothing else."""
    imported = set()
    for path in [*(EXAMPLE / "src").rglob("*.py"), *(EXAMPLE / "tests").rglob("*.py")]:
        imported |= set(re.findall(r"^\s*(?:from|import) (ampcore[\w.]*)", path.read_text(), re.M))
    assert imported == {"ampcore.api", "ampcore.suite.matrix"}, imported


def test_ci_runs_the_example_package_from_a_fresh_venv():
    ci = (ROOT / ".ci" / "run").read_text()
    step = ci[ci.index("pytest tests"):ci.index("tox -e oldest")]
    assert "examples/my-model" in step and "ampcore compare" in step
