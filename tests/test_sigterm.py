"""SIGTERM (a CI cancel or timeout) ends ``ampcore run`` and a training suite session as
Ctrl-C does: the runs that finished are saved marked partial (incomplete), and no fresh worker
process is left behind."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ampcore.cli import main
from ampcore.history.storage import read_run
from ampcore.train.result import read_json, write_json
from tests.test_suite import suite  # noqa: F401  (the fixture)

pytest_plugins = ["pytester"]
SMOKE = ["--profile", "smoke", "--device", "cpu", "--no-progress"]
STARTED = "ampcore-test: the second run started"
# ``ampcore run`` in a child process whose training is stubbed: fp32 returns the result saved
# in argv[1], the next run waits for the signal.
CHILD = f"""
import sys, time
import ampcore.train.run
from ampcore.cli import main
from ampcore.train.result import read_json

def run_experiment(spec, progress=False):
    if spec.precision == "fp32":
        return read_json(sys.argv[1])[0]
    print({STARTED!r}, file=sys.stderr, flush=True)
    time.sleep(120)
    raise AssertionError("SIGTERM did not stop the run")

ampcore.train.run.run_experiment = run_experiment
sys.exit(main(sys.argv[2:]))
"""


def child_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "AMPCORE_DATA_DIR"}
    env.update(AMPCORE_CACHE_DIR=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    return env


@pytest.mark.serial
def test_sigterm_keeps_the_finished_runs_marked_partial(tmp_path, make_result):
    finished = write_json([make_result(workload="resnet18", precision="fp32", profile="smoke",
                                       device="cpu")], tmp_path / "finished.json")
    path = tmp_path / "r.json"
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(finished), "run", "--workload", "resnet18",
         "--precision", "fp32", "amp-bf16", *SMOKE, "--json", str(path)],
        cwd=tmp_path, env=child_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    before = []
    try:
        for line in iter(proc.stderr.readline, ""):
            before.append(line)
            if STARTED in line:  # the first run finished, the second began
                proc.send_signal(signal.SIGTERM)
                break
        out, rest = proc.communicate(timeout=60)
    finally:
        proc.kill()
    err = "".join(before) + rest
    assert proc.returncode == 130, err
    assert "| Regular (fp32)" in out
    assert f'ampcore: terminated; wrote the 1 finished run(s) to {path} (marked "partial": true)' \
        in err
    assert json.loads(path.read_text())["partial"] is True
    assert [r.precision for r in read_json(path)] == ["fp32"]


def test_the_sigterm_handler_is_restored_after_the_command(monkeypatch, make_result):
    import ampcore.train.run

    def run_experiment(spec, progress=False):
        assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # handled meanwhile
        return make_result(workload=spec.workload, precision=spec.precision)

    monkeypatch.setattr(ampcore.train.run, "run_experiment", run_experiment)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["run", "--workload", "resnet18", "--precision", "fp32", *SMOKE]) == 0
    assert signal.getsignal(signal.SIGTERM) is before


def children(pid: int) -> list[int]:
    """The processes whose parent is ``pid``, from /proc."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after "pid (name)"
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (torchrun's workers are its grandchildren)."""
    found, todo = [], [pid]
    while todo:
        below = children(todo.pop())
        found += below
        todo += below
    return found


def worker_of(parent: subprocess.Popen, module: bytes, deadline_s: float = 120) -> int | None:
    """The pid of a process below ``parent`` running ``module``, once it runs (None: none came)."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end and parent.poll() is None:
        for pid in descendants(parent.pid):
            try:
                if module in Path(f"/proc/{pid}/cmdline").read_bytes():
                    return pid
            except OSError:
                continue
        time.sleep(0.1)
    return None


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
@pytest.mark.serial
@pytest.mark.parametrize("launch, module", [
    (("--processes", "2"), b"ampcore.launch.fresh"),
    (("--nproc", "2"), b"ampcore.launch.worker"),  # torchrun, then its DDP ranks
], ids=["fresh-processes", "ddp"])
def test_sigterm_stops_the_workers_and_leaves_no_temp_dirs(tmp_path, launch, module):
    temp = tmp_path / "tmp"
    temp.mkdir()
    with (tmp_path / "out").open("w") as out, (tmp_path / "err").open("w") as err:
        parent = subprocess.Popen(
            [sys.executable, "-m", "ampcore", "run", "--workload", "resnet18", "--precision",
             "fp32", *SMOKE, *launch], cwd=tmp_path, env=child_env(tmp_path) | {"TMPDIR": str(temp)},
            stdout=out, stderr=err)
        worker = worker_of(parent, module)
        below = descendants(parent.pid)
        try:
            assert worker is not None, (tmp_path / "err").read_text()
            parent.send_signal(signal.SIGTERM)
            assert parent.wait(timeout=60) == 130, (tmp_path / "err").read_text()
            alive = [pid for pid in below if Path(f"/proc/{pid}").exists()]
            assert not alive, alive  # stopped and reaped: no orphan
        finally:
            parent.kill()
            for pid in below:
                if Path(f"/proc/{pid}").exists():
                    os.kill(pid, signal.SIGKILL)
    assert "ampcore: terminated before any run finished" in (tmp_path / "err").read_text()
    assert not [p.name for p in temp.iterdir() if p.name.startswith("ampcore-")]


STOP = """
import os, signal, time

def test_zz_stop():  # a CI cancel after the first run
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(60)
"""


@pytest.mark.slow
@pytest.mark.serial
def test_sigterm_saves_the_suite_session_marked_incomplete(suite, tmp_path):  # noqa: F811
    storage = tmp_path / "storage"
    suite.makepyfile(test_zz_stop=STOP)
    result = suite.runpytest_subprocess(
        "-p", "no:cacheprovider", "--amp-profile", "smoke", "--amp-workloads", "resnet18",
        "--amp-precisions", "fp32", "-k", "train or stop", "--benchmark-autosave",
        f"--benchmark-storage=file://{storage}")
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*Interrupted: these are the runs that finished (partial)*"])
    (path,) = storage.rglob("*.json")
    assert json.loads(path.read_text())["machine_info"]["ampcore"]["incomplete"] is True
    run, problems = read_run(path)
    assert run is None and problems[0].message.startswith("interrupted session: marked incomplete")
