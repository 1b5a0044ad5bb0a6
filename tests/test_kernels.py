"""Kernel attribution: per-kernel device time of one step, grouped by class, and the kernels a
time change names (pure functions over profiler events; the CUDA pass itself runs on a GPU)."""

import pytest

from ampcore.judge.record import BenchmarkRecord
from ampcore.measure import kernels

GEMM = "sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64_warpgroupsize1x1x1"
FLASH = "void pytorch_flash::flash_fwd_kernel<Flash_fwd_kernel_traits<64, 128>>(Flash_fwd_params)"
ADAM = "void at::native::(anonymous namespace)::multi_tensor_apply_kernel<FusedAdamMathFunctor>"
LN = "void at::native::(anonymous namespace)::vectorized_layer_norm_kernel<float, float>"
COPY = "void at::native::elementwise_kernel<128, 4, direct_copy_kernel_cuda>"


@pytest.mark.parametrize("name, label", [(GEMM, "gemm"), (FLASH, "attention"),
                                         (ADAM, "optimizer"), (LN, "normalization"),
                                         (COPY, "copy"), ("mystery_kernel", "other")])
def test_kernels_fall_into_their_class(name, label):
    assert kernels.kernel_class(name) == label


def test_times_are_summed_by_name_and_the_tail_kept_as_other():
    events = [(GEMM, 100.0), (GEMM, 50.0), (LN, 10.0), (ADAM, 5.0), (COPY, 1.0)]
    times = kernels.kernel_times(events, top=2)
    assert times == {GEMM: 150.0, LN: 10.0, kernels.OTHER: 6.0}
    assert kernels.by_class(times) == {"gemm": 150.0, "normalization": 10.0, "other": 6.0}


def test_a_time_change_names_the_slower_new_and_lost_kernels_largest_first():
    base = [{GEMM: 1000.0, FLASH: 300.0, LN: 50.0}, {GEMM: 1010.0, FLASH: 300.0, LN: 50.0}]
    candidate = {GEMM: 1300.0, "math_attention_kernel": 900.0, LN: 50.0}
    lines = kernels.changes(base, candidate)
    assert lines[0].startswith("new attention math_attention_kernel: 0.900 ms")
    assert lines[1] == "lost attention pytorch_flash::flash_fwd_kernel: was 0.300 ms"
    assert lines[2].startswith("gemm sm90_xmma_gemm") and "+0.295 ms (+29.4%)" in lines[2]
    assert len(lines) == 3  # the layer norm did not move


def test_unchanged_kernels_and_missing_times_name_nothing():
    same = {GEMM: 1000.0, LN: 50.0}
    assert kernels.changes([same, same], {GEMM: 1001.0, LN: 50.0}) == []  # under 0.5 %
    assert kernels.changes([], same) == [] and kernels.changes([same], {}) == []
    assert kernels.changes([{}], same) == []  # a baseline saved before kernel times


def test_kernel_times_round_trip_through_the_record_and_junk_is_dropped():
    extra = {"workload": "bert", "precision": "amp-bf16", "ampcore_schema": 4,
             "kernel_time_per_step": {GEMM: 120.5, LN: "fast", FLASH: float("nan")}}
    record = BenchmarkRecord.from_extra_info(extra)
    assert record.kernel_time_per_step == {GEMM: 120.5}
    assert BenchmarkRecord.from_extra_info(record.to_extra_info()) == record


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="kernel times need CUDA")
def test_a_cuda_run_records_its_kernel_times_by_class():
    from ampcore.train.run import run_experiment
    from ampcore.train.spec import RunSpec

    result = run_experiment(RunSpec("bert", "amp-bf16", "smoke", device="cuda", cuda_graphs=True))
    times = result.step_probe["kernel_time_per_step"]
    assert times and all(t > 0 for t in times.values())
    assert "gemm" in kernels.by_class(times)


def test_a_time_regression_names_the_kernels_behind_it(tmp_path, monkeypatch, capsys):
    """compare's time verdict (text and JSON) says which kernels moved: the spin kernel a
    gpu-work injection adds, a GEMM that got slower."""
    import json

    import numpy as np

    from ampcore.cli import main
    from tests.support import synthetic

    env = synthetic.environment(cuda_graphs=True)
    store = tmp_path / ".benchmarks" / "m"
    base = {GEMM: 30000.0, FLASH: 3000.0, LN: 500.0}
    # the spin kernel's name as the H200's profiler gave it (docs/runs/gpu/trust-12-03-s8)
    spin = "at::cuda::(anonymous namespace)::spin_kernel(long)"
    slow = {GEMM: 33000.0, FLASH: 3000.0, LN: 500.0, spin: 1000.0}
    for index, (times, slowdown) in enumerate(((base, 1.0), (slow, 1.12)), start=1):
        doc = synthetic.amp_session(np.random.default_rng(index), synthetic.datetime(2025, 1, index,
                                    tzinfo=synthetic.timezone.utc), env=env, noise=0.002,
                                    slowdown={"bert-amp-bf16": slowdown},
                                    records={"bert-amp-bf16": {"kernel_time_per_step": times}})
        synthetic.write_run(store, index, doc)
    monkeypatch.chdir(tmp_path)
    assert main(["compare", str(store.parent), "--json", "-"]) == 1
    data = json.loads(capsys.readouterr().out)
    bert = next(b for b in data["benchmarks"] if b["name"].endswith("[bert-amp-bf16]"))
    note = next(m for m in bert["metrics"] if m["metric"] == "time")["note"]
    assert "kernels: gemm sm90_xmma_gemm" in note and "+3.000 ms (+10.0%)" in note
    assert "new other at::cuda::spin_kernel: 1.000 ms" in note
    assert main(["compare", str(store.parent), "--verbose"]) == 1  # the full table names them too
    assert "kernels: gemm sm90_xmma_gemm" in capsys.readouterr().out
    assert main(["compare", str(store.parent)]) == 1  # and the compact view's regression line
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("REGRESSION"))
    assert "time +" in line and "kernels: gemm sm90_xmma_gemm" in line
    fp32 = next(b for b in data["benchmarks"] if b["name"].endswith("[bert-fp32]"))
    assert "kernels" not in next(m for m in fp32["metrics"] if m["metric"] == "time")["note"]
