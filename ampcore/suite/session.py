"""The session of runs: each (workload, precision) trained at most once per pytest session.

A benchmark test trains its case under pytest-benchmark (``benchmark``), a test that only needs
a run's result gets it (``get``), training it on demand with its own timer if no benchmark has
yet. What a benchmark measured is written into its ``extra_info`` as a ``BenchmarkRecord``, the
one contract with ``ampcore.history``. torch is imported only when something trains.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest

from ampcore.core.errors import UnsupportedPrecisionError, UsageError
from ampcore.core.profiles import WorkloadConfig
from ampcore.options.settings import Settings
from ampcore.judge.record import BenchmarkRecord
from ampcore.core.registry import REFERENCE_PRECISION, run_name
from ampcore.suite import benchmark_adapter as adapter

if TYPE_CHECKING:
    from ampcore.options.request import Request
    from ampcore.train.result import RunResult
    from ampcore.train.spec import RunSpec

Key = tuple[str, str]  # (workload, precision)


@dataclass
class SuiteSession:
    """The suite's runs and what it measured of them."""

    options: Settings
    config: pytest.Config = field(repr=False)
    results: dict[Key, RunResult] = field(default_factory=dict)
    ddp_results: dict[Key, RunResult] = field(default_factory=dict)
    records: dict[str, BenchmarkRecord] = field(default_factory=dict)  # by benchmark group/name
    failures: dict[str, BaseException] = field(default_factory=dict)
    unsupported: dict[str, str] = field(default_factory=dict)  # run name -> why it cannot run
    speedups: dict[str, object] = field(default_factory=dict)  # run name -> judge.speedup.Speedup
    interrupted: bool = False  # Ctrl-C: what finished is shown, and saved marked incomplete
    # Training seeds after the first (--amp-seeds): (workload, precision, seed index) -> run
    seed_results: dict[tuple[str, str, int], RunResult] = field(default_factory=dict)

    # --- what the session runs on (lazy: pytest-benchmark's session exists only once pytest
    # is configured, and the request needs torch) ----------------------------------------------
    @property
    def timing_enabled(self) -> bool:
        return adapter.timing_state(self.config)[0]

    @property
    def timing_disabled_reason(self) -> str:
        return adapter.timing_state(self.config)[1]

    @functools.cached_property
    def request(self) -> Request:
        """The session's runs, resolved once (``ampcore.options.request``) when first needed; a
        usage error there (a workload without an experiment in the profile) ends the session."""
        from ampcore.options.request import build_request

        try:
            return build_request(self.options)
        except UsageError as exc:
            pytest.exit(f"ampcore: {exc}", returncode=pytest.ExitCode.USAGE_ERROR)

    @property
    def device(self) -> str:
        # A named device is the request's as given: no request (torch) to answer collection.
        return self.options.device or self.request.device

    @property
    def profile(self) -> str:
        return self.request.profile

    @property
    def cuda_graphs(self) -> bool:
        """Whether steps are captured; ``on`` off CUDA resolves to False here, and every test
        that would train skips with the reason (``unsupported_reason``)."""
        return self.request.cuda_graphs

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith("cuda")

    def unused_options(self) -> str | None:
        """A note when --amp-data-dir is given to a profile that reads no data sets, or
        --amp-max-length to workloads without a sequence length."""
        if self.options.data_dir is None and self.options.max_length is None:
            return None  # the request (torch) only when there may be a note
        return self.request.unused_options()

    def workload_config(self, workload: str) -> WorkloadConfig:
        return self.request.config(workload)

    def unsupported_reason(self, precision: str) -> str | None:
        """Why the session's device cannot run ``precision``; None: it can."""
        reason = self.request.cannot_run(precision)
        return None if reason is None else str(reason)

    def ddp_unavailable_reason(self) -> str | None:
        import torch

        nproc = self.options.nproc
        if not self.on_gpu and self.options.given("nproc") is not None and nproc >= 2:
            return None  # asked for on purpose: gloo processes on the CPU (a functional check)
        visible = torch.cuda.device_count() if self.on_gpu else 0
        if nproc < 2 or visible < nproc:
            return (f"DDP benchmarks need --amp-nproc >= 2 CUDA GPUs (asked {nproc}, "
                    f"{visible} visible on device {self.device}); on a CPU, give "
                    "--amp-nproc N to run them on N gloo processes")
        return None

    # --- training -------------------------------------------------------------------------------
    def benchmark(self, workload: str, precision: str, benchmark) -> RunResult:
        """Train under pytest-benchmark, one benchmark round per training round, and record
        the run in the benchmark's ``extra_info``."""
        from ampcore.train.run import Experiment

        key, name = (workload, precision), run_name(workload, precision)
        self._fail_if_failed(name)
        if key not in self.results:  # else trained on demand earlier in this session
            adapter.set_group(benchmark, workload)
            if self.options.processes > 1:  # timed in fresh processes: their merged rounds
                self.results[key] = self._train(self.request.spec(workload, precision), name)
                adapter.record_rounds(benchmark, self.results[key].round_times_s)
            else:
                with self._remember_failure(name), \
                        Experiment(self.request.spec(workload, precision)) as experiment:
                    experiment.start()
                    self.results[key] = adapter.train_timed(experiment, benchmark)
        result = self.results[key]
        self.record(benchmark, result)
        return result

    def get(self, workload: str, precision: str) -> RunResult:
        """A run's result, training it now (own timer) if no test has yet."""
        key, name = (workload, precision), run_name(workload, precision)
        self._fail_if_failed(name)
        if key not in self.results:
            reason = self.unsupported_reason(precision)
            if reason:
                pytest.skip(f"prerequisite {name} cannot run: {reason}")
            self.results[key] = self._train(self.request.spec(workload, precision), name)
        return self.results[key]

    def _train(self, spec: RunSpec, name: str) -> RunResult:
        """Train ``spec`` with its own timer: here, or in ``--amp-processes`` fresh processes."""
        from ampcore.launch.fresh import run_in_fresh_processes
        from ampcore.train.run import run_experiment

        with self._remember_failure(name):
            if self.options.processes > 1:
                return run_in_fresh_processes(spec, self.options.processes)
            return run_experiment(spec)

    def seeds(self, workload: str, precision: str) -> list[RunResult]:
        """The run of every training seed (--amp-seeds N): the session's own run (the profile's
        seed), then seeds +1 ... +N-1 trained now with their own timer, once per session."""
        runs = [self.get(workload, precision)]
        for index in range(1, self.options.seeds):
            key, spec = (workload, precision, index), self.request.spec(workload, precision, index)
            name = f"{run_name(workload, precision)}-seed{spec.train_seed}"
            self._fail_if_failed(name)
            if key not in self.seed_results:
                self.seed_results[key] = self._train(spec, name)
            runs.append(self.seed_results[key])
        return runs

    def ddp(self, workload: str, precision: str, benchmark=None) -> RunResult:
        """``workload`` under DDP on ``--amp-nproc`` GPUs (torchrun), once per session.

        The workers time every training round themselves (a round's time is the slowest
        rank's, ``ampcore.launch.merge``); those rounds, not the launch, are the
        benchmark's rounds, so the gate judges DDP like a single-GPU run."""
        from ampcore.launch import run_distributed

        key, name = (workload, precision), run_name(ddp_group(workload), precision)
        self._fail_if_failed(name)
        if key not in self.ddp_results:
            spec, nproc = self.request.spec(workload, precision), self.options.nproc
            with self._remember_failure(name):
                result = run_distributed(spec, nproc)
                if benchmark is not None:
                    adapter.set_group(benchmark, ddp_group(workload))
                    adapter.record_rounds(benchmark, result.round_times_s)
            self.ddp_results[key] = result
        return self.ddp_results[key]

    def benchmark_ddp(self, workload: str, precision: str, benchmark) -> RunResult:
        """The DDP run under pytest-benchmark, recorded with its scaling efficiency over the
        same precision on one GPU (trained now if no test has yet)."""
        result = self.ddp(workload, precision, benchmark)
        self.record_ddp(benchmark, result, self.get(workload, precision))
        return result

    # --- records --------------------------------------------------------------------------------
    def record(self, benchmark, result: RunResult) -> BenchmarkRecord:
        """The run's record, with its speedup over the reference when both were timed."""
        record = BenchmarkRecord.from_result(result, **self._speedup(result, self.results))
        self.records[result.name] = record
        adapter.add_extra_info(benchmark, record.to_extra_info())
        return record

    def _speedup(self, result: RunResult, runs: dict[Key, RunResult]) -> dict[str, object]:
        """The speedup over the reference run of the same kind (single-GPU or DDP) when both
        were timed; DDP speedups are kept apart from the single-GPU ones."""
        reference = runs.get((result.workload, REFERENCE_PRECISION))
        if (reference is None or not self.timing_enabled
                or result.precision == REFERENCE_PRECISION):
            return {}
        from ampcore.judge.speedup import speedup

        s = speedup(reference, result)
        if runs is self.results:  # the summary's speedup column is the single-GPU one
            self.speedups[result.name] = s
        return {"speedup_vs_fp32": s.ratio, "speedup_ci": (s.low, s.high)}

    def record_ddp(self, benchmark, result: RunResult, single: RunResult) -> BenchmarkRecord:
        """A DDP run's record: its figures plus its scaling efficiency over ``single``, the same
        precision on one GPU."""
        from ampcore.judge.speedup import scaling_efficiency

        merged = result.merged  # "ddp": how the ranks' results were merged
        parts = merged.parts if merged is not None else ()
        record = BenchmarkRecord.from_result(
            result, **self._speedup(result, self.ddp_results), world_size=result.world_size,
            per_rank_peak_memory_bytes=tuple(p.peak_memory_bytes for p in parts) or None,
            scaler_consistent=merged.consistent if merged is not None else None,
            single_gpu_samples_per_s=single.samples_per_s,
            scaling_efficiency=scaling_efficiency(result, single))
        self.records[run_name(ddp_group(result.workload), result.precision)] = record
        adapter.add_extra_info(benchmark, record.to_extra_info())
        return record

    def summary(self) -> str:
        """The session's Markdown summary (``ampcore.judge.table.suite_summary``)."""
        from ampcore.suite.summary import session_notes
        from ampcore.judge.speedup import scaling_efficiency
        from ampcore.judge.table import suite_summary

        ddp_runs = [(r, scaling_efficiency(r, self.results[key]) if key in self.results else None)
                    for key, r in self.ddp_results.items()]
        speedups = {name: (s.ratio, s.low, s.high) for name, s in self.speedups.items()}
        return suite_summary(list(self.results.values()), speedups, ddp_runs,
                             session_notes(self))

    # --- failures -------------------------------------------------------------------------------
    def _fail_if_failed(self, name: str) -> None:
        if name in self.unsupported:
            pytest.skip(f"prerequisite {name} cannot run: {self.unsupported[name]}")
        if name in self.failures:
            pytest.fail(f"prerequisite run {name} failed earlier in this session: "
                        f"{self.failures[name]}", pytrace=False)

    @contextlib.contextmanager
    def _remember_failure(self, name: str) -> Iterator[None]:
        """Keep a failed run's error so tests that need it fail at once instead of retraining."""
        try:
            yield
        except pytest.skip.Exception:
            raise
        except UnsupportedPrecisionError as exc:  # found once the model was built (fp8 shapes)
            self.unsupported[name] = str(exc)
            pytest.skip(str(exc))
        except BaseException as exc:
            self.failures[name] = exc
            from ampcore.core.errors import AmpcoreError

            if isinstance(exc, AmpcoreError):  # a user-facing message, not a traceback
                pytest.fail(f"{name}: {exc}", pytrace=False)
            raise


def ddp_group(workload: str) -> str:
    """DDP benchmarks are compared apart from the single-GPU ones of the same workload."""
    return f"{workload}-ddp"
