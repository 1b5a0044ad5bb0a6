"""Saved runs in pytest-benchmark's format, built from given round times: for the history
tests and for timing the history tools without a GPU. Statistics come from pytest-benchmark's
own ``Stats`` and ``extra_info`` from ``BenchmarkRecord.to_extra_info``, so the files read back
exactly like ones the suite's ``--benchmark-autosave`` writes."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from ampcore.judge.record import BenchmarkRecord

TEST_FILE = "benchmarks/test_amp.py"
MODEL_TFLOPS_PER_SAMPLE = {"bert": 2.7e-3, "resnet18": 1.1e-3}  # only to fill the field


def environment(gpu: str | None = "NVIDIA H200", driver: str | None = "570.124.06",
                cuda: str | None = "12.8", torch: str = "2.7.1+cu128",
                device_type: str = "cuda", tf32: bool = False,
                cuda_graphs: bool | None = None) -> dict:
    """``machine_info["ampcore"]`` as the suite records it (``cuda_graphs`` None: a run saved
    before the suite recorded its step mode)."""
    graphs = {} if cuda_graphs is None else {"cuda_graphs": cuda_graphs}
    return {**graphs, "gpu": gpu, "gpu_capability": "9.0" if gpu else None, "gpu_count": 1 if gpu else 0,
            "driver": driver, "cuda": cuda, "cudnn": 90100 if cuda else None, "torch": torch,
            "transformers": "4.46.0", "torchvision": "0.22.1", "datasets": "3.1.0",
            "device_type": device_type,
            "tf32": {"matmul_tf32": tf32, "cudnn_conv_tf32": tf32}}


def extra_info(workload: str, precision: str, rounds: Sequence[float], *, accuracy: float = 0.9,
               peak_memory_bytes: int | None = 3 * 2**30, skipped_steps: int = 0,
               samples_per_round: int = 128, speedup: tuple[float, float, float] | None = None,
               env: dict | None = None, **record: object) -> dict:
    """The ``extra_info`` the suite writes: a ``BenchmarkRecord``'s; ``record`` sets any other
    field (``world_size``, ``config``, ``injections``...)."""
    total_samples = samples_per_round * len(rounds)
    train_time = float(sum(rounds))
    tf32 = precision == "tf32"
    fields = dict(
        workload=workload, precision=precision, profile="seed", device="cuda:0",
        train_time_s=train_time, samples_per_s=total_samples / train_time,
        tokens_per_s=total_samples * 256 / train_time if workload == "bert" else None,
        model_tflops=MODEL_TFLOPS_PER_SAMPLE.get(workload, 1e-3) * total_samples / train_time,
        final_accuracy=accuracy, accuracy_per_epoch=(accuracy,),
        final_train_loss=0.2, final_test_loss=0.3,
        peak_memory_bytes=peak_memory_bytes, round_cv=float(np.std(rounds) / np.mean(rounds)),
        skipped_steps=skipped_steps, total_steps=10 * len(rounds),
        grad_scaler_final_scale=65536.0 if precision == "amp-fp16" else None,
        nonfinite_losses=0, eval_time_s=0.5, warmup_time_s=1.0,
        data_source="synthetic", weights_source="synthetic", accuracy_meaningful=True,
        config={"epochs": 1, "batch_size": 64},
        samples_per_round=(samples_per_round,) * len(rounds),
        environment={**(env or environment()),
                     "tf32": {"matmul_tf32": tf32, "cudnn_conv_tf32": tf32}},
        speedup_vs_fp32=speedup[0] if speedup else None,
        speedup_ci=(speedup[1], speedup[2]) if speedup else None)
    fields.update(record)
    return BenchmarkRecord(**fields).to_extra_info()


def benchmark(workload: str, precision: str, rounds: Sequence[float], extra: dict | None = None,
              save_data: bool = True, test: str = "test_train") -> dict:
    """One entry of a saved run's ``benchmarks`` list, of the test function ``test``."""
    from pytest_benchmark.stats import Stats  # optional dependency (ampcore[bench])

    stats = Stats()
    for value in rounds:
        stats.update(float(value))
    as_dict = stats.as_dict()
    if save_data:
        as_dict["data"] = [float(v) for v in rounds]
    as_dict["iterations"] = 1
    param = f"{workload}-{precision}"
    return {
        "group": workload, "name": f"{test}[{param}]",
        "fullname": f"{TEST_FILE}::{test}[{param}]",
        "params": {"workload": workload, "precision": precision}, "param": param,
        "extra_info": extra if extra is not None else extra_info(workload, precision, rounds),
        "options": {"disable_gc": False, "timer": "perf_counter", "min_rounds": len(rounds),
                    "max_time": 1.0, "min_time": 5e-06, "warmup": False},
        "stats": as_dict,
    }


def run_document(benchmarks: list[dict], when: datetime, commit: str = "0" * 40,
                 env: dict | None = None, version: str | None = None) -> dict:
    """A whole saved run; ``env=None`` records the default H200 environment."""
    import pytest_benchmark

    return {
        "machine_info": {"node": "gpu-runner-1", "processor": "x86_64", "machine": "x86_64",
                         "python_compiler": "GCC 12.2.0", "python_implementation": "CPython",
                         "python_implementation_version": "3.11.7", "python_version": "3.11.7",
                         "python_build": ["main", "Jan 1 2024 00:00:00"], "release": "6.1.0",
                         "system": "Linux", "cpu": {"brand_raw": "AMD EPYC 9654", "count": 16},
                         "ampcore": env if env is not None else environment()},
        "commit_info": {"id": commit, "time": when.isoformat(), "author_time": when.isoformat(),
                        "dirty": False, "project": "ampcore", "branch": "main"},
        "benchmarks": benchmarks,
        "datetime": when.isoformat(),
        "version": version or pytest_benchmark.__version__,
    }


def write_run(directory: Path, number: int, document: dict) -> Path:
    """Save like ``--benchmark-autosave``: ``NNNN_<commit>_<date>.json``; never overwrites."""
    when = datetime.fromisoformat(document["datetime"])
    name = f"{number:04d}_{document['commit_info']['id'][:40]}_{when:%Y%m%d_%H%M%S}.json"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    with path.open("x", encoding="utf-8") as handle:
        json.dump(document, handle, indent=4)
    return path


def amp_session(rng: np.random.Generator, when: datetime, *, commit: str = "0" * 40,
                base_times: dict[str, float] | None = None, speedups: dict[str, float] | None = None,
                n_rounds: int = 10, noise: float = 0.02, slowdown: dict[str, float] | None = None,
                accuracy: dict[str, float] | None = None, memory: dict[str, float] | None = None,
                skipped: dict[str, int] | None = None, env: dict | None = None,
                precisions: Sequence[str] = ("fp32", "amp-bf16"),
                records: dict[str, dict] | None = None) -> dict:
    """One session of the suite: every workload at every precision, rounds drawn around the
    given medians with relative ``noise``. ``slowdown`` etc. are keyed by "workload-precision";
    ``records`` sets other record fields by the same key ("*": every benchmark)."""
    base_times = base_times or {"bert": 0.80, "resnet18": 0.40}
    speedups = speedups or {"bert": 1.9, "resnet18": 1.15}
    env = env if env is not None else environment()
    entries = []
    fp32_rounds: dict[str, list[float]] = {}
    for workload, fp32_time in base_times.items():
        for precision in precisions:
            param = f"{workload}-{precision}"
            median = fp32_time if precision == "fp32" else fp32_time / speedups[workload]
            median *= (slowdown or {}).get(param, 1.0)
            rounds = list(median * (1 + noise * rng.standard_normal(n_rounds)))
            speedup = None
            if precision == "fp32":
                fp32_rounds[workload] = rounds
            elif workload in fp32_rounds:
                ratio = float(np.median(fp32_rounds[workload]) / np.median(rounds))
                speedup = (ratio, ratio * 0.97, ratio * 1.03)
            mem = int((memory or {}).get(param, 1.0) * (3 if precision == "fp32" else 2) * 2**30)
            fields = {**(records or {}).get("*", {}), **(records or {}).get(param, {})}
            extra = extra_info(workload, precision, rounds,
                               accuracy=(accuracy or {}).get(param, 0.9),
                               peak_memory_bytes=mem if env.get("device_type") == "cuda" else None,
                               skipped_steps=(skipped or {}).get(param, 0), speedup=speedup, env=env,
                               **fields)
            entries.append(benchmark(workload, precision, rounds, extra))
    return run_document(entries, when, commit, env)


def write_history(directory: Path, n_runs: int, seed: int = 0, start: datetime | None = None,
                  step_at: int | None = None, step: dict[str, float] | None = None,
                  **session: object) -> list[Path]:
    """``n_runs`` saved sessions a day apart; from run ``step_at`` on, ``step`` (slowdown
    factors by "workload-precision") applies, to give change-point detection something."""
    rng = np.random.default_rng(seed)
    start = start or datetime(2025, 1, 1, 12, 0, tzinfo=timezone.utc)
    paths = []
    for index in range(n_runs):
        slowdown = step if step_at is not None and index >= step_at else None
        doc = amp_session(rng, start + timedelta(days=index), commit=f"{index:040x}",
                          slowdown=slowdown, **session)
        paths.append(write_run(directory, index + 1, doc))
    return paths


def edit_run(path: Path, mutate) -> Path:
    """Rewrite the saved run at ``path`` with ``mutate(document)`` applied (in place; for
    tests that damage a file the way a crash, a bad disk or a bad writer would)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    mutate(document)
    path.write_text(json.dumps(document, indent=4), encoding="utf-8")
    return path


def small_history(directory: Path, n_runs: int, seed: int = 0, **session: object) -> list[Path]:
    """``n_runs`` daily sessions of one benchmark pair (bert fp32 and amp-bf16): the cheapest
    history with a speedup, for tests that run ``report`` or ``calibrate`` end to end."""
    return write_history(directory, n_runs, seed=seed, base_times={"bert": 0.8},
                         speedups={"bert": 1.9}, **session)
