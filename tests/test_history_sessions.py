"""Interrupted sessions are skipped, nothing passes silently, and every outcome has its own
exit status (the table in docs/HISTORY.md); a crash is never mistaken for a regression."""

import json
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from ampcore.cli import main
from ampcore.history.errors import EXIT_STATUSES
from ampcore.history.storage import read_run
from tests.support import synthetic

DOCS = Path(__file__).parents[1] / "docs" / "HISTORY.md"


@pytest.fixture
def history(tmp_path, monkeypatch):
    """``history(n, **session)``: n sessions of bert fp32/amp-bf16 in tmp_path/store."""
    monkeypatch.chdir(tmp_path)
    return lambda n=3, **session: synthetic.small_history(tmp_path / "store", n, **session)


def run(capsys, *argv) -> tuple[int, str, str]:
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def _fewer_rounds(doc):
    doc["benchmarks"][1]["stats"]["data"] = doc["benchmarks"][1]["stats"]["data"][:4]


def _empty_extra_info(doc):
    doc["benchmarks"][1]["extra_info"] = {}


def _benchmark_marker(doc):
    doc["benchmarks"][0]["extra_info"]["ampcore_incomplete"] = True


def _session_marker(doc):
    doc["machine_info"]["ampcore"]["incomplete"] = True


INTERRUPTIONS = {
    "fewer rounds than planned": (_fewer_rounds, "saved 4 of the 10 rounds its record planned"),
    "empty extra_info beside records": (_empty_extra_info, "saved an empty extra_info while 1 "
                                        "other benchmark(s) of the session have records"),
    "benchmark marker": (_benchmark_marker, "marked incomplete (extra_info['ampcore_incomplete'])"),
    "session marker": (_session_marker, "marked incomplete (machine_info['ampcore']['incomplete'])"),
}


@pytest.mark.parametrize("case", list(INTERRUPTIONS))
def test_interrupted_session_is_skipped_and_never_the_candidate(history, tmp_path, capsys, case):
    mutate, why = INTERRUPTIONS[case]
    paths = history(4)
    synthetic.edit_run(paths[1], mutate)  # an older interrupted session: skipped, named
    run_, problems = read_run(paths[1])
    (problem,) = problems
    assert run_ is None and problem.message.startswith("interrupted session: ")
    assert why in problem.message and problem.message.endswith("; file skipped")
    status, out, err = run(capsys, "compare", "store", "--baseline-last", "3", "--json", "v.json")
    assert status == 0 and "interrupted session" in err and paths[1].name in err
    baseline = [Path(b["path"]).name for b in json.loads(Path("v.json").read_text())["baseline"]]
    assert baseline == [paths[0].name, paths[2].name]
    status, out, err = run(capsys, "report", "store", "--out", "site", "--no-progress")
    assert status == 0 and "interrupted session" in err and "(3 runs)" in out
    page = (tmp_path / "site" / "index.html").read_text()
    assert "interrupted session" in page and f"<td>{Path('store') / paths[1].name}</td>" not in page
    synthetic.edit_run(paths[3], mutate)  # the newest: the gate fails rather than judge 2 vs 3
    status, out, err = run(capsys, "compare", "store")
    assert status == 3 and out == "" and "interrupted session" in err and paths[3].name in err


def test_distributed_benchmark_timed_as_one_round_is_complete(tmp_path):
    """A DDP benchmark times the whole torchrun launch as one pytest-benchmark round while
    its record plans 10 training rounds: that is complete (docs/runs/gpu/ holds real ones)."""
    extra = synthetic.extra_info("bert", "amp-bf16", [0.24] * 10, world_size=2,
                                 samples_per_round=800)
    bench = synthetic.benchmark("bert", "amp-bf16", [27.5], extra, test="test_ddp_train")
    path = tmp_path / "ddp.json"
    path.write_text(json.dumps(synthetic.run_document([bench], datetime.now(timezone.utc))))
    run_, problems = read_run(path)
    assert run_ is not None and not [p for p in problems if p.severity == "error"]


def test_missing_benchmarks_fail_unless_allowed_new_ones_are_information(history, capsys):
    paths = history(2)
    synthetic.edit_run(paths[1], lambda doc: doc["benchmarks"].pop(1))
    status, out, _ = run(capsys, "compare", "store", "--json", "v.json")
    assert status == 1 and "missing from the candidate" in out.splitlines()[0]
    assert json.loads(Path("v.json").read_text())["verdict"] == "missing"
    status, out, _ = run(capsys, "compare", "store", "--allow-missing")
    assert status == 0 and "allowed by --allow-missing" in out
    # the other way round: a benchmark new in the candidate is information only
    status, out, _ = run(capsys, "compare", paths[1], paths[0])
    assert status == 0 and "new in the candidate (no baseline, information only)" in out


def test_an_injected_run_is_never_a_baseline(history, capsys):
    paths = history(2)
    synthetic.edit_run(paths[0], lambda doc: [b["extra_info"].update(injections=["slow-attn"])
                                              for b in doc["benchmarks"]])
    for argv in (["store"], [paths[0], paths[1]]):
        status, out, _ = run(capsys, "compare", *argv)
        assert status == 4 and "the baseline has injected regressions ['slow-attn']" in out


def _env(doc):
    doc["machine_info"]["ampcore"]["gpu"] = "NVIDIA L4"


def _profile(doc):
    for bench in doc["benchmarks"]:
        bench["extra_info"]["profile"] = "smoke"


EXITS = [  # (what, extra arguments, edit of the newest run, expected status)
    ("ok", [], None, 0),
    ("regression", [], "slower", 1),
    ("missing benchmark", [], lambda doc: doc["benchmarks"].pop(), 1),
    ("usage error", ["--alpha", "2"], None, 2),
    ("unusable input", ["--config", "absent.toml"], None, 3),
    ("no baseline", [], "alone", 3),
    ("environment mismatch", [], _env, 4),
    ("comparison-key mismatch", [], _profile, 4),
]


@pytest.mark.parametrize("what, argv, edit, expected", EXITS, ids=[e[0] for e in EXITS])
def test_exit_statuses(history, capsys, what, argv, edit, expected):
    paths = history(2, step_at=1 if edit == "slower" else None, step={"bert-amp-bf16": 1.3})
    if edit == "alone":
        paths[0].unlink()
    elif callable(edit):
        synthetic.edit_run(paths[1], edit)
    status, _, err = run(capsys, "compare", "store", *argv)
    assert status == expected, err


def test_exit_status_table_in_the_docs():
    """The docs explain every status of the one table, ``errors.EXIT_STATUSES``, and no other."""
    text = DOCS.read_text()
    table = text[text.index("## Exit statuses"):]
    rows = dict(re.findall(r"^\| (\d+) \| ([^|]+) \|", table, re.MULTILINE))
    assert set(rows) == {str(code) for code, _ in EXIT_STATUSES} == {"0", "1", "2", "3", "4",
                                                                      "5", "70"}
    assert "regression" in rows["1"] and "missing" in rows["1"]
    assert "usage" in rows["2"] and "baseline" in rows["3"] and "mismatch" in rows["4"]


def test_the_users_verdict_guide_lists_the_same_statuses():
    """docs/VERDICTS.md's "what to do" table covers exactly the statuses of the one table."""
    text = (DOCS.parent / "VERDICTS.md").read_text()
    table = text[text.index("## The overall verdict and the exit status"):]
    table = table[:table.index("\n## ")] if "\n## " in table else table
    codes = set(re.findall(r"^\| (\d+) \|", table, re.MULTILINE))
    assert codes == {str(code) for code, _ in EXIT_STATUSES}


@pytest.mark.parametrize("command", ["compare", "report", "calibrate"])
def test_every_help_shows_the_exit_status_table(capsys, command):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse rewraps the description
    start = text.index("Exit status: ") + len("Exit status: ")
    shown = text[start:text.index(".", start)].split(", ")
    assert shown == [f"{code} {what}" for code, what in EXIT_STATUSES]


CRASHES = {
    "compare": ("ampcore.history.compare.compare_runs", ["compare", "store"]),
    "report": ("ampcore.history.report.build.collect_charts", ["report", "store", "--out", "site"]),
    "calibrate": ("ampcore.history.calibrate.aa_pairs", ["calibrate", "store", "--trials", "0"]),
}


@pytest.mark.parametrize("command", list(CRASHES))
def test_a_crash_is_an_internal_error_never_exit_1(history, capsys, monkeypatch, command):
    target, argv = CRASHES[command]
    history(2)

    def boom(*_args, **_kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(target, boom)
    status, _, err = run(capsys, *argv)
    assert status == 70 and status != 1
    assert "ampcore: internal error: RuntimeError: boom" in err and "Traceback" in err
