"""A workload registered by a conftest.py (docs/WORKLOADS.md) trains in worker processes too:
the launcher names the registering file in the run directory and each worker imports it
before its run (``ampcore.launch.protocol``); an entry point needs nothing."""

import importlib.util
import json
import sys

import pytest

from ampcore.core import registry
from ampcore.launch import protocol
from ampcore.train.spec import RunSpec
from tests.test_user_suite import doc_example


@pytest.fixture
def conftest_workload(tmp_path):
    path = tmp_path / "conftest.py"
    path.write_text(doc_example())
    spec = importlib.util.spec_from_file_location("user_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # registers "blobs", as pytest would
    yield path
    del registry.WORKLOADS["blobs"]
    sys.modules.pop("user_conftest", None)


def test_the_spec_names_the_registering_file_and_builtins_name_none(conftest_workload, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    protocol.write_spec(RunSpec("blobs", "fp32", "smoke", device="cpu"), out)
    assert json.loads((out / protocol.SPEC_FILE).read_text())["registered_in"] == [
        str(conftest_workload)]
    assert registry.registered_in("bert", "amp-bf16") == []  # negative control: built-ins


@pytest.mark.slow
def test_a_conftest_workload_trains_in_a_fresh_process(conftest_workload):
    from ampcore.launch.fresh import run_in_fresh_processes

    result = run_in_fresh_processes(RunSpec("blobs", "fp32", "smoke", device="cpu"), 1)
    assert result.workload == "blobs" and result.merged.how == "fresh"
    assert len(result.round_times_s) >= 1


def test_a_registering_file_that_is_gone_is_named(conftest_workload, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    protocol.write_spec(RunSpec("blobs", "fp32", "smoke", device="cpu"), out)
    conftest_workload.unlink()
    with pytest.raises(protocol.UsageError, match="a worker cannot read it"):
        protocol._import_registrations(conftest_workload)
