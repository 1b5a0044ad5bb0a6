"""``MergedRun``: how a merged result was made survives a save and a load, and results saved
before it (the launchers' figures as loose keys in ``details``) load into the typed record."""

import json
from pathlib import Path

import pytest

from ampcore.core.errors import AmpcoreError
from ampcore.train.merged import MERGED_VERSION, MergedRun, Part
from ampcore.train.result import RunResult, read_json

ROOT = Path(__file__).resolve().parents[1]

# A DDP result's dict as merge_rank_results wrote it before MergedRun (fields it does not
# concern trimmed to the minimum RunResult needs).
OLD_DDP = {
    "workload": "bert", "precision": "amp-fp16", "profile": "seed", "device": "cuda",
    "config": {"epochs": 1, "batch_size": 64, "world_size": 2, "global_batch_size": 128},
    "data_source": "d", "weights_source": "w", "accuracy_meaningful": True,
    "round_times_s": [1.2, 1.1], "samples_per_round": [128, 128], "total_steps": 2,
    "warmup_time_s": 0.1, "eval_time_s": 0.1, "accuracy_per_epoch": [0.8],
    "test_loss_per_epoch": [0.4], "train_losses": [0.7, 0.5], "predictions": [1, 0],
    "peak_memory_bytes": 2048, "grad_scaler": {"enabled": True, "final_scale": 1024.0},
    "nonfinite_losses": 0, "environment": {},
    "details": {"parameters": 5, "world_size": 2, "backend": "nccl", "per_rank_batch_size": 64,
                "global_batch_size": 128, "rank_devices": ["cuda:0", "cuda:1"],
                "per_rank_peak_memory_bytes": [2048, 1024],
                "per_rank_final_scale": [1024.0, 512.0], "per_rank_skipped_steps": [0, 1],
                "scaler_consistent": False,
                "per_rank_round_times_s": [[1.2, 1.0], [1.1, 1.1]]},
}

# A result merged from fresh processes, as merge_process_results wrote it before MergedRun.
OLD_FRESH = {
    **{k: v for k, v in OLD_DDP.items() if k not in ("config", "details")},
    "device": "cuda:0", "config": {"epochs": 1, "batch_size": 64, "processes": 3},
    "details": {"parameters": 5, "processes": 3,
                "per_process_round_times_s": [[1.2, 1.1], [1.3, 1.2], [1.1, 1.0]],
                "per_process_step_time_s": [0.6, 0.65, 0.55],
                "per_process_heldout_accuracy": [0.81, 0.8, 0.82],
                "counters_consistent": True},
}


def test_an_old_ddp_result_loads_its_details_as_the_typed_record():
    result = RunResult.from_dict(json.loads(json.dumps(OLD_DDP)))
    assert result.merged == MergedRun("ddp", (
        Part("cuda:0", (1.2, 1.0), peak_memory_bytes=2048, final_scale=1024.0, skipped_steps=0),
        Part("cuda:1", (1.1, 1.1), peak_memory_bytes=1024, final_scale=512.0, skipped_steps=1),
    ), consistent=False, backend="nccl")
    assert result.details == {"parameters": 5}  # the workload's own details stay
    assert result.world_size == 2 and result.run_config.global_batch_size == 128


def test_an_old_fresh_result_loads_its_details_as_the_typed_record():
    result = RunResult.from_dict(json.loads(json.dumps(OLD_FRESH)))
    merged = result.merged
    assert merged.how == "fresh" and merged.consistent and merged.backend is None
    assert [p.round_times_s for p in merged.parts] == [(1.2, 1.1), (1.3, 1.2), (1.1, 1.0)]
    assert [p.step_time_s for p in merged.parts] == [0.6, 0.65, 0.55]
    assert [p.heldout_accuracy for p in merged.parts] == [0.81, 0.8, 0.82]
    assert {p.device for p in merged.parts} == {"cuda:0"}  # the result's: none of their own
    assert result.details == {"parameters": 5} and result.run_config.processes == 3


def test_the_oldest_files_get_the_sizes_into_config_from_details():
    old = {**OLD_DDP, "config": {"epochs": 1, "batch_size": 64}}
    del old["details"]["per_rank_round_times_s"]  # older still: kept no rank's rounds
    result = RunResult.from_dict(old)
    assert result.world_size == 2 and result.config["global_batch_size"] == 128
    assert [p.round_times_s for p in result.merged.parts] == [(), ()]


def test_a_single_process_result_has_no_record_and_keeps_its_details(make_result):
    result = RunResult.from_dict(make_result(details={"parameters": 5}).to_dict())
    assert result.merged is None and result.details == {"parameters": 5}
    assert result.world_size == 1


def test_the_record_survives_a_save_and_a_load(make_result):
    merged = MergedRun("ddp", (Part("cuda:0", (1.0, 2.0), 1.5, 2**30, 1024.0, 0),
                               Part("cuda:1", (1.1, 1.9), 1.5, 2**30, 1024.0, 0)), True, "nccl")
    saved = json.loads(json.dumps(make_result(merged=merged).to_dict()))
    assert saved["merged"]["version"] == MERGED_VERSION and "merged" not in saved["details"]
    assert RunResult.from_dict(saved).merged == merged


def test_a_newer_record_is_refused_by_version(make_result):
    saved = make_result(merged=MergedRun("fresh", (Part("cpu"),), True)).to_dict()
    saved["merged"]["version"] = MERGED_VERSION + 1
    with pytest.raises(AmpcoreError, match="upgrade ampcore"):
        RunResult.from_dict(saved)


def test_the_saved_ddp_runs_in_docs_load_with_their_ranks():
    [result] = read_json(ROOT / "docs/runs/gpu/ddp2-fp32.json")
    assert result.merged.how == "ddp" and len(result.merged.parts) == result.world_size == 2
    assert [p.device for p in result.merged.parts] == ["cuda:0", "cuda:1"]
    assert "world_size" not in result.details and "architecture" in result.details
