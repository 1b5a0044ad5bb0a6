"""``ampcore calibrate --write`` derives the stability limits (round CV) like the others, and
``compare`` then judges a run above them unstable."""

import tomllib
from datetime import datetime, timezone

import numpy as np

from ampcore.cli import main
from ampcore.history.config import load_config
from tests.support import synthetic

CAPTURED_ENV = synthetic.environment(cuda_graphs=True)


def test_calibrate_writes_a_round_cv_limit_that_compare_reads(tmp_path, capsys):
    store = tmp_path / ".benchmarks" / "m"
    synthetic.write_history(store, 10, env=CAPTURED_ENV, noise=0.01)
    pyproject = tmp_path / "pyproject.toml"
    assert main(["calibrate", str(store.parent), "--trials", "0", "--write",
                 str(pyproject)]) == 0
    written = tomllib.loads(pyproject.read_text())["tool"]["ampcore"]
    limit = written["compare"]["captured"]["round_cv"]
    noise = written["calibration"]["captured"]["noise"]["round_cv"]
    assert 0.01 <= noise < limit <= 0.05  # 1.5x the 99th percentile of ~1 % CVs, rounded up
    assert load_config(pyproject).stability_limits("captured").round_cv == limit
    capsys.readouterr()
    # a new run, 5x noisier than any calibrated one, is unstable against that limit
    doc = synthetic.amp_session(np.random.default_rng(5), datetime(2025, 2, 1, tzinfo=timezone.utc),
                                env=CAPTURED_ENV, noise=0.15)
    synthetic.write_run(store, 11, doc)
    status = main(["compare", str(store.parent), "--config", str(pyproject)])
    out = capsys.readouterr().out
    assert status == 5 and f"> limit {limit * 100:.3g} %: time verdicts unreliable" in out
