"""``ampcore run`` draws progress bars only when stderr is a terminal (and --no-progress was not
given): a redirected log or a pipe gets none (``ampcore.core.quiet.bars_wanted``)."""

import sys

import pytest

import ampcore.train.run
from ampcore.cli import main
from ampcore.core.quiet import bars_wanted

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
    assert bars_wanted(no_progress) is expected


def test_a_stderr_without_isatty_gets_no_bars(monkeypatch):
    monkeypatch.setattr(sys, "stderr", object())
    assert bars_wanted() is False


# --- the libraries' loading bars: datasets (a split generated), transformers (weights loaded) ---

def _load_imdb(tmp_path, write_imdb):
    from ampcore.data import imdb

    write_imdb(tmp_path, 8)
    imdb.load_imdb(tmp_path, allow_download=False)


def _load_weights(tiny_bert_dirs):
    from ampcore.workloads import hf, hf_text

    hf.load(hf_text.source(str(tiny_bert_dirs["fp16_weights"])), allow_random_init=False,
            allow_download=False)


@pytest.mark.parametrize("load, bar", [(_load_imdb, "Generating train split"),
                                       (_load_weights, "Loading weights")], ids=["imdb", "weights"])
@pytest.mark.parametrize("tty", [False, True], ids=["redirected", "terminal"])
def test_library_loading_bars_only_on_a_terminal(monkeypatch, capsys, request, hf_datasets_cache,
                                                 load, bar, tty):
    """Negative control: on a terminal the library draws its bar, so its absence elsewhere is
    ampcore's doing; the library's own setting is as it was afterwards."""
    import datasets
    import transformers
    import transformers.utils.logging as hf_logging

    if tty and load is _load_weights and int(transformers.__version__.split(".")[0]) < 5:
        pytest.skip(f"transformers {transformers.__version__} draws no bar while loading weights: "
                    "the negative control needs one (transformers >= 5 draws it)")
    on_terminal(monkeypatch, tty)
    args = ((request.getfixturevalue("tmp_path"), request.getfixturevalue("write_imdb"))
            if load is _load_imdb else (request.getfixturevalue("tiny_bert_dirs"),))
    load(*args)
    assert (bar in capsys.readouterr().err) is tty
    assert datasets.is_progress_bar_enabled() and hf_logging.is_progress_bar_enabled()
