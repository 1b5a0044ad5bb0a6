"""The benchmark suite's own logic: gates, records, skips, summary, histories and baselines."""

import json
import os
import re
from pathlib import Path

import pytest

from ampcore.judge import gates

from ampcore.options import table as options
from ampcore.judge.record import BenchmarkRecord
from ampcore.judge.speedup import speedup
from ampcore.train.merged import MergedRun, Part
from ampcore.train.result import RunResult
from ampcore.suite.session import SuiteSession, ddp_group
from ampcore.judge.table import ddp_table, suite_summary

pytest_plugins = ["pytester"]


def make_run(precision="fp32", rounds=(1.0,) * 10, accuracy=0.9, predictions=(0, 1) * 50,
             meaningful=True, skipped=0, nonfinite=0, workload="bert") -> RunResult:
    return RunResult(
        workload=workload, precision=precision, profile="seed", device="cuda", config={},
        data_source="test", weights_source="test", accuracy_meaningful=meaningful,
        round_times_s=list(rounds), samples_per_round=[64] * len(rounds), total_steps=100,
        warmup_time_s=0.0, eval_time_s=0.0, accuracy_per_epoch=[accuracy],
        test_loss_per_epoch=[0.3], train_losses=[0.5], predictions=list(predictions),
        peak_memory_bytes=None, grad_scaler={"enabled": True, "final_scale": 1024.0,
                                             "skipped_steps": skipped},
        nonfinite_losses=nonfinite, environment={})


# --- gates ---------------------------------------------------------------------------------

def test_speedup_passes_when_interval_clears_the_bar():
    fp32 = make_run(rounds=[2.0, 2.01, 1.99, 2.0, 2.02, 1.98, 2.0, 2.01, 2.0, 1.99])
    amp = make_run("amp-bf16", rounds=[1.0, 1.01, 0.99, 1.0, 1.0, 1.02, 0.98, 1.0, 1.01, 1.0])
    verdict = gates.speedup_verdict(fp32, amp, min_speedup=1.3)
    assert verdict.passed, verdict.message
    assert "2.00x" in verdict.message and "95% CI" in verdict.message


def test_speedup_fails_with_numbers_when_too_small():
    fp32 = make_run(rounds=[1.2, 1.21, 1.19, 1.2, 1.22, 1.18, 1.2, 1.21, 1.2, 1.19])
    amp = make_run("amp-fp16", rounds=[1.0, 1.01, 0.99, 1.0, 1.0, 1.02, 0.98, 1.0, 1.01, 1.0])
    verdict = gates.speedup_verdict(fp32, amp, min_speedup=1.3)
    assert not verdict.passed
    assert "1.20x" in verdict.message and ">= 1.30x" in verdict.message


def test_a_speedup_over_another_mixed_precision_names_it():
    """The measured claims (fp8 over amp-bf16) are judged by the same rule, named as such."""
    bf16 = make_run("amp-bf16", rounds=[1.45, 1.46, 1.44, 1.45, 1.45, 1.47, 1.43, 1.45, 1.46, 1.45])
    fp8 = make_run("fp8", rounds=[1.0, 1.01, 0.99, 1.0, 1.0, 1.02, 0.98, 1.0, 1.01, 1.0])
    verdict = gates.speedup_verdict(bf16, fp8, min_speedup=1.25)
    assert verdict.passed and "speedup over amp-bf16 = 1.45x" in verdict.message
    assert not gates.speedup_verdict(bf16, fp8, min_speedup=1.5).passed


def test_speedup_needs_the_lower_bound_not_the_point_estimate():
    # Median speedup 1.5x, but rounds so noisy that the interval reaches below 1.3x.
    fp32 = make_run(rounds=[1.5, 3.0, 1.5, 0.8, 1.5, 2.4, 1.0, 1.5, 2.0, 1.2])
    amp = make_run("amp-bf16", rounds=[1.0, 0.5, 1.6, 1.0, 0.7, 1.0, 1.4, 1.0, 0.9, 1.2])
    s = speedup(fp32, amp)
    assert s.ratio == pytest.approx(1.5)
    assert s.low < 1.3 < s.ratio
    assert not gates.speedup_verdict(fp32, amp, 1.3).passed


def test_speedup_refuses_runs_with_different_round_plans():
    with pytest.raises(ValueError, match="round plans"):
        speedup(make_run(rounds=[1.0] * 10), make_run("amp-bf16", rounds=[1.0] * 11))


def test_parity_within_tolerance_reports_disagreements():
    fp32 = make_run(accuracy=0.88, predictions=[0, 1, 1, 0])
    amp = make_run("amp-bf16", accuracy=0.87, predictions=[0, 1, 0, 0])
    verdict = gates.parity_verdict(fp32, amp, tolerance=0.03, floor=0.75)
    assert verdict.passed
    assert "disagree on 1 of 4" in verdict.message


def test_parity_fails_beyond_tolerance():
    verdict = gates.parity_verdict(make_run(accuracy=0.88), make_run("amp-fp16", accuracy=0.84),
                                   tolerance=0.03, floor=0.75)
    assert not verdict.passed and "gap +0.0400" in verdict.message


def test_parity_fails_when_fp32_learned_nothing():
    verdict = gates.parity_verdict(make_run(accuracy=0.5), make_run("amp-fp16", accuracy=0.5),
                                   tolerance=0.03, floor=0.75)
    assert not verdict.passed and "below the floor" in verdict.message


@pytest.mark.parametrize(("seeds", "device", "skips"), [
    (1, "cuda", True), (1, "cuda:1", True),
    (1, "cpu", False),  # CPU kernels repeat: one seed is judged
    (3, "cuda", False),  # several seeds: their spread sets the margin
])
def test_parity_of_a_workload_that_does_not_repeat_needs_seeds(seeds, device, skips):
    def runs(precision, accuracy):
        out = []
        for _ in range(seeds):
            run = make_run(precision, accuracy=accuracy, workload="torchvision:resnet50")
            run.device = device
            out.append(run)
        return out if seeds > 1 else out[0]

    fp32, amp = runs("fp32", 0.97), runs("amp-bf16", 0.96)
    verdict = gates.parity_verdict(fp32, amp, 0.005, 0.9, repeatable=False)
    assert (verdict.skip_reason is not None) == skips, verdict
    if skips:
        assert "--amp-seeds 3" in verdict.skip_reason
        assert "torchvision:resnet50" in verdict.skip_reason
    assert gates.parity_verdict(fp32, amp, 0.005, 0.9).skip_reason is None  # repeatable: judged


def test_parity_skips_for_random_init_weights():
    verdict = gates.parity_verdict(make_run(accuracy=0.5, meaningful=False),
                                   make_run("amp-fp16", accuracy=0.5, meaningful=False), 0.03, 0.75)
    assert verdict.skip_reason and "random initial weights" in verdict.skip_reason


@pytest.mark.parametrize(("skipped", "nonfinite", "passed"), [(0, 0, True), (5, 0, True),
                                                               (6, 0, False), (0, 1, False)])
def test_health(skipped, nonfinite, passed):
    verdict = gates.health_verdict(make_run("amp-fp16", skipped=skipped, nonfinite=nonfinite))
    assert verdict.passed is passed, verdict.message


# --- the session: records and groups ----------------------------------------------------------

class FakeBenchmark:
    """What the session uses of pytest-benchmark's fixture; remembers the group at timing."""

    def __init__(self, disabled=False):
        self.disabled, self.group, self.extra_info, self.timed_group = disabled, None, {}, "unset"

    def pedantic(self, target, args=(), **kwargs):
        self.timed_group = self.group  # pytest-benchmark copies the group here
        return target(*args)


def session(**given) -> SuiteSession:
    return SuiteSession(options.resolve(options.SUITE, given, environ={"AMPCORE_DEVICE": "cpu"}),
                        config=None)


def ddp_run(precision="amp-bf16"):
    run = make_run(precision, rounds=[0.625] * 10)  # 1.6x the single-GPU throughput
    run.samples_per_round = [128] * 10  # global samples: twice the single-GPU batch
    run.config = {"world_size": 2, "global_batch_size": 128}
    run.merged = MergedRun("ddp", (Part("cuda:0", peak_memory_bytes=2**30),
                                   Part("cuda:1", peak_memory_bytes=2**30)), True, "nccl")
    return run


def test_ddp_run_is_grouped_apart_before_timing_and_recorded(monkeypatch):
    import ampcore.launch

    monkeypatch.setattr(ampcore.launch, "run_distributed", lambda spec, nproc: ddp_run())
    runs = session(nproc="2")
    runs.results[("bert", "amp-bf16")] = make_run("amp-bf16", rounds=[1.0] * 10)
    benchmark = FakeBenchmark()
    result = runs.benchmark_ddp("bert", "amp-bf16", benchmark)
    assert benchmark.timed_group == ddp_group("bert") == "bert-ddp"
    record = BenchmarkRecord.from_extra_info(benchmark.extra_info)
    assert record.scaling_efficiency == pytest.approx(1.6) and record.world_size == 2
    assert record.per_rank_peak_memory_bytes == (2**30, 2**30) and record.scaler_consistent
    assert runs.ddp("bert", "amp-bf16") is result  # once per session


def test_record_carries_the_speedup_only_when_timed():
    runs = session()
    runs.results[("bert", "fp32")] = make_run(rounds=[2.0] * 10)
    benchmark = FakeBenchmark()
    record = runs.record(benchmark, make_run("amp-bf16", rounds=[1.0] * 10))
    # config=None: no pytest-benchmark session, so nothing was timed by it.
    assert record.speedup_vs_fp32 is None and "speedup_ci" in benchmark.extra_info
    assert benchmark.extra_info["workload"] == "bert" and benchmark.extra_info["ampcore_schema"]


def test_ddp_table_and_summary_report_scaling():
    single = make_run("amp-bf16", rounds=[1.0] * 10)
    table = ddp_table([(ddp_run(), 1.6)])
    assert table.startswith("### bert, DistributedDataParallel")
    assert "| Mixed precision (bf16) | 2" in table and "1.60" in table and "1,024, 1,024" in table
    on_cpu = ddp_run()
    on_cpu.merged = MergedRun("ddp", (Part("cpu"), Part("cpu")), True, "gloo")  # no peaks on a CPU
    cells = [c.strip() for c in ddp_table([(on_cpu, 0.8)]).splitlines()[-1].split("|")]
    assert cells[-3:-1] == ["0.80", "n/a"]
    text = suite_summary([single, make_run(rounds=[2.0] * 10)], {"bert-amp-bf16": (2.0, 1.9, 2.1)},
                         [(ddp_run(), None)], ["Training steps: eager."])
    rows = [line for line in text.splitlines() if line.startswith("| Regular") or
            line.startswith("| Mixed")]
    assert rows[0].startswith("| Regular (fp32)")  # registry order: the reference first
    assert "2.00x [1.90, 2.10]" in rows[1] and "n/a" in text.split("DistributedDataParallel")[1]
    assert text.rstrip().endswith("Round CV: bert-fp32 0.0%, bert-amp-bf16 0.0%.")
    assert "| Speedup vs fp32 (median round) |" in text


def test_summary_speedup_without_an_interval_is_still_the_median_round_ratio():
    # One slow round: 2.00x on the median round, 1.00x on the total training time.
    slow_round = make_run("amp-bf16", rounds=[1.0] * 9 + [11.0])
    text = suite_summary([make_run(rounds=[2.0] * 10), slow_round], {}, [], [])
    (row,) = [line for line in text.splitlines() if line.startswith("| Mixed")]
    assert [c.strip() for c in row.split("|")][4] == "2.00x"


# --- the plugin in a pytest session --------------------------------------------------------

SUITE = '''
from ampcore.judge import gates
from ampcore.suite import enforce

def test_train(amp_runs, amp_case, benchmark):
    amp_runs.benchmark(*amp_case, benchmark)

def test_parity(amp_runs, amp_mixed_case):
    workload, precision = amp_mixed_case
    fp32, amp = amp_runs.get(workload, "fp32"), amp_runs.get(workload, precision)
    enforce(gates.parity_verdict(fp32, amp, amp_runs.options.acc_tol, 0.0))
'''
BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.fixture
def suite(pytester, monkeypatch):
    for name in [o.env for o in options.OPTIONS if o.env]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AMPCORE_DEVICE", "cpu")
    # One thread per process: pytest's own process is busy too, and two processes with two
    # threads each on two cores slow each other down several times over.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    pytester.makepyfile(test_amp_inner=SUITE)
    return pytester


def saved_runs(storage: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(storage.rglob("*.json"))]


def test_matrix_skips_what_the_device_cannot_run_and_saves_history(suite, tmp_path):
    storage = tmp_path / "storage"
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "-ra", "--amp-profile", "smoke",
                             "--amp-workloads", "resnet18", "--amp-precisions", "fp32,tf32",
                             "--benchmark-autosave", "--benchmark-save-data",
                             f"--benchmark-storage=file://{storage}")
    # tf32 cannot run; the parity test has no mixed-precision case in this matrix.
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines(["*ampcore: AMP training summary*", "*Training Method*",
                                 "*SKIPPED*precision 'tf32' cannot run on device 'cpu'*",
                                 "*SKIPPED*--amp-precisions has no mixed-precision mode*"])
    (run,) = saved_runs(storage)
    (bench,) = run["benchmarks"]
    assert bench["name"] == "test_train[resnet18-fp32]"
    assert bench["group"] == "resnet18"  # set before pedantic() copied it
    assert bench["params"] == {"amp_workload": "resnet18", "amp_precision": "fp32"}
    assert len(bench["stats"]["data"]) >= 10  # raw rounds kept
    record = BenchmarkRecord.from_extra_info(bench["extra_info"])
    assert (record.workload, record.precision, record.profile) == ("resnet18", "fp32", "smoke")
    assert record.final_accuracy > 0.5
    assert run["machine_info"]["ampcore"]["device_type"] == "cpu"
    assert "incomplete" not in run["machine_info"]["ampcore"]  # only an interrupted one is


def test_saved_groups_are_read_back_by_pytest_benchmarks_own_compare(suite, tmp_path):
    """Each workload is saved in its own group, so `pytest-benchmark compare` tables never
    put bert and resnet18 side by side (or take ratios across them)."""
    import subprocess
    import sys

    storage = tmp_path / "storage"
    suite.runpytest_subprocess(
        "-p", "no:cacheprovider", "-k", "train", "--amp-profile", "smoke", "--amp-workloads",
        "bert,resnet18", "--amp-precisions", "fp32", "--benchmark-autosave",
        f"--benchmark-storage=file://{storage}").assert_outcomes(passed=2, deselected=1)
    saved_runs_paths = sorted(storage.rglob("*.json"))
    assert len(saved_runs_paths) == 1
    assert {b["group"] for b in saved_runs(storage)[0]["benchmarks"]} == {"bert", "resnet18"}
    code = ("import sys; from pytest_benchmark.cli import main; "
            "sys.argv = ['pytest-benchmark', 'compare', '--group-by=group', *sys.argv[1:]]; main()")
    result = subprocess.run([sys.executable, "-c", code, *map(str, saved_runs_paths)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    tables = re.findall(r"benchmark '([^']+)': (\d+) tests?", result.stdout)
    assert sorted(tables) == [("bert", "1"), ("resnet18", "1")], result.stdout


def test_prerequisites_run_on_demand_once(suite):
    # Only the parity test is selected: it must train fp32 and amp-bf16 itself.
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "--amp-profile", "smoke",
                             "--amp-workloads", "resnet18", "--amp-precisions", "fp32,amp-bf16",
                             "-k", "parity", "--benchmark-disable")
    result.assert_outcomes(passed=1, deselected=2)
    result.stdout.fnmatch_lines(["*Mixed precision (bf16)*"])


@pytest.mark.parametrize("args, env, message", [
    (["--amp-precisions", "fp4"], {}, "--amp-precisions: unknown precision 'fp4'; valid: fp32*"),
    (["--amp-cuda-graphs", "maybe"], {},
     "--amp-cuda-graphs: expected one of auto, on, off, got 'maybe'"),
    (["--amp-max-length", "0"], {}, "--amp-max-length: expected a whole number >= 1, got '0'"),
    ([], {"AMPCORE_MIN_SPEEDUP": "inf"},
     "--amp-min-speedup (from $AMPCORE_MIN_SPEEDUP): expected a finite number > 0, got 'inf'"),
], ids=["precision", "cuda-graphs", "max-length", "env"])
def test_bad_option_is_a_usage_error(suite, monkeypatch, args, env, message):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}*"])


def test_cuda_graphs_on_a_cpu_skip_with_the_reason(suite):
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "-ra", "--amp-profile", "smoke",
                                        "--amp-workloads", "resnet18", "--amp-precisions", "fp32",
                                        "--amp-cuda-graphs", "on", "--benchmark-disable")
    result.assert_outcomes(skipped=2)
    result.stdout.fnmatch_lines(["*SKIPPED*CUDA graphs need a CUDA device, not cpu*"])


def test_a_session_where_every_benchmark_skipped_fails_with_the_reasons(suite):
    """Nothing measured is not a pass: "2 skipped" on a machine that cannot run the matrix
    exits non-zero and says why each skipped."""
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "--amp-profile", "smoke",
                                        "--amp-workloads", "resnet18", "--amp-precisions", "tf32",
                                        "--benchmark-disable")
    result.assert_outcomes(skipped=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["*ampcore: nothing measured*",
                                 "*every benchmark of the matrix skipped (2 tests)*",
                                 "*1 x precision 'tf32' cannot run on device 'cpu'*",
                                 "*1 x --amp-precisions has no mixed-precision mode*"])


def test_a_session_where_some_benchmarks_ran_passes(suite):
    """... and ``--amp-summary -`` prints the summary on stdout, writing no file "-"."""
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "--amp-profile", "smoke",
                                        "--amp-workloads", "resnet18", "--amp-precisions", "fp32",
                                        "--benchmark-disable", "--amp-summary", "-")
    result.assert_outcomes(passed=1, skipped=1)
    assert result.ret == pytest.ExitCode.OK
    assert "nothing measured" not in result.stdout.str()
    result.stdout.fnmatch_lines(["*ampcore: AMP training summary*", "*Regular (fp32)*"])
    assert not (suite.path / "-").exists()


@pytest.mark.parametrize("device, message", [
    (None, "--amp-require-cuda: CUDA is not usable (torch *; torch.cuda.is_available() is "
           "False): check the GPU*"),
    ("cpu", "--amp-require-cuda with --amp-device cpu: drop one of them*"),
], ids=["no-cuda", "cpu-device"])
def test_require_cuda_without_cuda_is_a_usage_error_before_any_test(suite, monkeypatch,
                                                                     device, message):
    if device is None:
        monkeypatch.delenv("AMPCORE_DEVICE")
    monkeypatch.setenv("AMPCORE_REQUIRE_CUDA", "1")  # as the GPU workflow sets it
    result = suite.runpytest_subprocess("-p", "no:cacheprovider", "--amp-profile", "smoke")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*{message}"])
    assert "passed" not in result.stdout.str() and "skipped" not in result.stdout.str()


def test_timing_assertions_skip_when_benchmarks_are_disabled(pytester, monkeypatch):
    monkeypatch.setenv("AMPCORE_DEVICE", "cpu")
    pytester.makepyfile(test_timing='''
import pytest
def test_timing(amp_runs):
    if not amp_runs.timing_enabled:
        pytest.skip(amp_runs.timing_disabled_reason)
''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-ra", "--benchmark-disable")
    result.stdout.fnmatch_lines(["*SKIPPED*timing is disabled (--benchmark-disable)*"])


def test_plugin_loads_without_torch(pytester):
    pytester.makepyfile(test_light='''
import sys
def test_no_torch(request):
    assert request.config.getoption("amp_acc_tol") is None
    assert "torch" not in sys.modules
''')
    pytester.runpytest_subprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_benchmarks_without_pytest_benchmark_skip_with_the_reason(pytester, monkeypatch):
    """``-p no:benchmark``: the plugin loads (its pytest-benchmark hook is optional) and the
    tests that need the benchmark fixture skip, saying why."""
    monkeypatch.setenv("AMPCORE_DEVICE", "cpu")
    result = pytester.runpytest_subprocess(
        str(BENCHMARKS), "-p", "no:benchmark", "-p", "no:cacheprovider", "-ra",
        "--amp-profile", "smoke", "--amp-workloads", "resnet18", "--amp-precisions", "fp32,amp-bf16")
    output = "\n".join(result.outlines + result.errlines)
    assert "INTERNALERROR" not in output and result.ret == pytest.ExitCode.OK, output
    result.stdout.fnmatch_lines(["*SKIPPED [[]2[]]*no 'benchmark' fixture: pytest-benchmark is not active*"])
    # test_train x 2 and the DDP tests (no DDP workload asked) skip; accuracy parity and
    # health train what they need and pass. The loss parity, the speedup and the
    # measured-claim check have no case for resnet18: no test at all.
    result.assert_outcomes(passed=2, skipped=4)


def test_plugin_loads_where_pytest_benchmark_is_not_installed(suite):
    """pytest-benchmark absent (every import of it fails, no autoloaded plugins): the plugin
    loads, test_train skips naming why, and a session that measured nothing says so."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['pytest_benchmark'] = None; import pytest; "
            "sys.exit(pytest.main(sys.argv[1:]))")
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code, "-p", "ampcore.suite.plugin", "-p", "no:cacheprovider",
         "-rs", "-k", "train", "--amp-profile", "smoke", "--amp-workloads", "resnet18",
         "--amp-precisions", "fp32", str(suite.path)],
        cwd=suite.path, env=env, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert "INTERNALERROR" not in output and "Traceback" not in output, output
    assert "no 'benchmark' fixture: pytest-benchmark is not active" in output
    assert result.returncode == pytest.ExitCode.TESTS_FAILED, output  # nothing measured
    assert "every benchmark of the matrix skipped (1 tests)" in output


def test_benchmarks_help_lists_the_options(pytester):
    result = pytester.runpytest_subprocess(str(BENCHMARKS), "--help")
    text = " ".join(result.stdout.str().split())
    assert "AMP training benchmarks (ampcore)" in text
    for option in options.options_for(options.SUITE):
        assert option.flag(options.SUITE) in text


def test_baseline_compare_fails_on_a_real_slowdown(suite, tmp_path):
    """The README's baseline workflow: autosave, then compare with a fail threshold."""
    storage = f"--benchmark-storage=file://{tmp_path / 'storage'}"
    common = ["-p", "no:cacheprovider", "--amp-profile", "smoke", "--amp-workloads", "bert",
              "--amp-precisions", "fp32", "-k", "train", storage]
    suite.runpytest_subprocess(*common, "--benchmark-autosave").assert_outcomes(passed=1, deselected=1)
    # The same benchmark on sequences twice as long (the smoke model's longest): a real
    # slowdown, far above a quiet runner's round noise.
    slow = suite.runpytest_subprocess(*common, "--amp-max-length", "64", "--benchmark-compare",
                           "--benchmark-compare-fail=median:10%")
    assert slow.ret != 0
    # pytest-benchmark reports the comparison through its logger, on stderr.
    pytest.LineMatcher(slow.outlines + slow.errlines).fnmatch_lines(
        ["*Comparing against benchmarks from*", "*Performance has regressed*",
         "*test_train[[]bert-fp32[]]*median*PercentageRegressionCheck*"])
    assert len(list((tmp_path / "storage").rglob("*.json"))) == 1  # the baseline is untouched


@pytest.mark.slow
def test_ddp_benchmarks_save_the_rounds_the_workers_timed(suite, tmp_path):
    """DDP on 2 gloo processes on the CPU: each benchmark's rounds are the training rounds
    the workers timed (>= 10, not one torchrun launch), saved in the DDP group with the
    speedup over DDP fp32 and the scaling efficiency over the single-process run; a copy of
    the run compared with it is judged by the rounds' test, not the threshold alone."""
    from ampcore.cli import main

    storage = tmp_path / "storage"
    result = suite.runpytest_subprocess(
        str(BENCHMARKS / "test_ddp.py"), "-p", "no:cacheprovider", "-k", "ddp_train",
        "--amp-profile", "smoke", "--amp-workloads", "bert", "--amp-precisions", "fp32,amp-bf16",
        "--amp-nproc", "2", "--benchmark-autosave", "--benchmark-save-data",
        f"--benchmark-storage=file://{storage}")
    result.assert_outcomes(passed=2, deselected=1)
    (path,) = sorted(storage.rglob("*.json"))
    document = json.loads(path.read_text())
    benches = {b["name"]: b for b in document["benchmarks"]}
    for name in ("test_ddp_train[bert-fp32]", "test_ddp_train[bert-amp-bf16]"):
        bench = benches[name]
        record = BenchmarkRecord.from_extra_info(bench["extra_info"])
        assert bench["group"] == "bert-ddp" and record.world_size == 2
        assert len(bench["stats"]["data"]) == record.config["rounds"] >= 10
        assert bench["options"]["timer"] == "worker_round_times"
        assert sum(bench["stats"]["data"]) == pytest.approx(record.train_time_s)
        assert record.scaling_efficiency is not None and record.scaling_efficiency > 0
    amp = BenchmarkRecord.from_extra_info(benches["test_ddp_train[bert-amp-bf16]"]["extra_info"])
    assert amp.speedup_vs_fp32 is not None and amp.speedup_ci is not None
    # The same run again as the candidate: every DDP time verdict comes from the rounds.
    copy = path.with_name("0002" + path.name[4:])
    copy.write_text(path.read_text())
    verdict = tmp_path / "verdict.json"
    # Two gloo ranks on a CPU shared with other test workers reach round CVs of ~30 %;
    # this test is about where the time verdict comes from, so the stability limit is
    # lifted here (test_instability.py tests that limit).
    config = tmp_path / "pyproject.toml"
    config.write_text("[tool.ampcore.compare]\nround_cv = 2.0\n")
    assert main(["compare", str(path), str(copy), "--json", str(verdict),
                 "--config", str(config)]) == 0
    judged = {b["name"]: {m["metric"]: m for m in b["metrics"]}
              for b in json.loads(verdict.read_text())["benchmarks"]}
    for name in benches:
        assert judged[name]["time"]["method"].startswith("one-sided Mann-Whitney U"), judged[name]
    assert judged["test_ddp_train[bert-amp-bf16]"]["scaling_efficiency"]["status"] == "ok"


class _ClaimRuns:
    """What test_precision_pays_where_measured reads of a GPU session, with made-up runs."""

    on_gpu, timing_enabled, device = True, True, "cuda"

    def __init__(self, model, compiled, fp8_rounds):
        import types

        self.options = types.SimpleNamespace(compile=compiled)
        self.model = model
        bf16 = [1.45, 1.46, 1.44, 1.45, 1.45, 1.47, 1.43, 1.45, 1.46, 1.45]
        self.runs = {"amp-bf16": make_run("amp-bf16", bf16, workload="llama"),
                     "fp8": make_run("fp8", fp8_rounds, workload="llama")}

    def workload_config(self, workload):
        import types

        return types.SimpleNamespace(model=self.model)

    def get(self, workload, precision):
        return self.runs[precision]


def _claim_test():
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_amp", BENCHMARKS / "test_amp.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.test_precision_pays_where_measured


@pytest.mark.parametrize(("model", "compiled", "fp8_scale", "outcome"), [
    ("llama-wide", True, 1.0, "passed"),  # 1.45x: the claim holds
    ("llama-wide", True, 1.3, "failed"),  # 1.12x: below the claimed 1.25x
    ("llama-wide", False, 1.3, "skipped"),  # not compiled: reported only
    ("llama-125m", True, 1.3, "skipped"),  # another architecture: reported only
])
def test_the_measured_claim_is_asserted_only_where_it_was_measured(model, compiled, fp8_scale,
                                                                    outcome):
    rounds = [fp8_scale * r for r in (1.0, 1.01, 0.99, 1.0, 1.0, 1.02, 0.98, 1.0, 1.01, 1.0)]
    runs = _ClaimRuns(model, compiled, rounds)
    try:
        _claim_test()(runs, ("llama", "fp8"))
        result = "passed"
    except pytest.skip.Exception as exc:
        result = "skipped"
        assert "reported" in str(exc)
    except pytest.fail.Exception as exc:
        result = "failed"
        assert "speedup over amp-bf16" in str(exc) and "measured: 1.45x on an H200" in str(exc)
    assert result == outcome
