"""ampcore.history.merge: lanes' storages (one per GPU) become one,
numbered in the order the runs were saved, and nothing in the destination is overwritten."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ampcore.history.merge import main, merge
from tests.support.runs import ROOT

MACHINE = "Linux-CPython-3.12-64bit"


def save(lane: Path, storage: str, number: int, when: str) -> None:
    folder = lane / storage / MACHINE
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{number:04d}_abc_{when}.json").write_text(json.dumps({"datetime": when}))


def test_lanes_merge_into_one_storage_numbered_by_save_time(tmp_path, capsys):
    lane0, lane1, dest = tmp_path / "lane0", tmp_path / "lane1", tmp_path / "merged"
    save(lane0, "on-extra-sync", 1, "2026-12-02T10:00:00")
    save(lane0, "on-extra-sync", 2, "2026-12-02T10:02:00")
    save(lane1, "on-extra-sync", 1, "2026-12-02T10:01:00")  # the same number in another lane
    save(lane1, "on-aa", 1, "2026-12-02T10:00:30")
    (lane1 / "log-on-aa-1.txt").write_text("log")
    assert main([str(dest), str(lane0), str(lane1)]) == 0
    assert "merged 4 saved runs of 2 storages" in capsys.readouterr().out
    names = sorted(p.name for p in (dest / "on-extra-sync" / MACHINE).iterdir())
    assert names == ["0001_abc_2026-12-02T10:00:00.json", "0002_abc_2026-12-02T10:01:00.json",
                     "0003_abc_2026-12-02T10:02:00.json"]
    assert [p.name for p in (dest / "on-aa" / MACHINE).iterdir()] == [
        "0001_abc_2026-12-02T10:00:30.json"]
    assert (dest / "log-on-aa-1.txt").read_text() == "log"


def test_a_destination_that_holds_the_names_is_not_overwritten(tmp_path):
    lane0, dest = tmp_path / "lane0", tmp_path / "merged"
    save(lane0, "on-aa", 1, "2026-12-02T10:00:00")
    assert merge(dest, [lane0]) == 1
    kept = dest / "on-aa" / MACHINE / "0001_abc_2026-12-02T10:00:00.json"
    kept.write_text("saved by the user")
    with pytest.raises(FileExistsError):
        merge(dest, [lane0])
    assert kept.read_text() == "saved by the user"


@pytest.mark.parametrize("command", [["-m", "ampcore.history.merge"]])
def test_the_command_gpu_trust_and_the_docs_name_merges(tmp_path, command):
    """``python -m ampcore.history.merge``, as scripts/gpu/gpu-trust.sh runs it."""
    lane0, dest = tmp_path / "lane0", tmp_path / "merged"
    save(lane0, "on-aa", 1, "2026-12-02T10:00:00")
    done = subprocess.run([sys.executable, *command, str(dest), str(lane0)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "merged 1 saved runs of 1 storages" in done.stdout
    again = subprocess.run([sys.executable, *command, str(dest), str(lane0)],
                           capture_output=True, text=True, cwd=tmp_path)
    assert again.returncode != 0 and "FileExistsError" in again.stderr
