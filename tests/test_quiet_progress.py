"""``ampcore run`` draws progress bars only when stderr is a terminal (and --no-progress was not
given): a redirected log or a pipe gets none (``ampcore.train.progress.wanted``)."""

import sys

import pytest

import ampcore.train.run
from ampcore.cli import main
from ampcore.train import progress as train_progress

RUN = ["run", "--workload", "resnet18", "--precision", "fp32", "--profile", "smoke",
       "--device", "cpu"]


@pytest.fixture
def asked(monkeypatch, make_result):
    """The ``progress`` each run of ``ampcore run`` was started with."""
    seen = []

    def run_experiment(spec, progress=False):
        seen.append(progress)
        return make_result(workload=spec.workload, precision=spec.precision)

    monkeypatch.setattr(ampcore.train.run, "run_experiment", run_experiment)
    return seen


def on_terminal(monkeypatch, tty: bool) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: tty, raising=False)


def test_no_bars_when_stderr_is_not_a_terminal(monkeypatch, asked):
    on_terminal(monkeypatch, False)
    assert main(RUN) == 0
    assert asked == [False]


def test_bars_when_stderr_is_a_terminal(monkeypatch, asked):
    on_terminal(monkeypatch, True)
    assert main(RUN) == 0
    assert asked == [True]


def test_no_progress_wins_over_a_terminal(monkeypatch, asked):
    on_terminal(monkeypatch, True)
    assert main([*RUN, "--no-progress"]) == 0
    assert asked == [False]


@pytest.mark.parametrize("tty, no_progress, expected", [(True, False, True),
                                                          (True, True, False),
                                                          (False, False, False)])
def test_the_rule(monkeypatch, tty, no_progress, expected):
    on_terminal(monkeypatch, tty)
    assert train_progress.wanted(no_progress) is expected


def test_a_stderr_without_isatty_gets_no_bars(monkeypatch):
    monkeypatch.setattr(sys, "stderr", object())
    assert train_progress.wanted() is False
