"""pytest plugin: the AMP benchmark matrix, a session cache of runs, and the summary.

Loaded through the ``pytest11`` entry point, so any repository with ampcore installed can
write benchmarks against these fixtures:

- ``amp_case``: one (workload, precision) of the matrix chosen by ``--amp-workloads`` and
  ``--amp-precisions``; skipped with the reason when the device cannot run it.
- ``amp_mixed_case``: the same, restricted to the mixed-precision modes.
- ``amp_runs``: the session's ``AmpRuns``: trains each case once, under pytest-benchmark
  when a benchmark test asks, on demand otherwise.

Options fall back to environment variables (``AMPCORE_PROFILE``...), then to defaults. torch is
imported lazily so that loading the plugin costs nothing in unrelated test runs.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ALL = "all"
WORKLOAD_IDS = ("bert", "resnet18")
PRECISION_IDS = ("fp32", "tf32", "amp-fp16", "amp-bf16")
CUDA_GRAPH_CHOICES = ("auto", "on", "off")  # ampcore.graphs.CHOICES, without importing torch
MIXED_IDS = ("amp-fp16", "amp-bf16")
DEFAULT_MIN_SPEEDUP = 1.3
DEFAULT_ACC_TOL = 0.03

# option name -> (environment variable, help)
OPTIONS = {
    "--amp-profile": ("AMPCORE_PROFILE", "seed or smoke (default: seed with CUDA, else smoke)"),
    "--amp-workloads": ("AMPCORE_WORKLOADS", f"comma-separated of {', '.join(WORKLOAD_IDS)}, or {ALL}"),
    "--amp-precisions": ("AMPCORE_PRECISIONS", f"comma-separated of {', '.join(PRECISION_IDS)}, or {ALL}"),
    "--amp-data-dir": ("AMPCORE_DATA_DIR", "directory with imdb/ and mnist/"),
    "--amp-bert-model": ("AMPCORE_BERT_MODEL", "Hugging Face id or local directory for bert"),
    "--amp-max-length": ("AMPCORE_MAX_LENGTH", "bert sequence length (default: the profile's)"),
    "--amp-device": ("AMPCORE_DEVICE", "torch device (default: cuda when available, else cpu)"),
    "--amp-min-speedup": ("AMPCORE_MIN_SPEEDUP",
                          f"lower CI bound AMP must reach over fp32 on bert (default {DEFAULT_MIN_SPEEDUP})"),
    "--amp-acc-tol": ("AMPCORE_ACC_TOL",
                      f"allowed fp32 - AMP test accuracy gap (default {DEFAULT_ACC_TOL})"),
    "--amp-cuda-graphs": ("AMPCORE_CUDA_GRAPHS",
                          "auto, on or off: capture each training step in a CUDA graph, which "
                          "times the GPU's work without host launch jitter (default auto: on for CUDA)"),
    "--amp-nproc": ("AMPCORE_NPROC", "processes (one per GPU) for the test_ddp_* benchmarks (default 2)"),
    "--amp-summary": ("AMPCORE_SUMMARY", "append the session's Markdown summary to this file "
                      "(e.g. $GITHUB_STEP_SUMMARY)"),
}
FLAGS = {
    "--amp-allow-random-init": ("AMPCORE_ALLOW_RANDOM_INIT",
                                "train bert from random weights when the source has none"),
    "--amp-download": ("AMPCORE_DOWNLOAD", "allow fetching data sets and models"),
    "--amp-compile": ("AMPCORE_COMPILE", "torch.compile the models"),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ampcore", "AMP training benchmarks (ampcore)")
    for name, (env, text) in OPTIONS.items():
        group.addoption(name, default=None, help=f"{text} [env: {env}]")
    for name, (env, text) in FLAGS.items():
        group.addoption(name, action="store_true", default=False, help=f"{text} [env: {env}=1]")


# --- options --------------------------------------------------------------------------------

class OptionError(pytest.UsageError):
    """A bad ``--amp-*`` value: pytest reports it and exits with status 4."""


def option(config: pytest.Config, name: str) -> str | None:
    value = config.getoption(name)
    return value if value not in (None, "") else os.environ.get(OPTIONS[name][0]) or None


def flag(config: pytest.Config, name: str) -> bool:
    env = os.environ.get(FLAGS[name][0], "")
    return bool(config.getoption(name)) or env.lower() in ("1", "true", "yes")


def parse_ids(text: str | None, valid: tuple[str, ...], name: str) -> list[str]:
    """Expand a comma- or space-separated list with ``all``; unknown ids are a usage error."""
    if not text:
        return list(valid)
    chosen: list[str] = []
    for item in text.replace(",", " ").split():
        for value in (valid if item == ALL else (item,)):
            if value not in valid:
                raise OptionError(f"{name}: unknown id {value!r}; valid: {', '.join(valid)}, or {ALL}")
            if value not in chosen:
                chosen.append(value)
    return chosen


def parse_choice(text: str | None, valid: tuple[str, ...], name: str) -> str:
    """One of ``valid`` (the first when unset); anything else is a usage error."""
    if text is None:
        return valid[0]
    if text.lower() not in valid:
        raise OptionError(f"{name}: expected one of {', '.join(valid)}, got {text!r}")
    return text.lower()


def parse_float(text: str | None, default: float, name: str) -> float:
    if text is None:
        return default
    try:
        return float(text)
    except ValueError:
        raise OptionError(f"{name}: expected a number, got {text!r}") from None


@dataclass(frozen=True)
class SuiteOptions:
    profile: str | None
    workloads: list[str]
    precisions: list[str]
    data_dir: Path | None
    bert_model: str | None
    max_length: int | None
    device: str | None
    min_speedup: float
    acc_tol: float
    summary_path: Path | None
    nproc: int
    allow_random_init: bool
    download: bool
    compile: bool
    cuda_graphs: str  # auto, on or off (``ampcore.graphs.resolve_cuda_graphs``)

    @classmethod
    def from_config(cls, config: pytest.Config) -> SuiteOptions:
        from ampcore.profiles import PROFILES

        profile = option(config, "--amp-profile")
        if profile is not None and profile not in PROFILES:
            raise OptionError(f"--amp-profile: unknown profile {profile!r}; valid: {', '.join(PROFILES)}")
        max_length = option(config, "--amp-max-length")
        data_dir, summary = option(config, "--amp-data-dir"), option(config, "--amp-summary")
        return cls(
            profile=profile,
            workloads=parse_ids(option(config, "--amp-workloads"), WORKLOAD_IDS, "--amp-workloads"),
            # fp32 first: every speedup needs it, and it then trains before the modes it anchors
            precisions=sorted(parse_ids(option(config, "--amp-precisions"), PRECISION_IDS,
                                        "--amp-precisions"), key=PRECISION_IDS.index),
            data_dir=Path(data_dir).expanduser() if data_dir else None,
            bert_model=option(config, "--amp-bert-model"),
            max_length=int(parse_float(max_length, 0, "--amp-max-length")) or None,
            device=option(config, "--amp-device"),
            min_speedup=parse_float(option(config, "--amp-min-speedup"), DEFAULT_MIN_SPEEDUP,
                                    "--amp-min-speedup"),
            acc_tol=parse_float(option(config, "--amp-acc-tol"), DEFAULT_ACC_TOL, "--amp-acc-tol"),
            summary_path=Path(summary) if summary else None,
            nproc=int(parse_float(option(config, "--amp-nproc"), 2, "--amp-nproc")),
            allow_random_init=flag(config, "--amp-allow-random-init"),
            download=flag(config, "--amp-download"),
            compile=flag(config, "--amp-compile"),
            cuda_graphs=parse_choice(option(config, "--amp-cuda-graphs"), CUDA_GRAPH_CHOICES,
                                     "--amp-cuda-graphs"),
        )


# --- the session's runs -----------------------------------------------------------------------

@dataclass
class AmpRuns:
    """Trains each (workload, precision) at most once per session and keeps the results."""

    options: SuiteOptions
    config: pytest.Config = field(repr=False)
    results: dict[tuple[str, str], object] = field(default_factory=dict)
    failures: dict[tuple[str, str], BaseException] = field(default_factory=dict)
    speedups: dict[str, object] = field(default_factory=dict)
    ddp_results: dict[str, object] = field(default_factory=dict)  # precision -> RunResult

    # Derived lazily: pytest-benchmark's session exists only once pytest is configured, and
    # the device and profile need torch.
    @property
    def timing_enabled(self) -> bool:
        return _timing_state(self.config)[0]

    @property
    def timing_disabled_reason(self) -> str:
        return _timing_state(self.config)[1]

    @property
    def device(self) -> str:
        import torch

        return self.options.device or ("cuda" if torch.cuda.is_available() else "cpu")

    @property
    def profile(self) -> str:
        from ampcore.profiles import default_profile_name

        return self.options.profile or default_profile_name()[0]

    @property
    def cuda_graphs(self) -> bool:
        """Whether steps are captured; ``on`` off CUDA resolves to False here, and every test
        that would train skips with the reason (``unsupported_reason``)."""
        import torch

        from ampcore.errors import UsageError
        from ampcore.graphs import resolve_cuda_graphs

        try:
            return resolve_cuda_graphs(self.options.cuda_graphs, torch.device(self.device))
        except UsageError:
            return False

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith("cuda")

    def spec(self, workload: str, precision: str):
        from ampcore.run import RunSpec

        o = self.options
        return RunSpec(workload=workload, precision=precision, profile=self.profile,
                       device=self.device, data_dir=o.data_dir, bert_model=o.bert_model,
                       max_length=o.max_length, allow_download=o.download,
                       allow_random_init=o.allow_random_init, compile=o.compile,
                       cuda_graphs=self.cuda_graphs)

    def workload_config(self, workload: str):
        return self.spec(workload, "fp32").workload_config()

    def unsupported_reason(self, workload: str, precision: str) -> str | None:
        from ampcore.errors import AmpcoreError
        from ampcore.graphs import resolve_cuda_graphs
        from ampcore.precision import get_precision
        from ampcore.run import resolve_device

        try:
            device = resolve_device(self.device)
            get_precision(precision).check_supported(device)
            resolve_cuda_graphs(self.options.cuda_graphs, device)  # raises for 'on' off CUDA
        except AmpcoreError as exc:
            return str(exc)
        return None

    def benchmark(self, workload: str, precision: str, benchmark) -> object:
        """Train under pytest-benchmark: one benchmark round per training round."""
        from ampcore.run import Experiment

        key = (workload, precision)
        if key in self.results:  # trained on demand earlier in this session
            return self.results[key]
        with self._remember_failure(key), Experiment(self.spec(workload, precision)) as exp:
            exp.start()
            if benchmark.disabled:
                # pytest-benchmark times nothing (--benchmark-disable, xdist) and only calls the
                # target once: train and evaluate the whole run as a functional check.
                benchmark.pedantic(exp.run_rounds)
                result = exp.result()
            else:
                rounds = iter(range(exp.n_rounds))
                done: list[int] = []

                def setup():  # untimed: the previous round's checks and evaluation
                    if done:
                        exp.after_round(done[-1])
                    done.append(next(rounds))
                    return (done[-1],), {}

                benchmark.pedantic(exp.train_round, setup=setup, rounds=exp.n_rounds,
                                   iterations=1, warmup_rounds=0)
                exp.after_round(done[-1])
                result = exp.result(round_times=list(benchmark.stats.stats.data))
        self.results[key] = result
        return result

    def get(self, workload: str, precision: str) -> object:
        """A run's result, training it now (own timer) if no test has yet."""
        from ampcore.run import run_experiment

        key = (workload, precision)
        if key in self.failures:
            pytest.fail(f"prerequisite run {workload}-{precision} failed earlier in this session: "
                        f"{self.failures[key]}", pytrace=False)
        if key not in self.results:
            reason = self.unsupported_reason(workload, precision)
            if reason:
                pytest.skip(f"prerequisite {workload}-{precision} cannot run: {reason}")
            with self._remember_failure(key):
                self.results[key] = run_experiment(self.spec(workload, precision))
        return self.results[key]

    def ddp_unavailable_reason(self) -> str | None:
        import torch

        nproc = self.options.nproc
        visible = torch.cuda.device_count() if self.on_gpu else 0
        if nproc < 2 or visible < nproc:
            return (f"DDP benchmarks need --amp-nproc >= 2 CUDA GPUs (asked {nproc}, "
                    f"{visible} visible on device {self.device})")
        return None

    def ddp(self, precision: str, benchmark=None) -> object:
        """bert under DDP on ``--amp-nproc`` GPUs (torchrun), once per session per precision.

        The workers run in their own processes, so pytest-benchmark times the whole launch as
        one round; the training rounds the workers timed are in the result."""
        from ampcore.distributed import run_distributed

        key = ("bert-ddp", precision)
        if key in self.failures:
            pytest.fail(f"prerequisite DDP run {precision} failed earlier: {self.failures[key]}",
                        pytrace=False)
        if precision not in self.ddp_results:
            spec, nproc = self.spec("bert", precision), self.options.nproc
            with self._remember_failure(key):
                if benchmark is not None and not benchmark.disabled:
                    result = benchmark.pedantic(run_distributed, args=(spec, nproc), rounds=1,
                                                iterations=1)
                else:
                    result = run_distributed(spec, nproc)
            self.ddp_results[precision] = result
        return self.ddp_results[precision]

    @contextlib.contextmanager
    def _remember_failure(self, key: tuple[str, str]) -> Iterator[None]:
        """Keep a failed run's error so tests that need it fail at once instead of retraining."""
        try:
            yield
        except pytest.skip.Exception:
            raise
        except BaseException as exc:
            self.failures[key] = exc
            from ampcore.errors import AmpcoreError

            if isinstance(exc, AmpcoreError):  # a user-facing message, not a traceback
                pytest.fail(f"{key[0]}-{key[1]}: {exc}", pytrace=False)
            raise


_RUNS_KEY = pytest.StashKey[AmpRuns]()


def _timing_state(config: pytest.Config) -> tuple[bool, str]:
    session = getattr(config, "_benchmarksession", None)
    if session is None:
        return False, "pytest-benchmark is not active"
    if getattr(session, "disabled", False):
        if config.pluginmanager.hasplugin("xdist") and getattr(config.option, "numprocesses", None):
            return False, "timing is disabled under pytest-xdist (pytest-benchmark cannot time in parallel)"
        return False, "timing is disabled (--benchmark-disable)"
    return True, ""


def runs_for(config: pytest.Config) -> AmpRuns:
    if _RUNS_KEY not in config.stash:
        config.stash[_RUNS_KEY] = AmpRuns(SuiteOptions.from_config(config), config)
    return config.stash[_RUNS_KEY]


def pytest_configure(config: pytest.Config) -> None:
    # Check --amp-* values up front, so a typo is a usage error before any collection; with
    # none given there is nothing to check (and no reason to import torch).
    given = [n for n in OPTIONS if config.getoption(n) is not None or os.environ.get(OPTIONS[n][0])]
    if given:
        runs_for(config)


# --- matrix and fixtures ------------------------------------------------------------------

def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    options = runs_for(metafunc.config).options
    mixed = [p for p in options.precisions if p in MIXED_IDS]
    for fixture, precisions in (("amp_case", options.precisions), ("amp_mixed_case", mixed)):
        if fixture in metafunc.fixturenames:
            cases = [(w, p) for w in options.workloads for p in precisions]
            metafunc.parametrize("amp_workload,amp_precision", cases, ids=[f"{w}-{p}" for w, p in cases])
    # DDP runs bert only: the issue it measures (gradient all-reduce under AMP) is bert's.
    for fixture, precisions in (("amp_ddp_precision", options.precisions),
                                ("amp_ddp_mixed_precision", mixed)):
        if fixture in metafunc.fixturenames:
            metafunc.parametrize(fixture, precisions, ids=[f"bert-{p}" for p in precisions],
                                 indirect=True)


@pytest.fixture(scope="session")
def amp_runs(request: pytest.FixtureRequest) -> AmpRuns:
    return runs_for(request.config)


def _case(amp_runs: AmpRuns, workload: str, precision: str) -> tuple[str, str]:
    reason = amp_runs.unsupported_reason(workload, precision)
    if reason:
        pytest.skip(reason)
    return workload, precision


@pytest.fixture
def amp_case(amp_runs: AmpRuns, amp_workload: str, amp_precision: str) -> tuple[str, str]:
    return _case(amp_runs, amp_workload, amp_precision)


@pytest.fixture
def amp_mixed_case(amp_runs: AmpRuns, amp_workload: str, amp_precision: str) -> tuple[str, str]:
    return _case(amp_runs, amp_workload, amp_precision)


@pytest.fixture
def amp_ddp_precision(amp_runs: AmpRuns, request: pytest.FixtureRequest) -> str:
    return _ddp_case(amp_runs, request.param)


@pytest.fixture
def amp_ddp_mixed_precision(amp_runs: AmpRuns, request: pytest.FixtureRequest) -> str:
    return _ddp_case(amp_runs, request.param)


def _ddp_case(amp_runs: AmpRuns, precision: str) -> str:
    if "bert" not in amp_runs.options.workloads:
        pytest.skip("the DDP benchmarks train bert, which --amp-workloads leaves out")
    reason = amp_runs.ddp_unavailable_reason() or amp_runs.unsupported_reason("bert", precision)
    if reason:
        pytest.skip(reason)
    return precision


def enforce(verdict) -> None:
    """Turn an ``ampcore.gates.Verdict`` into a skip, a failure with its numbers, or a pass."""
    if verdict.skip_reason:
        pytest.skip(verdict.skip_reason)
    if not verdict.passed:
        pytest.fail(verdict.message, pytrace=False)


def record_extra_info(benchmark, result, amp_runs: AmpRuns) -> None:
    """Store what the run measured in the benchmark's ``extra_info`` (saved in histories)."""
    benchmark.group = result.workload
    benchmark.extra_info.update(result.summary())
    benchmark.extra_info.update(workload=result.workload, precision=result.precision,
                                device=result.device, samples_per_round=result.samples_per_round,
                                environment=result.environment)
    fp32 = amp_runs.results.get((result.workload, "fp32"))
    if fp32 is not None and result.precision != "fp32" and amp_runs.timing_enabled:
        from ampcore.gates import speedup

        s = speedup(fp32, result)
        amp_runs.speedups[result.name] = s
        benchmark.extra_info.update(speedup_vs_fp32=s.ratio, speedup_ci=[s.low, s.high])


def record_ddp_extra_info(benchmark, result, single, nproc: int) -> None:
    """A DDP run's figures plus its scaling efficiency over the same precision on one GPU."""
    from ampcore.distributed import scaling_efficiency

    benchmark.group = "bert-ddp"
    benchmark.extra_info.update(result.summary())
    benchmark.extra_info.update(
        workload=result.workload, precision=result.precision, device=result.device,
        world_size=nproc, samples_per_round=result.samples_per_round,
        per_rank_peak_memory_bytes=result.details.get("per_rank_peak_memory_bytes"),
        scaler_consistent=result.details.get("scaler_consistent"),
        single_gpu_samples_per_s=single.samples_per_s,
        scaling_efficiency=scaling_efficiency(result.samples_per_s, single.samples_per_s, nproc),
        environment=result.environment)


# --- reporting ------------------------------------------------------------------------------

def pytest_benchmark_update_machine_info(config: pytest.Config, machine_info: dict) -> None:
    """Add the GPU, driver and library versions pytest-benchmark's machine id ignores."""
    from ampcore import environment

    runs = runs_for(config)
    # The step mode is part of what a timing means: ``ampcore compare`` refuses to mix them.
    machine_info["ampcore"] = {**environment.capture(runs.device), "cuda_graphs": runs.cuda_graphs}


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    runs = config.stash.get(_RUNS_KEY, None)
    if runs is None or not (runs.results or runs.ddp_results):
        return
    text = summary_markdown(runs)
    terminalreporter.write_sep("=", "ampcore: AMP training summary")
    terminalreporter.write_line(text)
    if runs.options.summary_path is not None:
        with runs.options.summary_path.open("a", encoding="utf-8") as handle:  # append, never clobber
            handle.write(text + "\n")


def summary_markdown(runs: AmpRuns) -> str:
    from ampcore.table import results_table

    order = {p: i for i, p in enumerate(PRECISION_IDS)}
    results = sorted(runs.results.values(),
                     key=lambda r: (WORKLOAD_IDS.index(r.workload), order[r.precision]))
    blocks = [results_table(results, {name: (s.ratio, s.low, s.high)
                                      for name, s in runs.speedups.items()})] if results else []
    if runs.ddp_results:
        blocks.append(ddp_table(runs))
    if runs.cuda_graphs:
        steps = "each captured in a CUDA graph and replayed (--amp-cuda-graphs off: eager)"
    else:
        steps = "eager" + (" (--amp-cuda-graphs on: captured in CUDA graphs)" if runs.on_gpu else "")
    notes = [f"Training steps: {steps}.",
             "Speedups with an interval are ratios of median round times with bootstrap 95% "
             "CIs; the others are ratios of total training times. Round CV: " + ", ".join(f"{r.name} {r.round_cv:.1%}" for r in results)]
    if not runs.timing_enabled:
        notes.append(f"Speedup intervals not computed: {runs.timing_disabled_reason}.")
    return "\n\n".join(blocks) + "\n\n" + "\n".join(notes)


def ddp_table(runs: AmpRuns) -> str:
    from ampcore.distributed import scaling_efficiency
    from ampcore.table import METHOD_NAMES, markdown_table

    rows = []
    for precision, r in runs.ddp_results.items():
        single = runs.results.get(("bert", precision))
        n = r.details["world_size"]
        eff = (f"{scaling_efficiency(r.samples_per_s, single.samples_per_s, n):.2f}"
               if single else "n/a")
        memory = ", ".join(f"{m / 2**20:,.0f}" for m in r.details.get("per_rank_peak_memory_bytes") or [])
        rows.append([METHOD_NAMES.get(precision, precision), str(n), f"{r.train_time_s:.1f}",
                     f"{r.samples_per_s:,.0f}", eff, memory or "n/a"])
    header = ["Training Method", "GPUs", "Time Taken (s)", "Samples/s", "Scaling efficiency",
              "Peak memory per rank (MiB)"]
    return "### bert, DistributedDataParallel\n\n" + markdown_table(rows, header)
