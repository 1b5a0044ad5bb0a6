"""Where the history commands write, and on which stream: never into the storage they read,
checked before any work, atomically and never over a file, ``-`` for stdout; results on
stdout, file problems and progress bars on stderr; Markdown that carries no raw HTML."""

import hashlib
import io
import json
import os
from pathlib import Path

import pytest

from ampcore.cli import main
from tests.support import synthetic


def digest(root: Path) -> dict:
    return {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


@pytest.fixture
def store(tmp_path, monkeypatch) -> Path:
    """Three saved sessions of bert fp32/amp-bf16 in tmp_path/store/m; cwd is tmp_path."""
    monkeypatch.chdir(tmp_path)
    synthetic.small_history(tmp_path / "store" / "m", 3)
    return tmp_path / "store"


def run(capsys, *argv) -> tuple[int, str, str]:
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


INSIDE = {  # command line writing into the storage (the store fixture)
    "compare --json": ("compare", "{store}", "--json", "{store}/m/verdict.json"),
    "compare --markdown": ("compare", "{store}", "--markdown", "{store}/summary.md"),
    "calibrate --json": ("calibrate", "{store}", "--trials", "0", "--json", "{store}/c.json"),
    "report --out": ("report", "{store}", "--out", "{store}/site"),
}


@pytest.mark.parametrize("case", list(INSIDE))
def test_outputs_inside_the_storage_are_refused(store, capsys, case):
    argv = [a.format(store=store) for a in INSIDE[case]]
    before = digest(store)
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert argv[-1] in err and f"inside the storage {store.resolve()}" in err
    assert digest(store) == before  # nothing written, not even a probe


@pytest.mark.parametrize("option", ["compare --json", "compare --markdown", "calibrate --json",
                                    "report --out"])
def test_unwritable_output_is_a_usage_error_before_any_work(store, tmp_path, capsys, option,
                                                            monkeypatch):
    command, flag = option.split()
    (tmp_path / "plain-file").write_text("not a directory")
    targets = [tmp_path / "plain-file" / "out.json"]
    if Path("/proc").is_dir():
        targets.append(Path("/proc") / "ampcore-out" / "out.json")

    def no_analysis(*_args, **_kwargs):
        raise AssertionError("the analysis ran before the output path was checked")

    monkeypatch.setattr("ampcore.history.storage.read_run", no_analysis)
    for target in targets:
        extra = ["--trials", "0"] if command == "calibrate" else []
        status, out, err = run(capsys, command, store, *extra, flag, target)
        assert status == 2, err
        assert out == "" and str(target) in err and "cannot be written" in err
        assert "internal error" not in err


def test_outputs_are_atomic_and_never_clobber(store, tmp_path, capsys, monkeypatch):
    links = []
    real_link = os.link

    def recording_link(source, target):
        links.append((Path(source), Path(target)))
        return real_link(source, target)

    monkeypatch.setattr(os, "link", recording_link)
    status, _, _ = run(capsys, "compare", store, "--json", tmp_path / "out" / "v.json")
    assert status == 0 and json.loads((tmp_path / "out" / "v.json").read_text())["verdict"] == "ok"
    (source, target), = links  # written under a temporary name in the same directory, linked
    assert source.parent == target.parent == tmp_path / "out" and not source.exists()
    assert (target.stat().st_mode & 0o777) == 0o666 & ~_umask()

    # a file that appears while the gate works is kept, and no temporary file is left
    import ampcore.history.compare as compare_module

    real = compare_module.compare_runs
    late = tmp_path / "out" / "late.json"

    def meanwhile(*args, **kwargs):
        late.write_text("someone else's")
        return real(*args, **kwargs)

    monkeypatch.setattr(compare_module, "compare_runs", meanwhile)
    status, _, err = run(capsys, "compare", store, "--json", late)
    assert status == 2 and "never overwrites" in err
    assert late.read_text() == "someone else's"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["late.json", "v.json"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_dash_means_stdout(store, tmp_path, capsys):
    status, out, _ = run(capsys, "compare", store, "--json", "-")
    assert status == 0 and json.loads(out)["verdict"] == "ok"
    status, out, _ = run(capsys, "compare", store, "--markdown", "-")
    assert status == 0 and out.startswith("## ampcore compare: ✅")
    status, out, _ = run(capsys, "calibrate", store, "--trials", "0", "--json", "-")
    assert status == 0 and json.loads(out)["runs"] == 3
    status, out, _ = run(capsys, "report", store, "--out", "-")
    assert status == 0 and out.startswith("<!DOCTYPE html>") and 'src="data:image/png' in out
    status, _, err = run(capsys, "compare", store, "--json", "-", "--markdown", "-")
    assert status == 2 and "stdout" in err
    assert not (tmp_path / "-").exists()


def test_results_on_stdout_file_problems_on_stderr(store, capsys):
    broken = store / "m" / "0000_broken.json"
    broken.write_text('{"benchmarks": [')
    status, out, err = run(capsys, "compare", store)
    assert status == 0 and "no regression" in out
    assert str(broken) in err and "not valid JSON" in err
    assert str(broken) not in out


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("argv, label", [
    (("calibrate", "{store}", "--trials", "4"), "calibrate: trials"),
    (("report", "{store}", "--out", "{tmp}/site{n}"), "report: charts"),
])
def test_progress_bars_on_a_terminal_only(store, tmp_path, capsys, monkeypatch, argv, label):
    def argv_for(n: int) -> list[str]:
        return [a.format(store=store, tmp=tmp_path, n=n) for a in argv]

    status, _, err = run(capsys, *argv_for(1))  # stderr captured: not a terminal
    assert status == 0 and label not in err
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    assert main(argv_for(2)) == 0
    assert label in terminal.getvalue()
    quiet = FakeTerminal()
    monkeypatch.setattr("sys.stderr", quiet)
    assert main([*argv_for(3), "--no-progress"]) == 0
    assert label not in quiet.getvalue()


def test_markdown_and_report_escape_html(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    hostile = "test_train[<script>alert(1)</script>]"
    paths = synthetic.small_history(tmp_path / "store", 2,
                                    step_at=1, step={"bert-amp-bf16": 1.3})

    def rename(doc):
        bench = doc["benchmarks"][1]
        bench["name"], bench["fullname"] = hostile, f"b.py::{hostile}"

    for path in paths:
        synthetic.edit_run(path, rename)
    status, out, _ = run(capsys, "compare", tmp_path / "store", "--markdown", "summary.md")
    assert status == 1 and hostile in out  # the terminal shows the name as it is
    markdown = (tmp_path / "summary.md").read_text()
    assert "<script" not in markdown and "&lt;script&gt;alert(1)&lt;/script&gt;" in markdown
    status, _, _ = run(capsys, "report", tmp_path / "store", "--out", "site")
    assert status == 0 and "<script" not in (tmp_path / "site" / "index.html").read_text()
