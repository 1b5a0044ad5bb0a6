"""The report judges the latest run as ``compare`` does, colours change points by direction,
shows absolute metrics in their unit, and keeps its axes and lines readable."""

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from ampcore.cli import main
from ampcore.history.report import drawing
from ampcore.history.report.page import render_html
from ampcore.history.report.build import Series, collect_charts, latest_comparison
from ampcore.history.storage import Run, load_history
from tests.support import synthetic

START = datetime(2025, 2, 1, tzinfo=timezone.utc)


def history(store: Path, n: int, slower_from: int | None = None, factor: float = 1.3,
            accuracy_from: int | None = None) -> list[Run]:
    """n sessions of bert fp32/amp-bf16; bert-amp-bf16 ``factor`` slower from run
    ``slower_from``, its accuracy 0.85 instead of 0.90 from run ``accuracy_from``."""
    rng = np.random.default_rng(7)
    for index in range(n):
        slow = slower_from is not None and index >= slower_from
        drop = accuracy_from is not None and index >= accuracy_from
        doc = synthetic.amp_session(rng, START + timedelta(days=index), commit=f"{index:040x}",
                                    base_times={"bert": 0.8}, speedups={"bert": 1.9},
                                    slowdown={"bert-amp-bf16": factor} if slow else None,
                                    accuracy={"bert-amp-bf16": 0.85} if drop else None)
        synthetic.write_run(store, index + 1, doc)
    runs, _ = load_history([store])
    return runs


def charts_by_slug(runs):
    comparison = latest_comparison(runs)
    return {c.slug: c for c in collect_charts(runs, comparison)}, comparison


def test_series_carry_the_latest_runs_verdict(tmp_path):
    runs = history(tmp_path / "s", 8, slower_from=7)  # only the newest run is slower
    charts, comparison = charts_by_slug(runs)
    assert comparison.exit_status == 1
    (time,) = charts["time-test-train-bert-amp-bf16"].series
    assert time.verdict.metric == "time" and time.verdict.status == "regression"
    speedup = {s.label: s for s in charts["speedup-bert"].series}["amp-bf16"]
    assert speedup.verdict.status == "regression"
    assert charts["time-test-train-bert-fp32"].series[0].verdict.status == "ok"
    assert drawing._legend_label(time).startswith("median; latest run: regression +")
    page = render_html(runs, [], {}, [], "t", comparison)
    section = page[page.index("Latest run against its baseline"):page.index("Change points")]
    assert "1 benchmark(s) regressed: test_train[bert-amp-bf16]" in section
    assert '<tr class="bad"><td>test_train[bert-amp-bf16]</td><td>time</td>' in section
    assert "its exit\nstatus would be 1" in section


@pytest.mark.parametrize("factor, direction, css", [(1.25, "worse", "bad"),
                                                    (0.75, "better", "good")])
def test_change_points_are_coloured_by_direction(tmp_path, factor, direction, css):
    runs = history(tmp_path / "s", 16, slower_from=8, factor=factor)
    charts, comparison = charts_by_slug(runs)
    (time,) = charts["time-test-train-bert-amp-bf16"].series
    (point,) = time.changes
    assert time.change_is_worse(point) is (direction == "worse")
    speedup = {s.label: s for s in charts["speedup-bert"].series}["amp-bf16"]
    assert speedup.change_is_worse(speedup.changes[0]) is (direction == "worse")  # fp32 same
    page = render_html(runs, list(charts.values()), {s: b"" for s in charts}, [], "t", comparison)
    cells = re.findall(r'<td class="(\w*)">([^<]*)</td></tr>', page)
    assert (css, f"{time.change_text(point)} ({direction})") in cells


def test_absolute_metrics_change_in_their_own_unit(tmp_path):
    runs = history(tmp_path / "s", 14, accuracy_from=7)
    charts, _ = charts_by_slug(runs)
    amp = {s.label: s for s in charts["accuracy-bert"].series}["amp-bf16"]
    (point,) = amp.changes
    assert amp.change_text(point) == "-0.05" and "%" not in amp.change_text(point)
    assert amp.change_is_worse(point) is True


def _run(index: int, when: datetime | None, commit: str | None) -> Run:
    return Run(Path(f"{index:04d}.json"), when, commit, None, None, None, {})


def test_tick_labels_never_repeat():
    same = START.replace(hour=9)
    runs = [_run(0, same, "a" * 40), _run(1, same, "a" * 40), _run(2, None, None),
            _run(3, None, None), _run(4, same + timedelta(minutes=1), "b" * 40)]
    labels = drawing.tick_labels(runs, range(5))
    assert len(set(labels)) == 5
    assert labels[0] == "#0 02-01 09:00\naaaaaaa" and labels[4] == "02-01 09:01\nbbbbbbb"
    years = [_run(0, START, "c" * 40), _run(1, START + timedelta(days=400), "c" * 40)]
    assert drawing.tick_labels(years, [0, 1]) == ["2025-02-01\nccccccc", "2026-03-08\nccccccc"]


def test_identical_series_stay_distinguishable():
    from matplotlib.figure import Figure

    axes = Figure().add_subplot()
    same = dict(x=[0, 1, 2], y=[0.9, 0.9, 0.9])
    drawn = [drawing._draw_series(axes, Series(label, **same), i, (i - 0.5) * drawing.NUDGE)
             for i, label in enumerate(["fp32", "amp-bf16"])]
    first, second = axes.get_lines()
    assert first.get_marker() != second.get_marker()
    assert first.get_linestyle() != second.get_linestyle()
    assert list(first.get_xdata()) != list(second.get_xdata())  # nudged apart
    assert drawn[0] != drawn[1]  # and coloured apart


def test_report_page_shows_the_verdict_end_to_end(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    history(tmp_path / "store", 3, slower_from=2)
    assert main(["report", "store", "--out", "site", "--no-progress"]) == 0
    page = (tmp_path / "site" / "index.html").read_text()
    assert "Latest run against its baseline" in page and "regressed" in page
    assert "<script" not in page


def test_band_and_whiskers_are_named_once_and_the_legend_sits_under_the_axes():
    import struct

    from matplotlib.figure import Figure

    axes = Figure().add_subplot()
    for i in range(3):
        drawing._draw_series(axes, Series(f"s{i}", x=[0, 1], y=[1.0, 1.1], band=[(0.9, 1.1)] * 2,
                                          whiskers=[(0.8, 1.2)] * 2), i, 0.0)
    labels = axes.get_legend_handles_labels()[1]
    assert labels == ["s0", "IQR of the rounds (band)", "min/max of the rounds (dotted)", "s1", "s2"]

    def png_height(series_count: int) -> int:
        from ampcore.history.report.build import Chart

        series = [Series(f"s{i}", x=[0, 1], y=[1.0, 1.1]) for i in range(series_count)]
        png = drawing.draw(Chart("c", "c", "s", series), [_run(0, START, "a" * 40),
                                                          _run(1, START + timedelta(days=1), "b" * 40)])
        return struct.unpack(">I", png[20:24])[0]

    assert png_height(6) > png_height(1)  # one legend row per series, below the plot


def test_latest_run_table_leaves_out_columns_no_benchmark_recorded(tmp_path):
    runs = history(tmp_path / "store", 2)
    page = render_html(runs, [], {}, [], "t")
    latest = page.split("<h2>Latest run:")[1].split("</table>")[0]
    assert "peak device memory" in latest  # recorded by the synthetic runs
    assert "DDP scaling efficiency" not in latest and "aten ops per step" not in latest


def test_report_renders_in_headless_chromium(tmp_path, monkeypatch):
    """The page as a real browser shows it: the red of a regression and the charts, decoded
    from their data URIs (matplotlib's first colour, #1f77b4)."""
    import shutil
    import subprocess

    browser = next(filter(None, map(shutil.which, ("chromium", "chromium-browser",
                                                     "google-chrome"))), None)
    if browser is None:
        pytest.skip("no Chromium on PATH (Debian: apt-get install chromium)")
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    history(tmp_path / "store", 3, slower_from=2)
    assert main(["report", "store", "--out", "site", "--no-progress"]) == 0
    shot = tmp_path / "shot.png"
    subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1000,3000", f"--screenshot={shot}",
                    (tmp_path / "site" / "index.html").as_uri()],
                   capture_output=True, timeout=180, check=True)
    image = Image.open(shot).convert("RGB")
    assert image.size == (1000, 3000)
    colours = {colour for _, colour in image.getcolors(maxcolors=10_000_000)}
    assert (0xb0, 0x00, 0x20) in colours  # .bad: the regression headline and rows
    assert (0x1f, 0x77, 0xb4) in colours  # a chart's first series


def test_the_page_builds_its_verdict_rows_once(tmp_path, monkeypatch):
    """The failing list and the full table are made of the same rows, built once."""
    from ampcore.history.report import summary

    runs = history(tmp_path / "s", 3, slower_from=2)
    charts, comparison = charts_by_slug(runs)
    calls = []
    real = summary.rows

    def counted(comp):
        calls.append(comp)
        return real(comp)

    monkeypatch.setattr(summary, "rows", counted)
    page = render_html(runs, list(charts.values()), {s: b"" for s in charts}, [], "t", comparison)
    assert calls == [comparison]
    assert 'id="failing"' in page  # the failing list is still drawn from them
    render_html(runs, [], {}, [], "t")  # one run's page: no comparison, no rows to build
    assert len(calls) == 1
