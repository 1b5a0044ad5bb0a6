"""The typed session record and run config beside BenchmarkRecord: written and read back, and
older files (schema 1, configs without later keys) still load."""

import dataclasses
import json

import pytest

from ampcore.core.profiles import WorkloadConfig
from ampcore.core.registry import workload_entry
from ampcore.judge.record import RecordError, SessionRecord
from ampcore.train.config import RunConfig

ENV = {"device_type": "cuda", "gpu": "NVIDIA H200", "driver": "580.159.04", "torch": "2.11.0"}


def test_a_session_record_round_trips_through_json():
    record = SessionRecord(ENV, cuda_graphs=True, incomplete=True)
    saved = json.loads(json.dumps({"ampcore": record.to_machine_info()}))
    assert SessionRecord.from_machine_info(saved) == record


def test_a_schema_1_session_reads_with_its_step_mode_and_incomplete_mark():
    old = {"ampcore": {**ENV, "cuda_graphs": False, "incomplete": True}}
    record = SessionRecord.from_machine_info(old)
    assert (record.environment, record.cuda_graphs, record.incomplete, record.schema) == (
        ENV, False, True, 1)
    assert record.fields() == {**ENV, "cuda_graphs": False}


@pytest.mark.parametrize("machine_info", [None, {}, {"ampcore": "gpu"}, {"cpu": {}}])
def test_a_session_without_an_ampcore_entry_is_none(machine_info):
    assert SessionRecord.from_machine_info(machine_info) is None


@pytest.mark.parametrize("version, message", [(3, "session schema 3 is newer"),
                                              ("2", "is '2', not a schema version")])
def test_a_session_of_an_unknown_schema_is_refused_by_name(version, message):
    with pytest.raises(RecordError, match=message):
        SessionRecord.from_machine_info({"ampcore": {**ENV, "session_schema": version}})


def test_the_run_config_holds_every_workload_config_field():
    names = {f.name for f in dataclasses.fields(RunConfig)}
    assert {f.name for f in dataclasses.fields(WorkloadConfig)} <= names


def test_a_run_config_round_trips_and_saves_processes_only_when_not_1():
    workload = workload_entry("bert").config("smoke")
    config = RunConfig.of_run(workload, compile=False, cuda_graphs=True, rounds=3,
                              steps_per_round=(2, 2, 1), injections=("extra-sync",))
    saved = json.loads(json.dumps(config.to_dict()))
    assert "processes" not in saved and saved["steps_per_round"] == [2, 2, 1]
    assert RunConfig.from_dict(saved) == config
    merged = dataclasses.replace(config, processes=3, world_size=2, global_batch_size=128)
    assert RunConfig.from_dict(merged.to_dict()) == merged


def test_an_old_or_malformed_config_reads_what_it_can():
    config = RunConfig.from_dict({"batch_size": 64, "max_length": 256.0, "model": 7,
                                  "cuda_graphs": "yes", "processes": True,
                                  "steps_per_round": [1, "x"], "unknown": 1})
    assert (config.batch_size, config.max_length, config.model, config.cuda_graphs) == (
        64, 256, None, None)
    assert config.processes == 1 and config.steps_per_round == () and config.epochs is None


def test_a_saved_run_whose_session_record_is_newer_is_skipped_by_name(tmp_path):
    from ampcore.history.storage import read_run
    from tests.support import synthetic

    path = synthetic.small_history(tmp_path, 1)[0]
    synthetic.edit_run(path, lambda doc: doc["machine_info"]["ampcore"].update(session_schema=9))
    run, problems = read_run(path)
    assert run is None and "session schema 9 is newer" in str(problems[0])
    assert "file skipped" in str(problems[0])
