"""The default gate on the fresh H200 sessions of docs/TRUST.md (docs/gpu-runs/trust): the
committed calibration set. A/A pairs of unchanged code raise no alarm; each injected
regression is flagged, by the metric that stands for it, against every A/A baseline."""

import json
import shutil
from pathlib import Path

import pytest

from ampcore.history.compare import REGRESSION, compare
from ampcore.history.config import GateConfig
from ampcore.history.storage import load_history

TRUST = Path(__file__).parent.parent / "docs" / "gpu-runs" / "trust"
# What must flag each kind (its own metric); others may flag too.
EXPECTED = {
    "attention-fallback": {"time", "kernel_launches"},
    "autocast-fp32-op": {"time", "memory"},
    "extra-sync": {"syncs"},
    "optimizer-unfused": {"time", "aten_ops", "kernel_launches"},
    "activation-memory": {"memory", "bytes_allocated"},
}


@pytest.fixture(scope="module")
def sessions(tmp_path_factory):
    """The captured-step sessions, with the Python bytecode counter these sessions saved as 0
    (the Python 3.12 settrace fault ampcore.counters now avoids) set to null, as
    scripts/trust-matrix.py --drop-zero-counters does."""
    root = tmp_path_factory.mktemp("trust")
    for store in TRUST.glob("on-*"):
        shutil.copytree(store, root / store.name)
    for path in root.glob("*/*/*.json"):
        data = json.loads(path.read_text())
        for bench in data["benchmarks"]:
            if bench["extra_info"].get("python_ops_per_step") == 0:
                bench["extra_info"]["python_ops_per_step"] = None
        path.write_text(json.dumps(data))
    runs = {}
    for store in sorted(root.iterdir()):
        loaded, problems = load_history([store])
        assert not problems, problems
        runs[store.name[len("on-"):]] = loaded
    return runs


def flagged(baseline, candidate) -> set[str]:
    comparison = compare([baseline], candidate, GateConfig())
    assert not comparison.env_differences and comparison.verdicts
    return {m.metric for v in comparison.verdicts for m in v.metrics if m.status == REGRESSION}


def test_aa_sessions_raise_no_alarm(sessions):
    aa = sessions["aa"]
    assert len(aa) >= 6
    alarms = {(i, j): flagged(aa[i], aa[j]) for i in range(len(aa)) for j in range(i + 1, len(aa))}
    assert not any(alarms.values()), alarms


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_each_injected_kind_is_flagged_by_its_metric(sessions, kind):
    (candidate,) = sessions[kind]
    for baseline in sessions["aa"]:
        found = flagged(baseline, candidate)
        assert EXPECTED[kind] <= found, (kind, baseline.path.name, found)
