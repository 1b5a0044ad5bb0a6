"""``ampcore report``: a self-contained HTML page, PNG charts and marked change points."""

import re
from pathlib import Path

import numpy as np
import pytest

from ampcore.cli import main
from ampcore.history import changepoints
from ampcore.history.report.page import render_html
from ampcore.history.report.build import collect_charts, draw
from ampcore.history.storage import load_history
from tests.support import synthetic

DATA = Path(__file__).parent / "data" / "history"


@pytest.fixture(scope="module")
def stepped(tmp_path_factory) -> Path:
    """30 daily runs; from run 20 on, bert-amp-bf16 is 12 % slower."""
    store = tmp_path_factory.mktemp("store")
    synthetic.write_history(store / "machine", 30, seed=3, step_at=20, step={"bert-amp-bf16": 1.12})
    return store


def test_change_point_detection():
    rng = np.random.default_rng(0)
    flat = 1 + 0.02 * rng.standard_normal(60)
    assert changepoints.detect(flat) == []
    stepped = flat.copy()
    stepped[40:] *= 1.08
    (point,) = changepoints.detect(stepped)
    assert abs(point.index - 40) <= 1 and point.change == pytest.approx(0.08, abs=0.02)
    assert changepoints.detect([1.0, 1.0, 2.0]) == []  # too short to tell
    assert changepoints.detect(np.r_[np.ones(10), 1.01 * np.ones(10)]) == []  # under min_shift


def test_report_page_and_charts(stepped, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (stepped / "machine" / "0031_corrupt.json").write_text('{"benchmarks": [')
    try:
        assert main(["report", str(stepped), "--out", "site"]) == 0
    finally:
        (stepped / "machine" / "0031_corrupt.json").unlink()
    assert "0031_corrupt.json" in capsys.readouterr().err
    site = tmp_path / "site"
    pngs = sorted(p.name for p in site.glob("*.png"))
    assert pngs == sorted(["time-test-train-bert-fp32.png", "time-test-train-bert-amp-bf16.png",
                           "time-test-train-resnet18-fp32.png",
                           "time-test-train-resnet18-amp-bf16.png", "speedup-bert.png",
                           "speedup-resnet18.png", "accuracy-bert.png", "accuracy-resnet18.png",
                           "memory-bert.png", "memory-resnet18.png"])
    assert all((site / p).read_bytes().startswith(b"\x89PNG") for p in pngs)
    page = (site / "index.html").read_text()
    # self-contained: every image is embedded, nothing is fetched from anywhere
    assert page.count('src="data:image/png;base64,') == len(pngs)
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<script" not in page
    assert "0031_corrupt.json" in page and "not valid JSON" in page
    # the step is found and marked: in the table, on the time and the speedup chart
    rows = re.findall(r"<tr><td><a href=\"#([^\"]+)\">.*?</td><td>.*?</td><td>(.*?) <span", page)
    marked = {slug for slug, _ in rows}
    assert {"time-test-train-bert-amp-bf16", "speedup-bert"} <= marked
    runs, _ = load_history([stepped])
    assert all(label == runs[20].label for slug, label in rows if slug in
               ("time-test-train-bert-amp-bf16", "speedup-bert"))


def test_report_never_writes_into_storage_or_over_files(stepped, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(stepped), "--out", str(stepped / "report")]) == 2
    assert main(["report", str(stepped / "machine" / "*.json"), "--out",
                 str(stepped / "machine" / "x")]) == 2
    assert "inside the storage" in capsys.readouterr().err
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "index.html").write_text("keep")
    assert main(["report", str(stepped), "--out", str(taken)]) == 2
    assert (taken / "index.html").read_text() == "keep"
    assert not (stepped / "report").exists()
    assert main(["report", str(tmp_path / "empty"), "--out", "out"]) == 3


def test_report_over_real_gpu_history():
    runs, problems = load_history([DATA / "h200-smoke"])
    charts = collect_charts(runs)
    assert len([c for c in charts if c.slug.startswith("time-")]) == 8
    speedup = next(c for c in charts if c.slug == "speedup-bert")
    assert sorted(s.label for s in speedup.series) == ["amp-bf16", "amp-fp16", "tf32"]
    assert draw(speedup, runs).startswith(b"\x89PNG")
    page = render_html(runs, charts[:1], {charts[0].slug: b"png"}, problems, "real")
    assert page.count("<tr><td>") >= 8 + len(runs)  # latest-run table and run list
