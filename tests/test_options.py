"""The option table (``ampcore.options.table``): each option once, checked once, for both faces."""

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from ampcore.options import table as options
from ampcore.options.table import RUN, SUITE, OptionError, resolve

README = Path(__file__).resolve().parent.parent / "docs" / "REFERENCE.md"  # its "Options"


def test_the_table_imports_no_torch():
    code = ("import sys, ampcore.options.table, ampcore.suite.options, ampcore.suite.plugin, ampcore.cli; "
            "ampcore.cli.build_parser(); assert 'torch' not in sys.modules, 'torch imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_cuda_graph_choices_are_the_cores():
    from ampcore.train import graphs

    assert options.CUDA_GRAPH_CHOICES == graphs.CHOICES


def test_every_option_name_of_both_faces_is_kept():
    run = {o.flag(RUN) for o in options.options_for(RUN)}
    suite = {o.flag(SUITE) for o in options.options_for(SUITE)}
    assert run == {"--workload", "--precision", "--profile", "--device", "--data-dir", "--download",
                   "--model", "--bert-model", "--llama-model", "--max-length", "--allow-random-init", "--max-grad-norm",
                   "--compile", "--cuda-graphs", "--inject", "--nproc", "--json", "--no-progress",
                   "--eval-samples", "--seeds", "--processes"}
    assert suite == {"--amp-profile", "--amp-workloads", "--amp-precisions", "--amp-data-dir",
                     "--amp-model", "--amp-bert-model", "--amp-llama-model", "--amp-max-length", "--amp-device", "--amp-min-speedup",
                     "--amp-acc-tol", "--amp-cuda-graphs", "--amp-nproc", "--amp-summary",
                     "--amp-allow-random-init", "--amp-download", "--amp-compile", "--amp-inject",
                     "--amp-require-cuda", "--amp-eval-samples", "--amp-seeds",
                     "--amp-loss-tol", "--amp-processes"}
    keys = [o.key for o in options.OPTIONS]
    assert len(keys) == len(set(keys))


def test_defaults():
    run, suite = resolve(RUN, {}, environ={}), resolve(SUITE, {}, environ={})
    assert (run.nproc, suite.nproc) == (1, 2)
    assert (suite.min_speedup, suite.acc_tol, suite.cuda_graphs) == (1.3, 0.005, "auto")
    assert suite.loss_tol == 0.05
    # The default matrix (the registry's default entries); llama and float8 run when named.
    for settings in (run, suite):
        assert settings.workloads == ["bert", "resnet18"]
        assert settings.precisions == ["fp32", "tf32", "amp-fp16", "amp-bf16"]
    assert run.profile is None and run.data_dir is None and run.download is False
    assert run.models == suite.models == {}
    # An option of the other face keeps its default: never read from the environment.
    env = {"AMPCORE_MIN_SPEEDUP": "2", "AMPCORE_MAX_GRAD_NORM": "1"}
    assert resolve(RUN, {}, environ=env).min_speedup == 1.3
    assert resolve(SUITE, {}, environ=env).max_grad_norm is None


def test_environment_fills_what_the_flag_leaves_out(tmp_path):
    env = {"AMPCORE_DATA_DIR": str(tmp_path), "AMPCORE_BERT_MODEL": "some/model",
           "AMPCORE_DOWNLOAD": "yes", "AMPCORE_MAX_LENGTH": "8", "AMPCORE_PRECISIONS": "amp-bf16,fp32"}
    for command in (RUN, SUITE):
        s = resolve(command, {"max_length": "16"}, environ=env)
        assert (s.data_dir, s.models, s.download) == (tmp_path, {"bert": "some/model"}, True)
        assert s.max_length == 16  # the flag wins
        assert s.precisions == ["amp-bf16", "fp32"]
        assert s.given("max_length") == "16" and s.given("device") is None


def test_ids_expand_all_keep_order_and_drop_repeats():
    assert resolve(RUN, {"precisions": ["amp-bf16", "fp32", "amp-bf16"]}, {}).precisions == [
        "amp-bf16", "fp32"]
    assert resolve(SUITE, {"workloads": "all"}, {}).workloads == ["bert", "resnet18", "llama"]
    assert resolve(RUN, {"precisions": "all"}, {}).precisions == [
        "fp32", "tf32", "amp-fp16", "amp-bf16", "fp8", "fp8-rowwise"]
    assert resolve(RUN, {"workloads": "llama"}, {}).workloads == ["llama"]
    assert options.asks_for_all(None) and options.asks_for_all("fp32,all")
    assert not options.asks_for_all(["fp32"])


@pytest.mark.parametrize("key, value, expected", [
    ("max_length", "0", "expected a whole number >= 1"),
    ("max_length", "16.5", "expected a whole number >= 1"),
    ("max_length", "x", "expected a whole number >= 1"),
    ("max_length", "-5", "expected a whole number >= 1"),
    ("nproc", "0", "expected a whole number >= 1"),
    ("nproc", "2.0", "expected a whole number >= 1"),
    ("max_grad_norm", "0", "expected a finite number > 0"),
    ("max_grad_norm", "-1", "expected a finite number > 0"),
    ("max_grad_norm", "nan", "expected a finite number > 0"),
    ("max_grad_norm", "inf", "expected a finite number > 0"),
    ("cuda_graphs", "maybe", "expected one of auto, on, off"),
    ("profile", "huge", "expected one of seed, smoke"),
    ("download", "maybe", "expected one of 1, true, yes, on (on) or 0, false, no, off (off)"),
    ("device", "tpu", "expected cpu, cuda or cuda:N"),
    ("device", "mps", "expected cpu, cuda or cuda:N"),
    ("device", "meta", "expected cpu, cuda or cuda:N"),
    ("device", "cuda:x", "expected cpu, cuda or cuda:N"),
], ids=lambda v: str(v))
def test_run_bad_value_names_option_value_and_range(key, value, expected):
    flag = options.get_option(key).flag(RUN)
    with pytest.raises(OptionError) as raised:
        resolve(RUN, {key: value}, environ={})
    assert str(raised.value) == f"{flag}: {expected}, got {value!r}"
    assert raised.value.exit_code == 2


@pytest.mark.parametrize("key, value, expected", [
    ("acc_tol", "-0.01", "expected a finite number >= 0"),
    ("acc_tol", "nan", "expected a finite number >= 0"),
    ("min_speedup", "0", "expected a finite number > 0"),
    ("min_speedup", "inf", "expected a finite number > 0"),
    ("min_speedup", "fast", "expected a finite number > 0"),
], ids=lambda v: str(v))
def test_suite_bad_value_names_option_value_and_range(key, value, expected):
    with pytest.raises(OptionError, match=re.escape(f"--amp-{key.replace('_', '-')}: {expected}, "
                                                    f"got {value!r}")):
        resolve(SUITE, {key: value}, environ={})


def test_good_edge_values_pass():
    s = resolve(SUITE, {"acc_tol": "0", "cuda_graphs": "OFF", "nproc": "1", "max_length": "1"}, {})
    assert (s.acc_tol, s.cuda_graphs, s.nproc, s.max_length) == (0.0, "off", 1, 1)
    assert [resolve(RUN, {"device": d}, {}).device for d in ("cpu", "CUDA", "cuda:1")] == [
        "cpu", "cuda", "cuda:1"]


@pytest.mark.parametrize("name, value, expected", [
    ("AMPCORE_ACC_TOL", "-1", "--amp-acc-tol (from $AMPCORE_ACC_TOL): expected a finite "
     "number >= 0, got '-1'"),
    ("AMPCORE_NPROC", "2.5", "--amp-nproc (from $AMPCORE_NPROC): expected a whole number >= 1, "
     "got '2.5'"),
    ("AMPCORE_MIN_SPEEDUP", "nan", "--amp-min-speedup (from $AMPCORE_MIN_SPEEDUP): expected a "
     "finite number > 0, got 'nan'"),
    ("AMPCORE_DEVICE", "mps", "--amp-device (from $AMPCORE_DEVICE): expected cpu, cuda or "
     "cuda:N, got 'mps'"),
], ids=["acc-tol--1", "nproc-2.5", "min-speedup-nan", "device-mps"])
def test_suite_bad_environment_values_are_refused(name, value, expected):
    with pytest.raises(OptionError) as raised:
        resolve(SUITE, {}, environ={name: value})
    assert str(raised.value) == expected


def test_unknown_ids_name_the_option_and_the_valid_ids():
    with pytest.raises(OptionError, match=r"^--workload: unknown workload 'gpt2'; valid: bert, "
                       r"resnet18, llama, or all$"):
        resolve(RUN, {"workloads": ["bert", "gpt2"]}, {})
    with pytest.raises(OptionError, match=r"^--amp-precisions: unknown precision 'fp4'"):
        resolve(SUITE, {"precisions": "fp32,fp4"}, {})


def test_a_bad_environment_value_names_the_variable():
    with pytest.raises(OptionError, match=re.escape(
            "--amp-acc-tol (from $AMPCORE_ACC_TOL): expected a finite number >= 0, got 'nan'")):
        resolve(SUITE, {}, environ={"AMPCORE_ACC_TOL": "nan"})
    with pytest.raises(OptionError, match=re.escape("--nproc (from $AMPCORE_NPROC)")):
        resolve(RUN, {}, environ={"AMPCORE_NPROC": "two"})


def test_argparse_rendering_round_trips():
    parser = argparse.ArgumentParser()
    options.add_arguments(parser, RUN)
    args = parser.parse_args(["--workload", "resnet18", "--precision", "fp32", "amp-bf16",
                              "--compile", "--max-length", "12"])
    s = resolve(RUN, vars(args), environ={})
    assert (s.workloads, s.precisions, s.compile, s.max_length) == (
        ["resnet18"], ["fp32", "amp-bf16"], True, 12)
    assert "[env: AMPCORE_MAX_LENGTH]" in " ".join(parser.format_help().split())


@pytest.mark.parametrize("command", [RUN, SUITE])
def test_readme_option_tables_are_the_generated_ones(command):
    """docs/REFERENCE.md shows ``python -m ampcore.options.table run|suite``; regenerate it when this fails."""
    assert options.markdown(command) in README.read_text(encoding="utf-8")


def test_python_dash_m_prints_a_table(capsys):
    assert options.main(["suite"]) == 0
    assert capsys.readouterr().out.startswith("| option | env | meaning |")
    assert options.main(["nope"]) == 2


def test_each_workload_takes_its_own_model_option():
    from ampcore.core.errors import UsageError
    from ampcore.options.request import build_request
    from ampcore.train.spec import RunSpec

    wide = "llama:hidden=64,layers=1,heads=2,intermediate=128"
    settings = resolve(RUN, {"workloads": "all", "profile": "smoke", "device": "cpu"},
                       environ={"AMPCORE_BERT_MODEL": "my/bert", "AMPCORE_LLAMA_MODEL": wide})
    assert settings.models == {"bert": "my/bert", "llama": wide}
    request = build_request(settings)
    assert [request.config(w).model for w in ("bert", "llama")] == ["my/bert", wide]
    assert request.spec("resnet18", "fp32").model is None
    assert request.config("resnet18") == RunSpec("resnet18", "fp32", "smoke").workload_config()
    with pytest.raises(UsageError, match="workload 'resnet18' takes no model override"):
        RunSpec("resnet18", "fp32", "smoke", model=wide).workload_config()


def test_the_model_options_are_those_of_workloads_that_take_one():
    """Each model option feeds ``Settings.models`` for a workload whose entry accepts a model,
    checked by that entry's parser (llama's architectures; bert takes any source)."""
    from ampcore.core import registry

    model_options = {o.model_of: o for o in options.OPTIONS
                     if o.model_of not in (None, options.ANY_WORKLOAD)}
    assert set(model_options) == {"bert", "llama"}
    for workload, option in model_options.items():
        assert registry.workload_entry(workload).accepts("model")
        assert (option.flag(RUN), option.flag(SUITE)) == (f"--{workload}-model",
                                                          f"--amp-{workload}-model")
    with pytest.raises(OptionError, match="^--amp-llama-model: unknown llama architecture"):
        resolve(SUITE, {"llama_model": "gpt2"}, environ={})


def test_settings_has_one_field_per_option_of_the_type_its_parser_returns():
    """``Settings`` is written out for type checkers; this keeps it in step with the table."""
    import dataclasses
    import typing

    from ampcore.options.settings import Settings

    hints = typing.get_type_hints(Settings)
    own = {"command", "models", "raw"}  # not options: the face, the model options, raw values
    plain = [o for o in options.OPTIONS if o.model_of is None]
    assert {f.name for f in dataclasses.fields(Settings)} - own == {o.key for o in plain}
    for option in plain:
        returns = typing.get_type_hints(option.parse)["return"]
        default = option.default_for(RUN) if RUN in option.commands else option.default
        can_be_none = default is None and option.kind not in ("flag", "ids")
        assert hints[option.key] == (returns | None if can_be_none else returns), option.key


def test_model_overrides_name_any_workload_that_takes_a_model():
    """``--model ID=MODEL`` for a plugin's workload as well as the built-ins; a model spec with
    commas of its own stays whole; a workload's own option wins."""
    spec = "llama:hidden=64,layers=2,heads=2,intermediate=128"
    settings = resolve(RUN, {"models": f"bert=/m/bert,llama={spec}"}, environ={})
    assert dict(settings.models) == {"bert": "/m/bert", "llama": spec}
    both = resolve(RUN, {"models": "bert=/m/a", "bert_model": "/m/b"}, environ={})
    assert both.models["bert"] == "/m/b"
    from_env = resolve(SUITE, {}, environ={"AMPCORE_MODELS": "bert=/m/c"})
    assert from_env.models == {"bert": "/m/c"}


@pytest.mark.parametrize("value, message", [
    ("resnet18=x", "workload 'resnet18' takes no model override"),
    ("bert", "'bert' is not ID=MODEL"),
    ("llama=gpt2", "unknown llama architecture"),
])
def test_bad_model_overrides_are_named(value, message):
    with pytest.raises(OptionError, match=message):
        resolve(RUN, {"models": value}, environ={})
