"""``ampcore compare``'s compact text and Markdown: a line per regression first, regressed rows
first, no n/a row unless --verbose, --only regressions, the table fitted to the terminal's
width, the Markdown's evidence in a collapsible block; the JSON keeps every row."""

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from ampcore.cli import main
from ampcore.history.output import md_escape
from tests.support import synthetic

START = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)
LAST = "test_train[resnet18-amp-bf16]"  # the last benchmark of a session


def _store(tmp_path: Path, **candidate) -> Path:
    store = tmp_path / ".benchmarks" / "Linux-CPython-3.11-64bit"
    for index, session in ((1, {}), (2, candidate)):
        doc = synthetic.amp_session(np.random.default_rng(index), START + timedelta(hours=index),
                                    commit=f"{index:02x}" * 20, **session)
        synthetic.write_run(store, index, doc)
    return store


def _compare(tmp_path, monkeypatch, capsys, *args, columns=100):
    monkeypatch.chdir(tmp_path)  # no pyproject.toml: the built-in thresholds
    monkeypatch.setenv("COLUMNS", str(columns))
    out = tmp_path / f"verdict{len(list(tmp_path.glob('verdict*.json')))}.json"
    status = main(["compare", *map(str, args), "--json", str(out)])
    return status, capsys.readouterr().out, json.loads(out.read_text())


def _table(text: str) -> list[str]:
    """The table's rows, after the blank line: "benchmark metric verdict ..." per metric (the
    compact table heads each benchmark's rows with its name)."""
    lines = text.split("\n\n", 1)[1].splitlines()
    rows, bench = [], None
    for line in lines[2:]:
        if line.startswith("test_train["):
            bench = line
        elif line.startswith("  "):
            rows.append(f"{bench} {line.strip()}")
    return rows


def _slowed(tmp_path):
    return _store(tmp_path, slowdown={"resnet18-amp-bf16": 1.3})


def test_regressions_lead_and_come_first(tmp_path, monkeypatch, capsys):
    status, text, data = _compare(tmp_path, monkeypatch, capsys, _slowed(tmp_path))
    lines = text.splitlines()
    assert status == 1 and lines[0] == f"FAIL: 1 benchmark(s) regressed: {LAST}"
    assert lines[1].startswith(f"REGRESSION {LAST}: time +") and "(limit +" in lines[1]
    assert "❌" not in text and "✅" not in text  # no emoji in the terminal
    rows = _table(text)
    verdicts = [row.split()[2] for row in rows]
    regressed = verdicts.count("REGRESSION")
    assert regressed == 2 and verdicts[:regressed] == ["REGRESSION"] * regressed
    assert all(row.startswith(LAST) for row in rows[:regressed])
    assert rows[-1].startswith("test_train[")
    assert not rows[-1].startswith(LAST)  # the regressed benchmark moved up from last
    # the JSON is unchanged: every row, in the benchmarks' order, with its method
    assert [b["name"] for b in data["benchmarks"]][-1] == LAST
    assert all("method" in m and "note" in m for b in data["benchmarks"] for m in b["metrics"])


def test_no_na_rows_unless_verbose(tmp_path, monkeypatch, capsys):
    store = _slowed(tmp_path)
    status, text, data = _compare(tmp_path, monkeypatch, capsys, store)
    n_a = sum(m["status"] == "n/a" for b in data["benchmarks"] for m in b["metrics"])
    assert n_a > 0 and not [row for row in _table(text) if " n/a " in row]
    assert f"{n_a} n/a rows not shown (--verbose: all)" in text
    status, verbose, _ = _compare(tmp_path, monkeypatch, capsys, store, "--verbose", columns=60)
    full = [line for line in verbose.splitlines() if line.startswith("test_train[")]
    assert len([line for line in full if "  n/a  " in line]) == n_a
    assert len(full) == sum(len(b["metrics"]) for b in data["benchmarks"])
    assert "one-sided Mann-Whitney U" in verbose  # the method column, whole
    assert "not shown" not in verbose


def test_only_regressions(tmp_path, monkeypatch, capsys):
    status, text, data = _compare(tmp_path, monkeypatch, capsys, _slowed(tmp_path),
                                  "--only", "regressions")
    rows = _table(text)
    assert status == 1 and len(rows) == 2 and all(" REGRESSION " in row for row in rows)
    assert {row.split()[1] for row in rows} == {"time", "speedup"}
    assert len(data["benchmarks"]) == 4  # the JSON keeps every row


def test_table_fits_the_terminal(tmp_path, monkeypatch, capsys):
    store = _slowed(tmp_path)
    for columns in (100, 80, 60):
        status, text, _ = _compare(tmp_path, monkeypatch, capsys, store, columns=columns)
        table = text.split("\n\n", 1)[1].splitlines()
        assert max(map(len, table)) <= columns, columns
        if columns >= 80:  # the headline and regression lines name benchmarks: never cut
            assert max(map(len, text.splitlines()[:2])) <= columns
    # wide enough: the evidence is there, cut to fit
    status, text, _ = _compare(tmp_path, monkeypatch, capsys, store, columns=120)
    assert "evidence" in text.split("\n\n", 1)[1].splitlines()[0] and "p=" in text


def test_markdown_is_compact_with_collapsible_evidence(tmp_path, monkeypatch, capsys):
    store = _slowed(tmp_path)
    summary = tmp_path / "summary.md"
    status, _, _ = _compare(tmp_path, monkeypatch, capsys, store, "--markdown", summary)
    md = summary.read_text()
    name = md_escape(LAST)
    assert md.startswith(f"## ampcore compare: ❌ 1 benchmark(s) regressed: {name}\n")
    assert f"- ❌ {name}: time +" in md
    compact, details = md.split("<details>", 1)
    assert "<summary>Evidence and methods" in details and "</details>" in details
    header = next(line for line in compact.splitlines() if line.startswith("| benchmark"))
    assert "evidence" not in header and "method" not in header
    rows = [line for line in compact.splitlines() if line.startswith("| test\\_train")
            or line.startswith("| test_train")]
    assert rows[0].startswith(f"| {name} ")
    assert "❌ regression" in rows[0] and "❌ regression" in rows[1] and "n/a" not in compact
    assert "p=" in details and "one-sided Mann-Whitney U" in details and "| n/a" in details


def test_negative_control_a_clean_pair(tmp_path, monkeypatch, capsys):
    """An unchanged candidate: no regression line, no REGRESSION row, nothing for --only."""
    store = _store(tmp_path)
    status, text, data = _compare(tmp_path, monkeypatch, capsys, store)
    assert status == 0 and text.startswith("PASS: no regression in 4 benchmark(s)")
    assert "REGRESSION" not in text and _table(text)
    assert not text.splitlines()[1].startswith("REGRESSION")
    status, text, _ = _compare(tmp_path, monkeypatch, capsys, store, "--only", "regressions")
    assert status == 0 and "(no regressed row)" in text and not _table(text)
    summary = tmp_path / "clean.md"
    _compare(tmp_path, monkeypatch, capsys, store, "--markdown", summary)
    assert "❌" not in summary.read_text() and "<details>" in summary.read_text()


def test_two_regressed_benchmarks_keep_their_rows_together(tmp_path, monkeypatch, capsys):
    store = _store(tmp_path, slowdown={"bert-amp-bf16": 1.3, "resnet18-amp-bf16": 1.3})
    status, text, _ = _compare(tmp_path, monkeypatch, capsys, store)
    headings = [line for line in text.split("\n\n", 1)[1].splitlines()
                if line.startswith("test_train[")]
    assert status == 1 and len(headings) == len(set(headings)) == 4  # each benchmark once
    assert headings[:2] == ["test_train[bert-amp-bf16]", LAST]
    rows = _table(text)
    for name in headings[:2]:  # in each, its regressed rows first
        verdicts = [row.split()[2] for row in rows if row.startswith(name + " ")]
        assert verdicts[:2] == ["REGRESSION"] * 2 and "REGRESSION" not in verdicts[2:]
    assert len([line for line in text.splitlines() if line.startswith("REGRESSION ")]) == 4
