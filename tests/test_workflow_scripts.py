"""The shell steps of .github/workflows/gpu-benchmarks.yml, run here the way GitHub runs them
(bash -eo pipefail) against temporary folders and git repositories: the bounded pip cache, the
data source, the new-run staging, and the add-only push to the history branch."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

WORKFLOW = Path(__file__).parents[1] / ".github" / "workflows" / "gpu-benchmarks.yml"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@pytest.fixture(scope="module")
def workflow() -> dict:
    yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (pip install pyyaml)")
    return yaml.safe_load(WORKFLOW.read_text())


def _script(workflow: dict, name: str, job: str = "benchmark") -> str:
    for step in workflow["jobs"][job]["steps"]:
        if name in step.get("name", ""):
            return step["run"]
    raise AssertionError(f"no step named {name!r} in job {job}")


def _run(script: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
                          cwd=cwd, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=60)


def _outputs(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)


def test_pip_cache_bound_drops_large_files_with_their_metadata(workflow, tmp_path):
    script = _script(workflow, "Bound pip's cache")
    cache = tmp_path / "pip"
    entry = cache / "http-v2" / "a" / "b"
    entry.mkdir(parents=True)
    (entry / "torchwheel").write_text("metadata")
    with open(entry / "torchwheel.body", "wb") as big:  # sparse: no disk used
        big.truncate(60 * 2**20)
    (entry / "smallwheel").write_text("metadata")
    (entry / "smallwheel.body").write_bytes(b"x" * 1000)
    out = tmp_path / "out"
    result = _run(script, tmp_path, PIP_CACHE_DIR=str(cache), PIP_CACHE_MAX_FILE_MB="50",
                  PIP_CACHE_MAX_MB="1024", GITHUB_OUTPUT=str(out))
    assert result.returncode == 0, result.stderr
    assert not (entry / "torchwheel.body").exists() and not (entry / "torchwheel").exists()
    assert (entry / "smallwheel.body").exists() and (entry / "smallwheel").exists()
    assert _outputs(out)["save"] == "true"
    # over the total bound: kept on disk, not saved
    out.unlink()
    result = _run(script, tmp_path, PIP_CACHE_DIR=str(cache), PIP_CACHE_MAX_FILE_MB="50",
                  PIP_CACHE_MAX_MB="0", GITHUB_OUTPUT=str(out))
    assert result.returncode == 0, result.stderr
    assert _outputs(out)["save"] == "false" and "not saved" in result.stdout


def test_data_source_downloads_into_the_cache_or_uses_a_prestaged_dir(workflow, tmp_path):
    script = _script(workflow, "Choose the data source")
    hf = tmp_path / "hf"
    base = {"HF_HOME": str(hf), "INPUT_DATA_DIR": "", "AMPCORE_DATA_DIR": "",
            "AMPCORE_BERT_MODEL": ""}

    def choose(**env):
        out, genv = tmp_path / "out", tmp_path / "env"
        for f in (out, genv):
            f.write_text("")
        result = _run(script, tmp_path, **{**base, **env}, GITHUB_OUTPUT=str(out),
                      GITHUB_ENV=str(genv))
        return result, _outputs(out), _outputs(genv)

    result, out, env = choose()
    assert result.returncode == 0, result.stderr
    assert out == {"model": "bert-base-cased", "download": "true",
                   "bert": f"{hf}/hub/models--bert-base-cased"}
    assert env["AMPCORE_DOWNLOAD"] == "1" and env["AMPCORE_DATA_DIR"] == ""

    result, out, env = choose(AMPCORE_BERT_MODEL="org/model")
    assert out["bert"] == f"{hf}/hub/models--org--model"

    staged = tmp_path / "staged"
    staged.mkdir()
    for variable in ("INPUT_DATA_DIR", "AMPCORE_DATA_DIR"):  # the input, or the runner's env
        result, out, env = choose(**{variable: str(staged)})
        assert result.returncode == 0, result.stderr
        assert out["download"] == "false" and "bert" not in out
        assert env["AMPCORE_DOWNLOAD"] == "0" and env["AMPCORE_DATA_DIR"] == str(staged)

    result, out, env = choose(INPUT_DATA_DIR=str(tmp_path / "missing"))
    assert result.returncode == 1 and "does not exist" in result.stdout
    result, out, env = choose(INPUT_DATA_DIR=f"{staged}\nLD_PRELOAD=x")
    assert result.returncode == 1 and "LD_PRELOAD" not in (tmp_path / "env").read_text()


def test_new_runs_are_the_files_not_on_the_branch(workflow, tmp_path):
    """Runs on the branch are never staged again; migrated ones and this run's are."""
    before, saved = _script(workflow, "Count the saved runs"), _script(workflow, "saved a new run")
    machine = tmp_path / "benchmark-history" / "runs" / "Linux-CPython-3.11-64bit"
    machine.mkdir(parents=True)
    (machine / "0001_a.json").write_text("{}")  # on the branch
    legacy = tmp_path / ".benchmarks" / "Linux-CPython-3.11-64bit"
    legacy.mkdir(parents=True)
    (legacy / "0001_a.json").write_text("changed")  # never replaces the branch's file
    (legacy / "0002_b.json").write_text("{}")  # migrated from the old Actions cache
    env = {"HISTORY_CHECKOUT": "benchmark-history", "RUNNER_TEMP": str(tmp_path),
           "GITHUB_OUTPUT": str(tmp_path / "out")}
    result = _run(before, tmp_path, **env)
    assert result.returncode == 0, result.stderr
    count = _outputs(tmp_path / "out")["runs"]
    assert count == "2" and (machine / "0001_a.json").read_text() == "{}"

    # the suite saved nothing: the step fails and stages nothing
    result = _run(saved, tmp_path, **env, BEFORE=count)
    assert result.returncode == 1 and "saved no new run" in result.stdout
    assert _outputs(tmp_path / "out")["new-runs"] == "false"

    (machine / "0003_c.json").write_text("{}")  # this run
    result = _run(saved, tmp_path, **env, BEFORE=count)
    assert result.returncode == 0, result.stderr
    staged = sorted(p.relative_to(tmp_path / "new-runs").as_posix()
                    for p in (tmp_path / "new-runs").rglob("*.json"))
    assert staged == ["Linux-CPython-3.11-64bit/0002_b.json", "Linux-CPython-3.11-64bit/0003_c.json"]


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          timeout=30, env={**os.environ, "GIT_CONFIG_GLOBAL": os.devnull,
                                           "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
                                           "GIT_COMMITTER_NAME": "t",
                                           "GIT_COMMITTER_EMAIL": "t@t"}).stdout


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_publish_adds_new_files_only_and_never_forces(workflow, tmp_path):
    script = _script(workflow, "Commit and push", job="publish-history")
    origin = tmp_path / "origin.git"
    _git("init", "-q", "--bare", "-b", "main", str(origin), cwd=tmp_path)
    seed = tmp_path / "seed"
    _git("clone", "-q", str(origin), str(seed), cwd=tmp_path)
    (seed / "README.md").write_text("code")
    _git("add", "README.md", cwd=seed)
    _git("commit", "-q", "-m", "main", cwd=seed)
    _git("push", "-q", "origin", "HEAD:main", cwd=seed)
    env = {"HISTORY_BRANCH": "benchmark-history", "GITHUB_RUN_ID": "7", "GITHUB_SHA": "abc",
           "GIT_CONFIG_GLOBAL": os.devnull}

    def publish(files: dict[str, str]) -> subprocess.CompletedProcess:
        for folder in ("history", "new-runs"):
            shutil.rmtree(tmp_path / folder, ignore_errors=True)
        _git("clone", "-q", "--depth=1", f"file://{origin}", "history", cwd=tmp_path)
        for rel, text in files.items():
            (tmp_path / "new-runs" / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "new-runs" / rel).write_text(text)
        return _run(script, tmp_path, **env)

    def branch_files() -> dict[str, str]:
        names = _git("ls-tree", "-r", "--name-only", "benchmark-history", cwd=origin).split()
        return {n: _git("show", f"benchmark-history:{n}", cwd=origin) for n in names}

    # first run: the branch is created, holding the runs only (not main's files)
    result = publish({"m/0001_a.json": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert branch_files() == {"runs/m/0001_a.json": "1"}

    # next run: added next to it; a file already there unchanged is skipped
    result = publish({"m/0001_a.json": "1", "m/0002_b.json": "2"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert branch_files() == {"runs/m/0001_a.json": "1", "runs/m/0002_b.json": "2"}
    assert _git("rev-list", "--count", "benchmark-history", cwd=origin).strip() == "2"

    # a saved file is never overwritten: the job fails and the branch is unchanged
    result = publish({"m/0002_b.json": "other", "m/0003_c.json": "3"})
    assert result.returncode == 1 and "not overwritten" in result.stdout
    assert branch_files() == {"runs/m/0001_a.json": "1", "runs/m/0002_b.json": "2"}

    # nothing new: no commit
    result = publish({"m/0001_a.json": "1"})
    assert result.returncode == 0 and "nothing new" in result.stdout
    assert _git("rev-list", "--count", "benchmark-history", cwd=origin).strip() == "2"
