"""Third-party notices that do not concern the user's run stay quiet, narrowly: torch's
register_constant() notice about torchao's Enums (logged on every run where torchao is
installed) and torch.profiler's "Profiler clears events" UserWarning; anything else passes."""

import enum
import logging
import socket
import warnings

import pytest
import torch

from ampcore.cli import main
from ampcore.core.quiet import TORCHAO_PYTREE_LOGGER, quiet_torchao_notices
from ampcore.launch import worker
from ampcore.measure.kernels import quiet_profiler
from ampcore.suite import benchmark_adapter
from ampcore.train import loop
from ampcore.train.run import Experiment
from ampcore.train.spec import RunSpec

# torch.utils._pytree's message, as torch 2.14 logs it for each of torchao's Enums.
TEMPLATE = ("%s is an Enum subclass and is now natively supported by torch.compile as an opaque "
            "value type. Calling register_constant() on Enum subclasses is deprecated and will "
            "be an error in a future release.")
PROFILER = ("Warning: Profiler clears events at the end of each cycle. Only events from the "
            "current cycle will be reported. To keep events across cycles, set acc_events=True.")
CHEAP = RunSpec("resnet18", "fp32", "smoke", device="cpu")  # smoke resnet18: 10 rounds


def enum_of(module: str) -> type:
    kind = enum.Enum("KernelPreference", "AUTO TORCH")
    kind.__module__ = module
    return kind


class Records(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.fixture
def pytree_log():
    logger = logging.getLogger(TORCHAO_PYTREE_LOGGER)
    handler = Records()
    logger.addHandler(handler)
    yield logger, handler.messages
    logger.removeHandler(handler)


def test_torchaos_register_constant_notice_is_dropped_and_others_pass(pytree_log):
    logger, messages = pytree_log
    with quiet_torchao_notices():
        logger.warning(TEMPLATE, enum_of("torchao.quantization.quantize_.common"))
        logger.warning(TEMPLATE, enum_of("torchao"))
        logger.warning(TEMPLATE, enum_of("mylib.kinds"))  # not torchao's: the user's concern
        logger.warning("something else about %s", enum_of("torchao.float8"))
    assert len(messages) == 2, messages
    assert "mylib" not in messages[0] and "KernelPreference" in messages[0]
    assert messages[1].startswith("something else")


def test_the_filter_is_gone_after_the_block(pytree_log):
    logger, messages = pytree_log
    with quiet_torchao_notices():
        pass
    logger.warning(TEMPLATE, enum_of("torchao.float8"))
    assert len(messages) == 1


@pytest.fixture
def noisy_rounds(monkeypatch, pytree_log):
    """Each trained round logs torchao's notice and one of the run's own (the workload's imports
    log it in real runs), and notes how many filters the logger holds meanwhile."""
    logger, messages = pytree_log
    filters = []
    run_round = loop.Trainer.run_round

    def noisy(self, round_index):
        logger.warning(TEMPLATE, enum_of("torchao.float8.config"))
        logger.warning("a notice of the run's own")
        filters.append(len(logger.filters))
        return run_round(self, round_index)

    monkeypatch.setattr(loop.Trainer, "run_round", noisy)
    return logger, messages, filters


def cli_run(request):
    assert main(["run", "--workload", "resnet18", "--precision", "fp32", "--profile", "smoke",
                 "--device", "cpu", "--no-progress"]) == 0


def suite_run(request):
    """The suite's timed path (``session.benchmark``): ``Experiment`` entered directly."""
    with Experiment(CHEAP) as experiment:
        experiment.start()
        benchmark_adapter.train_timed(experiment, request.getfixturevalue("benchmark"))


def worker_run(request):
    """One rank of ``ampcore run --nproc``, alone in its gloo group, in this process."""
    monkeypatch = request.getfixturevalue("monkeypatch")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for name, value in dict(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK="0",
                            LOCAL_RANK="0", WORLD_SIZE="1").items():
        monkeypatch.setenv(name, value)
    assert worker.run_rank(CHEAP, rank=0, local_rank=0, world_size=1) is not None


@pytest.mark.usefixtures("one_cpu_thread")
@pytest.mark.parametrize("train", [cli_run, suite_run, worker_run],
                         ids=["ampcore run", "the suite", "a worker rank"])
def test_every_path_that_trains_is_quiet_once_and_only_while_it_trains(noisy_rounds, train,
                                                                       request):
    logger, messages, filters = noisy_rounds
    outside = len(logger.filters)
    train(request)
    assert filters and set(filters) == {outside + 1}  # one filter, entered once per run
    assert set(messages) == {"a notice of the run's own"}
    # The negative control: outside a run the notice shows, and no filter is left behind.
    logger.warning(TEMPLATE, enum_of("torchao.float8.config"))
    assert "KernelPreference" in messages[-1] and len(logger.filters) == outside


def warn_from_torch_profiler(message: str, category: type = UserWarning) -> None:
    warnings.warn_explicit(message, category, "torch/profiler/profiler.py", 335,
                           module="torch.profiler.profiler")


def test_quiet_profiler_drops_its_clears_events_warning_only():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with quiet_profiler():
            warn_from_torch_profiler(PROFILER)
            warn_from_torch_profiler("CUPTI monitor observer unavailable")
            warnings.warn(PROFILER.replace("Warning: ", "Mine: "), UserWarning)
        warn_from_torch_profiler(PROFILER)  # restored after the block
    assert [str(w.message).split(" ")[0] for w in seen] == ["CUPTI", "Mine:", "Warning:"]


def test_quiet_profiler_on_torch_profilers_own_warning(monkeypatch):
    torch_profiler = pytest.importorskip("torch.profiler.profiler")
    if not hasattr(torch_profiler, "_WARNINGS_SHOWN"):  # older torch: warned otherwise, or not
        pytest.skip(f"torch {torch.__version__} has no once-a-process profiler warnings to reset")
    monkeypatch.setattr(torch_profiler, "_WARNINGS_SHOWN", set())  # torch warns once a process
    profile = torch_profiler.profile(activities=[torch_profiler.ProfilerActivity.CPU])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        profile.prepare_trace()
        with quiet_profiler():
            profile.prepare_trace()  # a second cycle: torch's "clears events" warning
    assert not [w for w in seen if "Profiler clears events" in str(w.message)]
    monkeypatch.setattr(torch_profiler, "_WARNINGS_SHOWN", set())
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        profile.prepare_trace()  # outside: it shows (the filter is that narrow)
    profile.start_trace()
    profile.stop_trace()  # leave no profiling session open in this process
    assert [w for w in seen if "Profiler clears events" in str(w.message)]


def test_torchs_sync_mode_notice_is_not_counted_as_a_sync():
    """torch warns once a process that sync debug mode is a prototype, in words containing
    "synchronizing": counted, the session's first run (fp32) showed one sync per step."""
    from ampcore.measure.counters import is_sync_warning

    notice = ("Synchronization debug mode is a prototype feature and does not yet detect all "
              "synchronizing operations (Triggered internally at Module.cpp:1003.)")
    assert not is_sync_warning(notice)
    assert is_sync_warning("called a synchronizing CUDA operation (Triggered internally at "
                           "/pytorch/c10/cuda/CUDAFunctions.cpp:112.)")  # a real sync counts
    assert not is_sync_warning("an unrelated warning")


def test_inductors_tf32_advice_is_dropped_while_training_and_nothing_else():
    import warnings

    from ampcore.core.quiet import quiet_training

    advice = ("TensorFloat32 tensor cores for float32 matrix multiplication available but not "
              "enabled. Consider setting `torch.set_float32_matmul_precision('high')`")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with quiet_training():
            warnings.warn_explicit(advice, UserWarning, "compile_fx.py", 336,
                                   module="torch._inductor.compile_fx")
            warnings.warn_explicit(advice, UserWarning, "mine.py", 1, module="mine")
            warnings.warn("a warning about the user's run", UserWarning)
        warnings.warn_explicit(advice, UserWarning, "compile_fx.py", 336,
                               module="torch._inductor.compile_fx")  # restored on exit
    assert [str(w.message)[:20] for w in caught] == [advice[:20], "a warning about the ", advice[:20]]
