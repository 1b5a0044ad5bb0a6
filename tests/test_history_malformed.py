"""Never crash on a readable file: every malformed value makes its file or benchmark skipped
and named, never a verdict, a calibration or a traceback; a malformed pyproject.toml is a
message; an unreadable newest run fails the gate instead of letting it judge an older pair."""

import json
from pathlib import Path

import pytest

from ampcore.cli import main
from ampcore.history.storage import load_history, read_run
from tests.support import synthetic

AMP = 1  # index of test_train[bert-amp-bf16] in a small_history session


@pytest.fixture
def history(tmp_path, monkeypatch):
    """``history(n, mutate)``: n sessions in tmp_path/store, the last one passed through
    ``mutate(document)``; cwd is tmp_path (no pyproject.toml: built-in defaults)."""
    monkeypatch.chdir(tmp_path)

    def make(n: int = 3, mutate=None, which: int = -1) -> list[Path]:
        paths = synthetic.small_history(tmp_path / "store", n)
        if mutate is not None:
            synthetic.edit_run(paths[which], mutate)
        return paths

    return make


def run(capsys, *argv) -> tuple[int, str, str]:
    status = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def stats(**values):
    """Set stats values of bert-amp-bf16 and drop its raw rounds (as saved without
    --benchmark-save-data): the stored median is then all there is to judge."""
    def mutate(doc):
        entry = doc["benchmarks"][AMP]["stats"]
        entry.update(values)
        entry.pop("data", None)
    return mutate


@pytest.mark.parametrize("median, why", [
    (0, "stats.median is 0, not a positive time"),
    (-1.5, "stats.median is -1.5, not a positive time"),
    (10 ** 400, "stats.median is an integer of 401 digits, not a finite number"),
], ids=["zero", "negative", "integer-too-large-for-a-float"])
def test_non_positive_or_huge_median_is_skipped_not_judged(history, capsys, median, why):
    history(mutate=stats(median=median))
    status, out, err = run(capsys, "compare", "store")
    assert f"test_train[bert-amp-bf16]: {why}; benchmark skipped" in err
    assert "improved" not in out and "-290" not in out and "-457" not in out
    assert status == 1 and "missing from the candidate" in out  # and not silently passed


def test_non_finite_median_in_the_json_is_skipped(history, capsys):
    paths = history()
    text = paths[-1].read_text()
    first = text.index('"median": ', text.index("bert-amp-bf16"))
    end = text.index(",", first)
    paths[-1].write_text(text[:first] + '"median": NaN' + text[end:])
    run_, problems = read_run(paths[-1])
    assert "test_train[bert-amp-bf16]: stats.median is nan, not a finite number; benchmark " \
        "skipped" in [p.message for p in problems]
    assert len(run_.benchmarks) == 1


def test_one_bad_file_does_not_inflate_calibrate(history, capsys):
    history(n=6, mutate=stats(median=-1.5), which=3)
    status, out, err = run(capsys, "calibrate", "store", "--trials", "0", "--json", "c.json")
    assert status == 0 and "stats.median is -1.5" in err
    data = json.loads(Path("c.json").read_text())
    suggested = {b["name"]: b["suggested"].get("time") for b in data["benchmarks"]}
    assert all(value is not None and value < 0.2 for value in suggested.values()), suggested


@pytest.mark.parametrize("field, value", [("peak_memory_bytes", 0), ("peak_memory_bytes", -5),
                                          ("speedup_vs_fp32", 0), ("skipped_steps", -1),
                                          ("final_accuracy", -0.5)])
def test_impossible_record_figures_are_skipped(history, capsys, field, value):
    """A zero baseline memory made calibrate suggest 149 % and compare say "-100 %
    improvement"; a zero or negative figure a metric needs is no measurement."""
    def mutate(doc):
        for bench in doc["benchmarks"]:
            bench["extra_info"][field] = value

    history(n=4, mutate=mutate, which=1)  # a zero candidate of one A/A pair, baseline of the next
    status, out, err = run(capsys, "calibrate", "store", "--trials", "0")
    assert status == 0 and f"{field} is {value:g}" in err and "benchmark skipped" in err
    assert "memory = 1.49" not in out and "memory = " not in out
    status, out, _ = run(capsys, "compare", "store")
    assert status == 0 and "improved" not in out


def test_integers_too_large_for_a_float_anywhere(history, capsys):
    def mutate(doc):
        bench = doc["benchmarks"][0]
        bench["stats"]["data"][0] = 10 ** 400
        bench["extra_info"]["world_size"] = 10 ** 400
        bench["extra_info"]["peak_memory_bytes"] = 10 ** 400
        doc["version"] = 10 ** 400

    history(mutate=mutate)
    status, out, err = run(capsys, "compare", "store")
    assert status in (0, 1) and "internal error" not in err and "Traceback" not in err
    runs, _ = load_history(["store"])
    assert len(runs) == 3


@pytest.mark.parametrize("content, message", [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"benchmarks": [], "x": 1' + "0" * 5000 + "}", "not valid JSON"),
], ids=["nested-100k-deep", "integer-of-5001-digits"])
def test_pathological_json_is_named_not_a_crash(tmp_path, content, message):
    path = tmp_path / "0001_odd.json"
    path.write_text(content)
    run_, problems = read_run(path)
    assert run_ is None and message in problems[0].message and problems[0].path == path


@pytest.mark.parametrize("toml, message", [
    ("tool = 5\n", "'tool' must be a table"),
    ("[tool]\nampcore = 5\n", "[tool.ampcore] must be a table"),
    ("[tool.ampcore]\ncompare = 5\n", "[tool.ampcore.compare] must be a table"),
    ("[tool.ampcore.compare]\ntime = 1" + "0" * 400 + "\n", "time must be a finite number"),
    ("[tool.ampcore.compare]\ntime = nan\n", "time must be a finite number, got nan"),
    ("[tool.ampcore]\nthresholds = 5\n", "must be an array of tables"),
    (b"[tool.ampcore.compare]\n# \xff\xfe\n", "is not UTF-8 text"),
], ids=["tool-is-5", "tool.ampcore-is-5", "compare-is-5", "huge-integer", "time-nan",
        "thresholds-is-5", "not-utf8"])
def test_malformed_pyproject_is_a_message(history, tmp_path, capsys, toml, message):
    history(n=2)
    path = tmp_path / "pyproject.toml"
    path.write_bytes(toml if isinstance(toml, bytes) else toml.encode())
    for command in (["compare", "store"], ["calibrate", "store", "--trials", "0"]):
        status, out, err = run(capsys, *command)
        assert status == 3 and message in err and "Traceback" not in err, err
        assert out == ""


@pytest.mark.parametrize("damage", ["truncated", "median"])
def test_unreadable_newest_run_fails_the_gate(history, capsys, damage):
    paths = history()
    if damage == "truncated":
        text = paths[-1].read_text()
        paths[-1].write_text(text[: len(text) // 2])
    else:
        synthetic.edit_run(paths[-1], lambda doc: [b["stats"].update(median=-1)
                                                   for b in doc["benchmarks"]])
    status, out, err = run(capsys, "compare", "store")
    assert status == 3 and out == ""
    assert f"the newest saved run cannot be used (store/{paths[-1].name}: " in err
    # named explicitly, the older pair is compared on purpose
    status, out, _ = run(capsys, "compare", paths[0], paths[1])
    assert status == 0 and "no regression" in out
