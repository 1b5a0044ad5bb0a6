"""DDP benchmarks are gated like single-GPU ones: their rounds (timed in the workers) by the
time test, their speedup against DDP fp32, and their scaling efficiency."""

import json
from datetime import datetime, timedelta, timezone

import numpy as np

from ampcore.cli import main
from ampcore.history import matching
from ampcore.history.storage import read_run
from tests.support import synthetic

WHEN = datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)


def session(rng, when, ddp_slowdown=1.0, efficiency=0.9):
    """bert fp32/amp-bf16 on one GPU and with DDP on 2, 10 rounds each; ``ddp_slowdown`` and
    ``efficiency`` apply to DDP amp-bf16 only."""
    entries = []
    for test, group, world, base in (("test_train", "bert", 1, 0.8),
                                     ("test_ddp_train", "bert-ddp", 2, 0.85)):
        fp32 = None
        for precision in ("fp32", "amp-bf16"):
            median = base if precision == "fp32" else base / 1.9
            if world == 2 and precision == "amp-bf16":
                median *= ddp_slowdown
            rounds = list(median * (1 + 0.02 * rng.standard_normal(10)))
            fp32 = rounds if precision == "fp32" else fp32
            scaling = efficiency if precision == "amp-bf16" else 0.9
            ddp = {"world_size": world, "scaling_efficiency": scaling} if world == 2 else {}
            extra = synthetic.extra_info("bert", precision, rounds, **ddp)
            bench = synthetic.benchmark("bert", precision, rounds, extra, test=test)
            bench["group"] = group
            entries.append(bench)
    return synthetic.run_document(entries, when)


def test_a_ddp_slowdown_is_a_regression_of_time_speedup_and_scaling(tmp_path, monkeypatch,
                                                                     capsys):
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    base = synthetic.write_run(tmp_path / "store", 1, session(rng, WHEN))
    synthetic.write_run(tmp_path / "store", 2, session(rng, WHEN + timedelta(days=1),
                                                       ddp_slowdown=1.25, efficiency=0.72))
    assert main(["compare", "store", "--json", "v.json"]) == 1
    verdicts = {b["name"]: b for b in json.loads((tmp_path / "v.json").read_text())["benchmarks"]}
    ddp = {m["metric"]: m for m in verdicts["test_ddp_train[bert-amp-bf16]"]["metrics"]}
    assert ddp["time"]["status"] == "regression"
    assert ddp["time"]["method"].startswith("one-sided Mann-Whitney U")
    assert ddp["speedup"]["status"] == "regression"  # against DDP fp32, which did not change
    assert ddp["scaling_efficiency"]["status"] == "regression"
    assert abs(ddp["scaling_efficiency"]["change"] + 0.18) < 1e-9  # absolute: 0.90 -> 0.72
    assert verdicts["test_train[bert-amp-bf16]"]["status"] == "ok"
    assert verdicts["test_ddp_train[bert-fp32]"]["status"] == "ok"
    # The DDP speedup's reference is the DDP fp32 benchmark, never the single-GPU one.
    run, _ = read_run(base)
    by_name = {b.name: b for b in run.benchmarks.values()}
    reference = matching.reference_benchmark(run, by_name["test_ddp_train[bert-amp-bf16]"])
    assert reference.name == "test_ddp_train[bert-fp32]"
