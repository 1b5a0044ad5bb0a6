"""Instability is a verdict of its own (issue 26 item 3): a run whose round CV (or probe
spread) exceeds its limit makes its benchmark's time verdicts "unstable", never a silent
pass, a regression or an improvement; the comparison's outcome is "unreliable", exit 5."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from ampcore.cli import main
from ampcore.history.compare import EXIT_UNRELIABLE
from ampcore.history.config import parse_config
from ampcore.history.errors import EXIT_UNUSABLE
from ampcore.judge.stability import (DEFAULT_ROUND_CV, FROM_IQR, FROM_PROBE, FROM_RECORD,
                                     FROM_ROUNDS, NOT_CHECKED, STABLE, UNSTABLE,
                                     StabilityLimits, judge_stability, round_cv)
from tests.support import synthetic

START = datetime(2025, 3, 1, 9, 0, tzinfo=timezone.utc)
DIR = "Linux-CPython-3.11-64bit"
BERT_AMP = "test_train[bert-amp-bf16]"
TIME_LIKE = ("time", "speedup", "host_time", "eager_time")


def rounds(median: float, cv: float, seed: int, n: int = 12) -> list[float]:
    """Positive rounds around ``median``: near-normal for a small CV, log-normal (a loaded
    machine's long tail) for a large one."""
    rng = np.random.default_rng(seed)
    if cv < 0.1:
        return list(median * (1 + cv * rng.standard_normal(n)))
    return list(median * np.exp(cv * rng.standard_normal(n)))


def save(store: Path, index: int, cv: float, slowdown: float = 1.0, memory: float = 1.0,
         save_data: bool = True, seed: int = 0, fp32_cv: float | None = None) -> Path:
    """One session of bert fp32 and amp-bf16 whose rounds have the given spread (fp32's:
    ``fp32_cv`` when given)."""
    entries = []
    for precision, median in (("fp32", 0.8), ("amp-bf16", 0.42 * slowdown)):
        spread = fp32_cv if precision == "fp32" and fp32_cv is not None else cv
        times = rounds(median, spread, seed + index * 10 + len(entries))
        mem = int(memory * 2 * 2**30) if precision == "amp-bf16" else 3 * 2**30
        extra = synthetic.extra_info("bert", precision, times, peak_memory_bytes=mem)
        entries.append(synthetic.benchmark("bert", precision, times, extra, save_data=save_data))
    doc = synthetic.run_document(entries, START + timedelta(hours=index),
                                 commit=f"{index:02x}" * 20)
    return synthetic.write_run(store / DIR, index, doc)


def run_compare(tmp_path: Path, monkeypatch, capsys, store: Path, *extra: str):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / f"verdict{len(list(tmp_path.glob('verdict*.json')))}.json"
    md = tmp_path / f"summary{len(list(tmp_path.glob('summary*.md')))}.md"
    status = main(["compare", str(store), "--json", str(out), "--markdown", str(md), *extra])
    captured = capsys.readouterr()
    return status, json.loads(out.read_text()), captured.out, md.read_text()


def bench(data: dict, name: str = BERT_AMP) -> dict:
    return next(b for b in data["benchmarks"] if b["name"] == name)


def status_of(data: dict, metric: str, name: str = BERT_AMP) -> str:
    return next(m["status"] for m in bench(data, name)["metrics"] if m["metric"] == metric)


# --- the pure rule -------------------------------------------------------------------------

def test_judge_stability_against_the_limits():
    limits = StabilityLimits(round_cv=0.03, probe_cv=0.5)
    assert judge_stability(0.02, FROM_ROUNDS, (), limits).status == STABLE
    noisy = judge_stability(0.26, FROM_ROUNDS, (), limits)
    assert noisy.status == UNSTABLE and noisy.cv == 0.26 and noisy.limit == 0.03
    assert noisy.describe() == "round CV 26 % > limit 3 %"
    probe = judge_stability(0.01, FROM_ROUNDS, (1.0, 3.0, 0.2, 5.0), limits)
    assert probe.status == UNSTABLE and probe.what == "probe CV" and probe.source == FROM_PROBE
    assert judge_stability(None, "nothing saved", (), limits).status == NOT_CHECKED
    assert "not checked" in judge_stability(None, "nothing saved", (), limits).describe()


def test_round_cv_sources_in_order():
    assert round_cv([1.0, 1.1, 0.9])[1] == FROM_ROUNDS
    # rounds of different sizes: the CV of the per-sample times
    cv, _ = round_cv([1.0, 2.0, 3.0], samples_per_round=(10, 20, 30))
    assert cv == pytest.approx(0.0)
    assert round_cv(None, recorded=0.4) == (0.4, FROM_RECORD)
    cv, source = round_cv(None, q1=0.9, q3=1.1, median=1.0)
    assert source == FROM_IQR and cv == pytest.approx(0.2 / 1.349)
    assert round_cv(None) == (None, "no rounds, round_cv or quartiles saved")


# --- compare ---------------------------------------------------------------------------------

def test_noisy_candidate_large_slowdown_is_unstable_not_regression(tmp_path, monkeypatch, capsys):
    store = tmp_path / ".benchmarks"
    save(store, 1, cv=0.01)
    save(store, 2, cv=0.6, slowdown=3.0)
    status, data, text, md = run_compare(tmp_path, monkeypatch, capsys, store)
    assert status == EXIT_UNRELIABLE == 5
    assert data["verdict"] == "unreliable" and data["exit_status"] == 5
    amp = bench(data)
    assert amp["status"] == "unstable"
    assert status_of(data, "time") == "unstable"
    assert "would be regression" in next(m["note"] for m in amp["metrics"]
                                         if m["metric"] == "time")
    assert all(m["status"] != "regression" for b in data["benchmarks"] for m in b["metrics"])
    # its own candidate run, and the fp32 run of that session (its speedup is taken over it)
    (unstable,) = [u for u in amp["unstable"] if u["side"] == "candidate"]
    assert unstable["side"] == "candidate" and unstable["limit"] == DEFAULT_ROUND_CV
    assert unstable["cv"] > unstable["limit"] and unstable["measure"] == "round CV"
    assert status_of(data, "memory") == "ok"  # not time-like: judged as ever
    line = next(x for x in text.splitlines() if x.startswith("unstable: " + BERT_AMP))
    assert line.endswith("> limit 25 %: time verdicts unreliable")
    assert " candidate round CV " in line
    assert "time verdicts unreliable" in text.splitlines()[0]
    assert "REGRESSION" not in text and "unstable: " in md and "⚠️ unstable" in md


def test_noisy_baseline_large_improvement_is_unstable_not_improvement(tmp_path, monkeypatch,
                                                                      capsys):
    store = tmp_path / ".benchmarks"
    save(store, 1, cv=0.6, slowdown=4.0)
    save(store, 2, cv=0.01)
    status, data, text, _ = run_compare(tmp_path, monkeypatch, capsys, store)
    assert status == EXIT_UNRELIABLE and data["verdict"] == "unreliable"
    assert status_of(data, "time") == "unstable"
    assert all(m["status"] != "improvement" for b in data["benchmarks"] for m in b["metrics"])
    sides = {u["side"] for u in bench(data)["unstable"]}
    assert sides == {"baseline", "baseline fp32"}  # its own run, and the fp32 one of its speedup
    assert "baseline (0001_" in text and "improved" not in text


def test_two_quiet_runs_have_no_unstable_word(tmp_path, monkeypatch, capsys):
    store = tmp_path / ".benchmarks"
    save(store, 1, cv=0.01)
    save(store, 2, cv=0.01)
    status, data, text, md = run_compare(tmp_path, monkeypatch, capsys, store)
    assert status == 0 and data["verdict"] == "ok"
    assert "unstable" not in text.lower() and "unstable" not in md.lower()
    assert data["unstable"] == []
    for b in data["benchmarks"]:
        assert b["unstable"] == [] and b["status"] in ("ok", "improvement")
        assert {s["status"] for s in b["stability"]} == {"stable"}
        assert {s["side"] for s in b["stability"]} == {"baseline", "candidate"}


def test_quiet_runs_still_find_a_real_slowdown(tmp_path, monkeypatch, capsys):
    store = tmp_path / ".benchmarks"
    save(store, 1, cv=0.01)
    save(store, 2, cv=0.01, slowdown=1.3)
    status, data, _, _ = run_compare(tmp_path, monkeypatch, capsys, store)
    assert status == 1 and status_of(data, "time") == "regression"


def test_regression_of_another_metric_still_fails_with_exit_1(tmp_path, monkeypatch, capsys):
    store = tmp_path / ".benchmarks"
    save(store, 1, cv=0.01)
    save(store, 2, cv=0.6, memory=1.5)
    status, data, text, _ = run_compare(tmp_path, monkeypatch, capsys, store)
    assert status == 1 and data["verdict"] == "regression"
    assert status_of(data, "memory") == "regression" and status_of(data, "time") == "unstable"
    assert "unstable: " in text


def test_the_limit_is_read_from_the_config(tmp_path, monkeypatch, capsys):
    store = tmp_path / ".benchmarks"
    save(store, 1, cv=0.02)
    save(store, 2, cv=0.02)
    (tmp_path / "pyproject.toml").write_text("[tool.ampcore.compare]\nround_cv = 0.005\n")
    status, data, text, _ = run_compare(tmp_path, monkeypatch, capsys, store)
    assert status == EXIT_UNRELIABLE
    assert {u["limit"] for b in data["benchmarks"] for u in b["unstable"]} == {0.005}
    assert "> limit 0.5 %: time verdicts unreliable" in text
    (tmp_path / "pyproject.toml").write_text("[tool.ampcore.compare]\nround_cv = 0.5\n")
    status, data, _, _ = run_compare(tmp_path, monkeypatch, capsys, store)
    assert status == 0 and data["unstable"] == []


def test_stability_limits_in_the_config_are_validated():
    config = parse_config({"compare": {"round_cv": 0.03, "time": 0.1,
                                       "eager": {"round_cv": 0.2, "probe_cv": 0.8}}})
    assert config.stability_limits().round_cv == 0.03
    assert config.stability_limits("eager") == StabilityLimits(round_cv=0.2, probe_cv=0.8)
    assert config.defaults["time"] == 0.1
    from ampcore.history.errors import UnusableInputError
    with pytest.raises(UnusableInputError, match="round_cv must be a non-negative"):
        parse_config({"compare": {"round_cv": -1}})


def test_bad_limit_in_pyproject_exits_3(tmp_path, monkeypatch, capsys):
    store = tmp_path / ".benchmarks"
    save(store, 1, cv=0.01)
    save(store, 2, cv=0.01)
    (tmp_path / "pyproject.toml").write_text("[tool.ampcore.compare]\nround_cv = 99\n")
    monkeypatch.chdir(tmp_path)
    assert main(["compare", str(store)]) == EXIT_UNUSABLE
    assert "round_cv" in capsys.readouterr().err


def test_old_files_without_rounds_use_stats_or_are_not_checked(tmp_path, monkeypatch, capsys):
    store = tmp_path / ".benchmarks"
    first = save(store, 1, cv=0.01, save_data=False)
    second = save(store, 2, cv=0.6, save_data=False)
    status, data, text, _ = run_compare(tmp_path, monkeypatch, capsys, store)
    assert status == EXIT_UNRELIABLE  # the record's round_cv still tells
    assert bench(data)["unstable"][0]["source"] == "record round_cv"

    def strip(document: dict) -> None:
        for entry in document["benchmarks"]:
            entry["extra_info"].pop("round_cv", None)
            for key in ("q1", "q3"):
                entry["stats"].pop(key, None)
    for path in (first, second):
        synthetic.edit_run(path, strip)
    status, data, text, _ = run_compare(tmp_path, monkeypatch, capsys, store)
    assert data["unstable"] == ["stability not checked (no rounds, round_cv or quartiles "
                                "saved): 2 benchmark(s)"]
    assert {s["status"] for s in bench(data)["stability"]} == {"not checked"}
    assert "stability not checked" in text and status in (0, 1)


def test_an_unstable_fp32_run_makes_the_speedup_over_it_unstable(tmp_path, monkeypatch, capsys):
    """The speedup is fp32's rounds over AMP's: a noisy fp32 run makes it unreliable even
    when AMP's own rounds were quiet, whose time verdict stands."""
    store = tmp_path / "store"
    save(store, 1, 0.01)
    save(store, 2, 0.01, fp32_cv=0.6)
    status, data, out, _ = run_compare(tmp_path, monkeypatch, capsys, store)
    assert status == EXIT_UNRELIABLE, out
    assert status_of(data, "speedup") == "unstable"
    assert status_of(data, "time") != "unstable"  # AMP's own rounds were quiet
    assert f"{BERT_AMP} candidate fp32 round CV" in out
    quiet = tmp_path / "quiet"  # negative control: the same sessions with a quiet fp32 run
    save(quiet, 1, 0.01)
    save(quiet, 2, 0.01)
    status, data, out, _ = run_compare(tmp_path, monkeypatch, capsys, quiet)
    assert status_of(data, "speedup") != "unstable" and "unstable" not in out



def test_each_runs_stability_is_computed_once_per_compare(tmp_path, monkeypatch):
    """The fp32 run an AMP speedup is taken over is judged for its own benchmark too: one
    stability per run and benchmark, shared, however many verdicts read it."""
    from collections import Counter

    from ampcore.history import noise
    from ampcore.history.compare import compare_runs
    from ampcore.history.config import GateConfig
    from ampcore.history.storage import load_history

    store = tmp_path / "store"
    for index in (1, 2, 3):
        save(store, index, 0.01)
    runs, _ = load_history([store])
    calls: Counter = Counter()
    real = noise.run_stability

    def counted(run, key, limits):
        calls[run.path.name, key] += 1
        return real(run, key, limits)

    monkeypatch.setattr(noise, "run_stability", counted)
    verdicts = compare_runs(runs[:-1], runs[-1], GateConfig())
    assert set(calls) == {(r.path.name, k) for r in runs for k in r.benchmarks}
    assert max(calls.values()) == 1, calls
    amp = next(v for v in verdicts if v.name == BERT_AMP)
    assert len(amp.stability) == 3 and len(amp.reference_stability) == 3
