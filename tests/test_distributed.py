"""DistributedDataParallel runs on the CPU (gloo, 2 processes): planning, merging, errors, the
NCCL environment, exact agreement with single-process training, and one end-to-end run. The
agreement tests also run on 2 GPUs (NCCL, eager and with CUDA graphs) where 2 are visible."""

import contextlib
import io
import json
import math
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from torch.distributed.elastic.multiprocessing.errors import (
    ErrorHandler, ProcessFailure, record,
)

from ampcore import launch as distributed
from ampcore.cli import main
from ampcore.launch import (
    DistributedRunError, WorkerFailure, check_nproc, failure_message, global_samples_per_round,
    launch_command, merge_rank_results, run_distributed, worker, worker_environment,
)
from ampcore.launch import torchrun as launch
from ampcore.launch.protocol import (
    LAUNCHER_ERROR_FILE, LOG_DIR, RankErrorHandler, exit_code_of, read_failures,
)
from ampcore.core.errors import DataError, DeviceUnavailableError, UsageError
from ampcore.judge.speedup import scaling_efficiency
from ampcore.train.loop import Trainer
from ampcore.train.plan import plan_steps, shard_batch
from ampcore.core.registry import get_precision
from ampcore.train.precision import activate, check_supported
from ampcore.train.result import RunResult, read_json
from ampcore.train.spec import RunSpec
from ampcore.workloads.base import PreparedWorkload, make_adamw

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path_factory):
    """No data dir and no hub from the environment, and caches in tmp: the workers inherit it."""
    monkeypatch.setenv("AMPCORE_CACHE_DIR", str(tmp_path_factory.mktemp("ampcore-cache")))
    monkeypatch.delenv("AMPCORE_DATA_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


# --- pure functions -----------------------------------------------------------------------

def test_scaling_efficiency(make_result):
    single = make_result()  # 62.5 samples/s
    ddp = lambda world, samples: make_result(config={"world_size": world},  # noqa: E731
                                             samples_per_round=samples)
    assert scaling_efficiency(ddp(2, [180, 180, 90]), single) == pytest.approx(0.9)
    assert scaling_efficiency(ddp(1, [100, 100, 50]), single) == 1.0
    with pytest.raises(UsageError, match="at least 1"):
        scaling_efficiency(ddp(0, [100, 100, 50]), single)
    with pytest.raises(UsageError, match="positive"):
        scaling_efficiency(ddp(2, [100, 100, 50]), make_result(samples_per_round=[0, 0, 0]))


def test_worker_environment_turns_nvlink_multicast_off_unless_set():
    base = {"PATH": "/bin", "NCCL_NVLS_ENABLE": "", "OMP_NUM_THREADS": "3"}
    env = worker_environment(base, nproc=4, cpu_count=32)
    assert env["NCCL_NVLS_ENABLE"] == "0"  # empty counts as unset
    assert env["TORCH_SYMM_MEM_DISABLE_MULTICAST"] == "1"
    assert env["NVSHMEM_DISABLE_NVLS"] == "1"
    assert env["PATH"] == "/bin" and env["OMP_NUM_THREADS"] == "3"
    assert base == {"PATH": "/bin", "NCCL_NVLS_ENABLE": "", "OMP_NUM_THREADS": "3"}  # not mutated
    kept = worker_environment({"NCCL_NVLS_ENABLE": "1", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "0",
                               "NVSHMEM_DISABLE_NVLS": "0"}, nproc=2, cpu_count=2)
    assert (kept["NCCL_NVLS_ENABLE"], kept["TORCH_SYMM_MEM_DISABLE_MULTICAST"],
            kept["NVSHMEM_DISABLE_NVLS"]) == ("1", "0", "0")
    assert worker_environment({}, nproc=4, cpu_count=32)["OMP_NUM_THREADS"] == "8"
    assert worker_environment({}, nproc=4, cpu_count=2)["OMP_NUM_THREADS"] == "1"


def test_check_nproc(monkeypatch):
    for bad in (0, -1, True, 1.5):
        with pytest.raises(UsageError, match="--nproc"):
            check_nproc(bad, "cpu")
    monkeypatch.setattr(launch, "cpu_cores", lambda: 4)
    check_nproc(3, "cpu")
    check_nproc(4, "cpu")
    with pytest.raises(UsageError, match=r"^--nproc 5 on cpu starts 5 processes, "
                       r"but 4 CPU cores are available to this process; use --nproc 4 or fewer$"):
        check_nproc(5, "cpu")
    with pytest.raises(UsageError, match="cuda \\(nccl\\) or cpu"):
        check_nproc(2, "meta")
    with pytest.raises(UsageError, match="give --device cuda"):
        check_nproc(2, "cuda:1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    check_nproc(1, "cuda")
    with pytest.raises(UsageError, match="needs 2 GPUs.*1 is visible"):
        check_nproc(2, "cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceUnavailableError, match="CUDA is not available"):
        check_nproc(2, "cuda")


def test_run_distributed_refuses_bad_nproc_before_launching():
    with pytest.raises(UsageError, match="--nproc"):
        run_distributed(RunSpec("bert", "fp32", "smoke", "cpu"), 0)


@pytest.mark.parametrize("size", range(1, 10))
@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
def test_shard_batch_deals_equal_shares_covering_the_batch(size, world_size):
    batch = torch.arange(100, 100 + size)
    shares = [shard_batch(batch, r, world_size) for r in range(world_size)]
    assert len({len(s) for s in shares}) == 1 and len(shares[0]) == math.ceil(size / world_size)
    assert set(torch.cat(shares).tolist()) == set(batch.tolist())
    if size % world_size == 0:  # no padding: a partition of the batch
        assert sorted(torch.cat(shares).tolist()) == batch.tolist()


def test_sharded_plan_is_the_global_plan_split_across_ranks():
    n, global_batch, epochs = 50, 12, 3  # each epoch ends on a partial batch of 2
    whole = plan_steps(n, global_batch, epochs, seed=7, min_rounds=5, device=CPU)
    for world_size in (2, 3):
        plans = [plan_steps(n, global_batch, epochs, 7, 5, CPU, rank=r, world_size=world_size)
                 for r in range(world_size)]
        for plan in plans:
            assert plan.rounds == whole.rounds and plan.epoch_ends == whole.epoch_ends
        for step, batch in enumerate(whole.batches):
            shares = [p.batches[step] for p in plans]
            assert set(torch.cat(shares).tolist()) == set(batch.tolist())
        # Global samples are counted without the padding of the uneven last batches.
        expected = [sum(len(whole.batches[i]) for i in r) for r in whole.rounds]
        assert global_samples_per_round(n, global_batch, plans[0].rounds) == expected
        assert sum(expected) == n * epochs
    with pytest.raises(UsageError, match="outside a world"):
        plan_steps(n, global_batch, epochs, 7, 5, CPU, rank=2, world_size=2)


def _rank_result(rank: int, **overrides) -> RunResult:
    fields = dict(
        workload="bert", precision="amp-fp16", profile="smoke", device=f"cuda:{rank}",
        config={"batch_size": 64}, data_source="d", weights_source="w", accuracy_meaningful=True,
        round_times_s=[1.0 + rank, 2.0 - rank], samples_per_round=[64, 64], total_steps=2,
        warmup_time_s=0.1, eval_time_s=0.2, accuracy_per_epoch=[0.5 + rank],
        test_loss_per_epoch=[0.7],
        train_losses=[1.0 + rank, 3.0 + rank], predictions=[1, 0], peak_memory_bytes=100 + rank,
        grad_scaler={"enabled": True, "final_scale": 1024.0, "skipped_steps": 1},
        nonfinite_losses=0, environment={}, details={"parameters": 5})
    fields.update(overrides)
    return RunResult(**fields)


def test_merge_rank_results():
    merged = merge_rank_results([_rank_result(0), _rank_result(1)], [128, 100], "cuda", "nccl")
    assert merged.round_times_s == [2.0, 2.0]  # the slowest rank's, round by round
    assert merged.samples_per_round == [128, 100]
    assert merged.train_losses == [1.5, 3.5]
    assert merged.accuracy_per_epoch == [0.5]  # rank 0 reports
    assert merged.peak_memory_bytes == 101 and merged.device == "cuda"
    ranks = merged.merged.parts
    assert merged.merged.how == "ddp" and merged.merged.backend == "nccl"
    assert [p.peak_memory_bytes for p in ranks] == [100, 101]
    assert [p.device for p in ranks] == ["cuda:0", "cuda:1"]
    assert ranks[1].round_times_s == (2.0, 1.0)
    assert merged.details == {"parameters": 5}  # the workload's alone
    assert merged.world_size == 2 and merged.config["world_size"] == 2
    assert merged.config["global_batch_size"] == 128
    assert merged.merged.consistent is True
    assert [p.final_scale for p in ranks] == [1024.0, 1024.0]
    off = _rank_result(1, grad_scaler={"enabled": True, "final_scale": 512.0, "skipped_steps": 2})
    split = merge_rank_results([_rank_result(0), off], [128, 100], "cuda", "nccl")
    assert split.merged.consistent is False
    assert [p.skipped_steps for p in split.merged.parts] == [1, 2]
    assert "DIFFERENT" in distributed.describe(split)
    cpu = merge_rank_results([_rank_result(0, peak_memory_bytes=None),
                              _rank_result(1, peak_memory_bytes=None)], [1, 1], "cpu", "gloo")
    assert cpu.peak_memory_bytes is None


def test_failure_message_puts_the_root_cause_first_and_groups_equal_failures():
    root = WorkerFailure(1, 2, "UsageError", "bad option", time=5.0)
    later = [WorkerFailure(0, 1, "RuntimeError", "peer gone", time=6.0),
             WorkerFailure(1, 2, "UsageError", "bad option", time=5.0),
             WorkerFailure(2, 1, "RuntimeError", "peer gone", time=6.0)]
    message, failures = failure_message("run", 1, later, "", root)
    assert [f.process for f in failures] == [1, 0, 2]  # torchrun's root cause, then by time
    assert message == ("run failed: rank 1 exited with code 2: UsageError: bad option; "
                       "then ranks 0, 2 exited with code 1: RuntimeError: peer gone")
    raised = [WorkerFailure(1, 1, "DataError", "no data", time=2.0),
              WorkerFailure(0, 1, "DataError", "no data", time=1.0)]
    message, failures = failure_message("run", 1, raised, "", root=raised[1])
    assert message == "run failed: ranks 0, 1 exited with code 1: DataError: no data"
    assert [f.process for f in failures] == [0, 1]
    message, _ = failure_message("run", 1, [], "", WorkerFailure(None, 1, "RendezvousError", "x"))
    assert message == "run failed: torchrun raised RendezvousError: x"


def test_failure_message_without_error_files():
    # A rank killed by a signal first: torchrun has no error file to copy as the root cause.
    later = [WorkerFailure(0, 1, "RuntimeError", "Connection closed by peer")]
    message, failures = failure_message("run", 1, later, "", root=None)
    assert message.startswith("run failed: a process that left no error file failed first")
    assert message.endswith("then rank 0 exited with code 1: RuntimeError: Connection closed "
                            "by peer") and failures == later
    message, failures = failure_message("run", -9, [], "the summary")
    assert "was killed by SIGKILL and no rank left an error file" in message
    assert "the summary" in message and not failures
    message, _ = failure_message("run", 0, [], "")
    assert "rank 0 wrote no result" in message


def test_exit_code_of():
    assert exit_code_of(DataError("x")) == 1
    assert exit_code_of(UsageError("x")) == 2
    assert exit_code_of(KeyboardInterrupt()) == 130
    assert exit_code_of(RuntimeError("x")) == 1


def test_launch_command_runs_the_worker_module_with_error_files_under_out(tmp_path):
    command = launch_command(2, tmp_path, progress=True, collective_timeout_s=5, python="py")
    assert command[:3] == ["py", "-m", "torch.distributed.run"]
    assert "--nproc-per-node=2" in command and f"--log-dir={tmp_path / LOG_DIR}" in command
    assert command[command.index("-m", 3) + 1] == "ampcore.launch.worker"
    assert command[-5:] == ["--out", str(tmp_path), "--collective-timeout", "5", "--progress"]


def _fail_as_rank(rank: int, exc: Exception, monkeypatch, error_file: Path) -> None:
    """What a failing worker does: its body raises under elastic's ``record`` with ampcore's
    handler, with the error file torchrun gives it."""
    error_file.parent.mkdir(parents=True)
    monkeypatch.setenv("TORCHELASTIC_ERROR_FILE", str(error_file))
    monkeypatch.setenv("RANK", str(rank))

    def body() -> None:
        raise exc

    with pytest.raises(type(exc)):  # recorded, then raised on: the worker exits after it
        record(body, RankErrorHandler())()


def test_rank_error_files_come_back_with_rank_exit_code_and_traceback(tmp_path, monkeypatch):
    attempt = tmp_path / LOG_DIR / "run_abc" / "attempt_0"
    _fail_as_rank(0, UsageError("bad --option"), monkeypatch, attempt / "0" / "error.json")
    _fail_as_rank(1, DataError("no MNIST in /x"), monkeypatch, attempt / "1" / "error.json")
    # torchrun parses the same files (ProcessFailure) to pick its root cause: it must accept them.
    parsed = ProcessFailure(local_rank=1, pid=1, exitcode=1, error_file=str(attempt / "1" /
                                                                             "error.json"))
    assert parsed.message["message"] == "DataError: no MNIST in /x" and parsed.timestamp > 0
    # ... and copies the first failure's file into its own TORCHELASTIC_ERROR_FILE.
    monkeypatch.setenv("TORCHELASTIC_ERROR_FILE", str(tmp_path / LAUNCHER_ERROR_FILE))
    ErrorHandler().dump_error_file(str(attempt / "1" / "error.json"), 1)
    recorded, root = read_failures(tmp_path)
    assert [(f.process, f.exit_code, f.error, f.message) for f in recorded] == [
        (0, 2, "UsageError", "bad --option"), (1, 1, "DataError", "no MNIST in /x")]
    assert "Traceback" in recorded[1].traceback and "DataError" in recorded[1].traceback
    assert (root.process, root.error, root.message) == (1, "DataError", "no MNIST in /x")
    message, failures = failure_message("run", 1, recorded, "", root)
    assert message == ("run failed: rank 1 exited with code 1: DataError: no MNIST in /x; "
                       "then rank 0 exited with code 2: UsageError: bad --option")


def test_read_failures_skips_unreadable_error_files(tmp_path):
    rank_dir = tmp_path / LOG_DIR / "run" / "attempt_0" / "0"
    rank_dir.mkdir(parents=True)
    (rank_dir / "error.json").write_text('{"message": {"mess')  # cut short by a kill
    assert read_failures(tmp_path) == ([], None)


def test_worker_entry_point_needs_torchrun(monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("RANK", raising=False)
    assert worker.main(["--out", str(tmp_path)]) == 2
    assert "torchrun" in capsys.readouterr().err
    # The worker's names stay reachable from the package, loaded on first use.
    assert distributed.rank_device is worker.rank_device
    with pytest.raises(AttributeError):
        distributed.no_such_name  # noqa: B018


# --- DDP training equals single-process training with the same global batch ----------------
# A hand-built MLP: no dropout (whose masks depend on the local batch shape) and no BatchNorm
# (whose statistics are per rank, not of the global batch), so with equal shares DDP's gradient
# average is exactly the global batch's gradient, up to float rounding. The smoke bert has
# dropout and the smoke resnet18 has BatchNorm: neither can match single-process training.

GLOBAL_BATCH, EPOCHS, SEED = 16, 3, 3
N_SAMPLES = 100  # 6 full global batches and one of 4 per epoch: shares stay equal (2 + 2)
# amp-fp16 trains on inputs x100 so that fp16 gradients overflow at the initial scale: the
# GradScaler must skip steps and back off, the decisions that have to agree across ranks.
INPUT_SCALE = {"fp32": 1.0, "amp-fp16": 100.0}


# Where the runs happen: gloo on the CPU always; NCCL on 2 GPUs, eager and with captured steps
# (the default on CUDA), where 2 GPUs are visible.
BACKENDS = {"cpu-gloo": ("cpu", False), "cuda-nccl": ("cuda", False),
            "cuda-nccl-graphs": ("cuda", True)}


def _mlp_workload(input_scale: float, device: torch.device) -> PreparedWorkload:
    generator = torch.Generator().manual_seed(SEED)
    x = torch.randn(N_SAMPLES, 12, generator=generator)
    y = (x @ torch.randn(12, 3, generator=generator)).argmax(dim=1)
    x = (x * input_scale).to(device)
    y = y.to(device)
    torch.manual_seed(SEED)
    model = nn.Sequential(nn.Linear(12, 32), nn.Tanh(), nn.Linear(32, 3)).to(device)
    return PreparedWorkload(
        name="mlp", model=model, optimizer=make_adamw(model, 1e-2, 0.01, device),
        scheduler=None, forward=lambda m, inputs: m(inputs["x"]), train_inputs={"x": x},
        train_labels=y, test_inputs={"x": x[:20]}, test_labels=y[:20], data_source="random",
        weights_source="random init", accuracy_meaningful=True)


def _train_mlp(precision: str, device: torch.device = CPU, cuda_graphs: bool = False,
               rank: int = 0, world_size: int = 1, wrap_model=None) -> dict:
    workload = _mlp_workload(INPUT_SCALE[precision], device)
    plan = plan_steps(N_SAMPLES, GLOBAL_BATCH, EPOCHS, SEED, min_rounds=3, device=device,
                      rank=rank, world_size=world_size)
    with activate(get_precision(precision), device) as amp:
        trainer = Trainer(workload, amp, plan, wrap_model=wrap_model, cuda_graphs=cuda_graphs)
        trainer.warm_up(2)  # undone afterwards; with CUDA graphs it also captures the steps
        for r in range(len(plan.rounds)):
            trainer.run_round(r)
            trainer.check_losses()
        return {"losses": trainer.losses.tolist(),
                "params": [p.detach().flatten().tolist() for p in workload.model.parameters()],
                "final_scale": amp.scaler_state()["final_scale"],
                "skipped_steps": trainer.skipped_steps()}


def _mlp_rank(rank: int, world_size: int, port: int, out_dir: str, precisions: list,
              backend: str) -> None:
    """One spawned rank: the MLP under DDP, through ampcore's process group and wrapper."""
    kind, cuda_graphs = BACKENDS[backend]
    os.environ.update(worker_environment(os.environ, world_size, 1, cuda_graphs=cuda_graphs))
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size))
    torch.set_num_threads(1)
    device = worker.rank_device(kind, rank)
    with worker.process_group(device, timeout_s=60):
        wrap = worker.ddp_wrapper(device)
        runs = {p: _train_mlp(p, device, cuda_graphs, rank, world_size, wrap) for p in precisions}
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(runs))
    os._exit(0)  # done: skip the interpreter's teardown, seconds with torch._dynamo loaded


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module", params=list(BACKENDS))
def mlp_runs(request, tmp_path_factory):
    backend = request.param
    kind, cuda_graphs = BACKENDS[backend]
    if kind == "cuda" and torch.cuda.device_count() < 2:
        pytest.skip(f"{backend}: needs 2 CUDA GPUs; {torch.cuda.device_count()} visible")
    device = torch.device(kind)
    precisions = ["fp32"]
    with contextlib.suppress(Exception):
        check_supported(get_precision("amp-fp16"), device)
        precisions.append("amp-fp16")
    out = tmp_path_factory.mktemp(f"ddp-mlp-{backend}")
    mp.spawn(_mlp_rank, args=(2, _free_port(), str(out), precisions, backend), nprocs=2,
             join=True)
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the ranks run: a tiny model is slowest with idle threads
    try:
        single = {p: _train_mlp(p, device, cuda_graphs) for p in precisions}
    finally:
        torch.set_num_threads(threads)
    return {p: {"ranks": [r[p] for r in ranks], "single": single[p]} for p in precisions}


@pytest.mark.serial
def test_ddp_fp32_loss_curve_equals_single_process_with_the_global_batch(mlp_runs):
    run = mlp_runs["fp32"]
    ddp = distributed.mean_losses([r["losses"] for r in run["ranks"]])
    single = run["single"]["losses"]
    assert len(ddp) == len(single) == EPOCHS * math.ceil(N_SAMPLES / GLOBAL_BATCH)
    assert ddp[-1] < ddp[0]  # it learned something
    torch.testing.assert_close(torch.tensor(ddp), torch.tensor(single), rtol=1e-4, atol=1e-6)
    # The replicas stay equal, and equal to the single-process model.
    rank0, rank1 = ([torch.tensor(p) for p in r["params"]] for r in run["ranks"])
    for a, b, c in zip(rank0, rank1, (torch.tensor(p) for p in run["single"]["params"])):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
        torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-5)


@pytest.mark.serial
def test_ddp_gradscaler_decisions_agree_across_ranks(mlp_runs):
    if "amp-fp16" not in mlp_runs:
        pytest.skip("amp-fp16 autocast is not available on this CPU build of torch")
    rank0, rank1 = mlp_runs["amp-fp16"]["ranks"]
    assert rank0["skipped_steps"] > 0  # the scaler really had to decide something
    assert rank0["final_scale"] == rank1["final_scale"]
    assert rank0["skipped_steps"] == rank1["skipped_steps"]
    assert rank0["final_scale"] < 65536.0


# --- torchrun end to end ------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.serial
def test_cli_nproc_2_trains_bert_with_ddp_on_cpu(tmp_path):
    """`ampcore run --nproc 2` through torchrun and gloo: one merged result, global samples."""
    path = tmp_path / "ddp.json"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["run", "--workload", "bert", "--precision", "fp32", "--profile", "smoke",
                     "--device", "cpu", "--no-progress", "--nproc", "2", "--json", str(path)])
    assert code == 0, err.getvalue()[-3000:]
    assert "| Regular (fp32)" in out.getvalue()
    assert "DDP on 2 processes (gloo), global batch 64 = 2 x 32" in err.getvalue()
    [result] = read_json(path)
    config = result.config
    ranks = result.merged.parts
    assert result.world_size == 2 and result.merged.backend == "gloo"
    assert [p.peak_memory_bytes for p in ranks] == [None, None]
    assert result.merged.consistent is True
    assert [p.skipped_steps for p in ranks] == [0, 0]
    assert config["batch_size"] == 32 and config["global_batch_size"] == 64
    # Global samples: every epoch trains the whole training split once, over both ranks.
    assert sum(result.samples_per_round) == config["epochs"] * config["train_samples"]
    steps_per_epoch = math.ceil(config["train_samples"] / 64)
    assert result.total_steps == len(result.train_losses) == config["epochs"] * steps_per_epoch
    assert len(result.round_times_s) == len(result.samples_per_round) == config["rounds"]
    assert all(math.isfinite(x) for x in result.train_losses)
    assert len(result.accuracy_per_epoch) == config["epochs"]
    assert len(result.predictions) == config["test_samples"]
    assert result.samples_per_s > 0


@pytest.mark.slow
@pytest.mark.serial
def test_worker_failure_is_a_clear_error_naming_the_rank(tmp_path):
    """Every rank fails to find MNIST: an error naming the ranks and the cause, no hang."""
    spec = RunSpec("resnet18", "fp32", "seed", "cpu", data_dir=tmp_path)
    expected = r"rank.*exited with code 1: DataError: MNIST"
    with pytest.raises(DistributedRunError, match=expected) as info:
        run_distributed(spec, 2, timeout_s=300)
    first = info.value.failures[0]
    assert first.error == "DataError" and "MNIST" in first.message
    assert info.value.exit_code == 1
    # It came through the ranks' elastic error files: rank, exit code and the traceback of
    # the raise, which nothing else carries (no output is parsed).
    # Both ranks raise, but torchrun may stop the later one before it records its error.
    assert first.process in (0, 1) and {f.process for f in info.value.failures} <= {0, 1}
    assert all(f.exit_code == 1 and f.time > 0 for f in info.value.failures)
    assert "Traceback" in first.traceback and "DataError" in first.traceback
