"""The report page leads with the verdict, then the failing benchmarks each with its chart,
then the full table; long evidence is folded into <details>; statuses are text badges (no
emoji, which a browser without an emoji font draws as empty boxes); values are humanised."""

import dataclasses
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from ampcore.history.report.build import collect_charts, latest_comparison
from ampcore.history.report.page import render_html
from ampcore.history.storage import Run, load_history
from tests.support import synthetic

START = datetime(2025, 2, 1, tzinfo=timezone.utc)
EMOJI = re.compile("[\U0001F300-\U0001FAFF\u2600-\u27BF\u2B00-\u2BFF\uFE0F]")
EXPONENT = re.compile(r"\d(\.\d+)?e[+-]\d")
FAILING_CHART = "time-test-train-bert-amp-bf16"


def history(store: Path, n: int, slower_from: int | None = None) -> list[Run]:
    """n sessions of bert fp32/amp-bf16; bert-amp-bf16 30 % slower from ``slower_from``."""
    rng = np.random.default_rng(7)
    for index in range(n):
        slow = slower_from is not None and index >= slower_from
        doc = synthetic.amp_session(rng, START + timedelta(days=index), commit=f"{index:040x}",
                                    base_times={"bert": 0.8}, speedups={"bert": 1.9},
                                    slowdown={"bert-amp-bf16": 1.3} if slow else None)
        synthetic.write_run(store, index + 1, doc)
    return load_history([store])[0]


def page_of(runs, comparison=None):
    comparison = comparison or latest_comparison(runs)
    charts = collect_charts(runs, comparison)
    return render_html(runs, charts, {c.slug: b"png" for c in charts}, [], "t", comparison)


@pytest.fixture(scope="module")
def regressed(tmp_path_factory):
    runs = history(tmp_path_factory.mktemp("s") / "store", 6, slower_from=5)
    return runs, latest_comparison(runs)


def in_order(page: str) -> bool:
    """Verdict banner, failing list, a failing chart, then the full table."""
    marks = ['id="verdict"', 'id="failing"', f'<h3 id="{FAILING_CHART}"', 'id="all-metrics"']
    positions = [page.find(mark) for mark in marks]
    return -1 not in positions and positions == sorted(positions)


def test_verdict_then_failing_benchmarks_and_their_charts_then_the_table(regressed):
    runs, comparison = regressed
    page = page_of(runs, comparison)
    assert in_order(page)
    banner = page[page.index('id="verdict"'):page.index("</section>")]
    assert '<span class="badge b-fail">FAIL</span>' in banner and "regression" in banner
    assert "1 benchmark(s) regressed: test_train[bert-amp-bf16]" in banner
    assert re.search(r"b-fail\">FAIL</span> \d+ regression", banner)  # the counts
    failing = page[page.index('id="failing"'):page.index('id="all-metrics"')]
    assert "<strong>test_train[bert-amp-bf16]</strong>: median round time" in failing
    assert 'src="data:image/png;base64,' in failing
    # each chart embedded once: the failing one is not repeated among the other charts
    assert page.count(f'<h3 id="{FAILING_CHART}"') == 1
    assert page.count('src="data:image/png;base64,') == len(collect_charts(runs))
    assert page.index('<h3 id="time-test-train-bert-fp32"') > page.index("<h2>Charts</h2>")


def test_negative_control_order(regressed, tmp_path):
    runs, comparison = regressed
    page = page_of(runs, comparison)
    table = page[page.index('<h2 id="all-metrics"'):page.index("<h2>Latest run:")]
    table_first = page.replace(table, "").replace('<h2 id="failing"', table + '<h2 id="failing"')
    assert not in_order(table_first)
    passing = page_of(history(tmp_path / "flat", 4))  # nothing failed: no failing list
    assert not in_order(passing) and 'id="failing"' not in passing
    assert '<span class="badge b-pass">PASS</span>' in passing


def test_long_evidence_is_folded_into_details(regressed):
    runs, comparison = regressed
    long_note = "kernels: " + ", ".join(f"aten::kernel_{i} +{i} ms" for i in range(30))
    verdicts = tuple(dataclasses.replace(v, metrics=tuple(
        dataclasses.replace(m, note=long_note) if m.metric == "time" else m for m in v.metrics))
        for v in comparison.verdicts)
    page = page_of(runs, dataclasses.replace(comparison, verdicts=verdicts))
    rows = re.findall(r"<td>time</td>.*?</tr>", page, re.S)
    folded = [re.search(r"<details><summary>([^<]*)</summary>([^<]*)</details>", r) for r in rows]
    assert len(rows) == 2 and all(folded)  # both benchmarks' time rows
    assert all(len(f[1]) < 80 and "aten::kernel_29" not in f[1] and "aten::kernel_29" in f[2]
               for f in folded)
    # negative control: the same rows with their short evidence are shown whole, not folded
    short = re.findall(r"<td>time</td>.*?</tr>", page_of(runs, comparison), re.S)
    assert len(short) == 2 and not any("<details>" in r for r in short)
    assert all(re.search(r"<td>p=[0-9.]+ \(adjusted [0-9.]+\)</td>", r) for r in short)


def test_no_emoji_anywhere(regressed, tmp_path):
    runs, comparison = regressed
    for page in (page_of(runs, comparison), page_of(history(tmp_path / "flat", 3))):
        assert not EMOJI.search(page), EMOJI.findall(page)
    assert EMOJI.search("\u274c regression") and EMOJI.search("\u2705 improvement")  # control


def test_values_are_humanised(regressed):
    runs, comparison = regressed
    page = page_of(runs, comparison)
    text = re.sub(r"<[^>]+>|data:image/png;base64,[^\"]*", " ", page)
    assert not EXPONENT.search(text), EXPONENT.findall(text)
    assert EXPONENT.search("1.71e+03 ms")  # negative control
    latest = page.split("<h2>Latest run:")[1].split("</table>")[0]
    assert len(re.findall(r"<td>\d{3} ms</td>", latest)) == 2  # 0.8 s and 0.55 s medians
    assert "<td>2.00 GiB</td>" in latest  # 2,048 MiB of peak memory
    table = page[page.index('id="all-metrics"'):page.index("<h2>Latest run:")]
    assert re.search(r"<td>\d{3} ms</td>", table)  # the full table humanised too


def test_an_unknown_status_is_shown_as_its_own_word(regressed):
    runs, comparison = regressed
    verdicts = tuple(dataclasses.replace(v, metrics=tuple(
        dataclasses.replace(m, status="unstable") if m.metric == "memory" else m
        for m in v.metrics)) for v in comparison.verdicts)
    page = page_of(runs, dataclasses.replace(comparison, verdicts=verdicts))
    assert '<span class="badge b-other">UNSTABLE</span>' in page
    assert re.search(r"UNSTABLE</span> \d+ unstable", page)
    failing = page[page.index('id="failing"'):page.index('id="all-metrics"')]
    assert re.search(r'b-other">UNSTABLE</span> <strong>[^<]+</strong>: peak device memory', failing)
    assert not EMOJI.search(page)


def test_a_missing_benchmark_is_listed_as_failing_with_its_chart(tmp_path):
    rng = np.random.default_rng(1)
    store = tmp_path / "store"
    for index in range(4):  # the newest run lacks bert-amp-bf16
        precisions = ("fp32",) if index == 3 else ("fp32", "amp-bf16")
        synthetic.write_run(store, index + 1, synthetic.amp_session(
            rng, START + timedelta(days=index), commit=f"{index:040x}", base_times={"bert": 0.8},
            speedups={"bert": 1.9}, precisions=precisions))
    runs = load_history([store])[0]
    page = page_of(runs)
    assert in_order(page)
    assert ('<span class="badge b-fail">MISSING</span> <strong>test_train[bert-amp-bf16]'
            '</strong>') in page
    assert "benchmarks missing" in page[:page.index('id="failing"')]
    # negative control: with --allow-missing nothing fails and no chart is pulled up
    allowed = page_of(runs, dataclasses.replace(latest_comparison(runs), allow_missing=True))
    assert 'id="failing"' not in allowed and not in_order(allowed)


def test_an_injected_candidate_is_named_in_the_banner_not_folded(regressed):
    runs, comparison = regressed
    clean = page_of(runs, comparison)
    assert 'id="injected"' not in clean  # negative control: a clean candidate says nothing
    injected = dataclasses.replace(comparison, injected=("test_train[bert-amp-bf16]: extra-sync",))
    page = page_of(runs, injected)
    banner = page[page.index('id="verdict"'):page.index("</section>")]
    named = banner.index('id="injected"')
    assert "extra-sync" in banner[named:] and named < banner.find("<details>")
