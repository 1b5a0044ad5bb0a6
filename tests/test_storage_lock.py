"""Saving sessions on one storage take turns (``benchmark_adapter.lock_storage``), and -n with
--benchmark-autosave, which would save nothing, is refused."""

import os
import subprocess
import sys
from types import SimpleNamespace

import pytest
from filelock import Timeout

from ampcore.suite import benchmark_adapter as adapter

HOLD = """
import sys
from filelock import FileLock
with FileLock(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.readline()
"""


def saving_config(storage, autosave=True):
    session = SimpleNamespace(storage=SimpleNamespace(path=storage), save=None, autosave=autosave)
    return SimpleNamespace(_benchmarksession=session, stash=pytest.Stash())


@pytest.mark.serial
def test_a_session_waits_for_another_saving_into_the_same_storage(tmp_path, capsys):
    storage = tmp_path / ".benchmarks"
    storage.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(storage / adapter.SAVE_LOCK)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(Timeout):
            adapter.lock_storage(saving_config(storage), wait_s=0.2)
        assert "another session is saving into" in capsys.readouterr().err
    finally:
        holder.communicate("\n", timeout=30)
    config = saving_config(storage)
    adapter.lock_storage(config, wait_s=0.2)  # free now: taken at once, without a message
    assert capsys.readouterr().err == ""
    adapter.release_storage(config)
    adapter.release_storage(config)  # a second release is harmless


def test_a_session_that_does_not_save_takes_no_lock(tmp_path):
    config = saving_config(tmp_path / "never-made", autosave=False)
    adapter.lock_storage(config)
    assert not (tmp_path / "never-made").exists()


@pytest.mark.parametrize("save, refused", [("--benchmark-autosave", True),
                                           ("--benchmark-disable", False)])
@pytest.mark.serial
def test_parallel_workers_with_saving_are_refused(save, refused):
    pytest.importorskip("xdist")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-m", "pytest", "benchmarks", "-n", "2", save,
                           "--collect-only", "-q", "-p", "no:cacheprovider",
                           "--amp-device", "cpu", "--amp-profile", "smoke"],
                          cwd=root, capture_output=True, text=True, timeout=300)
    if refused:
        assert proc.returncode == pytest.ExitCode.USAGE_ERROR, proc.stdout + proc.stderr
        assert "pytest-benchmark times nothing under xdist" in proc.stderr
    else:
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]


class FullDisk:
    """A FileStorage stand-in whose write stops half-way, as on a full disk."""

    def __init__(self, root):
        self.path, self._next_num = root, 7

    def get(self, name):
        return self.path / name

    def save(self, output_json, save):
        target = self.get(f"{self._next_num}_{save}.json")
        target.write_text('{"machine_info": {"node": "x"}, "benchm')
        raise OSError(28, "No space left on device")


def test_a_save_that_fails_leaves_no_truncated_file_and_names_the_fallback(tmp_path, capsys):
    import json

    storage = FullDisk(tmp_path)
    config = SimpleNamespace(_benchmarksession=SimpleNamespace(storage=storage),
                             stash=pytest.Stash())
    adapter.save_atomically(config)
    storage.save({"benchmarks": [1]}, "auto")
    assert list(tmp_path.iterdir()) == []  # the half-written 7_auto.json is gone
    message = adapter.save_failure(config)
    assert "No space left on device" in message and message in capsys.readouterr().err
    fallback = message.split("the session is in ")[1].split(":")[0]
    assert json.loads(open(fallback).read()) == {"benchmarks": [1]}
    assert adapter.save_failure(saving_config(tmp_path)) is None  # negative control


@pytest.mark.parametrize("make, message", [
    (lambda p: p.write_text("not a folder"), "is a file, not a folder"),
    (lambda p: None, None),  # a storage that does not exist yet is created: fine
])
def test_a_storage_that_cannot_take_the_save_stops_the_session_first(tmp_path, make, message):
    storage = tmp_path / "storage"
    make(storage)
    problem = adapter.storage_problem(saving_config(storage / "machine"))
    assert (problem is None) if message is None else (message in problem)
