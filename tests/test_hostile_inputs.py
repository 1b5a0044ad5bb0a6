"""Hostile inputs of the families the faults issue names (options, model names, injections,
histories), each answered by a clear message and its exit status, never a traceback and never
a run that silently trains something else. One row per case: argv, exit status, message part."""

import pytest

from ampcore.cli import main

SMOKE = ["--device", "cpu", "--profile", "smoke"]
CASES = {
    "torchvision name typo": (["run", "--workload", "torchvision:resnet5", *SMOKE], 2,
                              "did you mean resnet50"),
    "family without a model": (["run", "--workload", "hf-text:", *SMOKE], 2, "names no model"),
    "unknown family": (["run", "--workload", "foo:bar", *SMOKE], 2, "unknown model family 'foo'"),
    "image size 0": (["run", "--workload", "torchvision:resnet18@0", *SMOKE], 2,
                     "image size '0' is not a whole number of pixels from 16 to 1024"),
    "image size not a number": (["run", "--workload", "torchvision:resnet18@abc", *SMOKE], 2,
                                "image size 'abc'"),
    "model dir that does not exist": (["run", "--workload", "hf-lm:/nonexistent/dir", *SMOKE], 2,
                                      "is neither a directory nor a Hugging Face model id"),
    "model dir without config.json": (["run", "--workload", "hf-text:{tmp}", "--precision",
                                       "fp32", *SMOKE], 1, "has no config.json"),
    "injection that cannot act on fp32": (["run", "--workload", "bert", "--precision", "fp32",
                                           "--inject", "autocast-fp32-op", *SMOKE], 2,
                                          "cannot act on precision 'fp32'"),
    "gpu-work of 0 us": (["run", "--inject", "gpu-work:0", *SMOKE], 2, "a number in (0, 1000000]"),
    "gpu-work negative": (["run", "--inject", "gpu-work:-5", *SMOKE], 2, "got '-5'"),
    "gpu-work absurd": (["run", "--inject", "gpu-work:1e9", *SMOKE], 2, "got '1e9'"),
    "gpu-work on a CPU": (["run", "--workload", "resnet18", "--precision", "fp32", "--inject",
                           "gpu-work:10", *SMOKE], 2, "the spin kernel needs CUDA"),
    "argument to a kind without one": (["run", "--inject", "extra-sync:3", *SMOKE], 2,
                                       "takes no argument"),
    "unknown injection": (["run", "--inject", "slow", *SMOKE], 2, "unknown injection 'slow'"),
    "zero seeds": (["run", "--seeds", "0", *SMOKE], 2, "--seeds: expected a whole number >= 1"),
    "negative seeds": (["run", "--seeds", "-1", *SMOKE], 2, "got '-1'"),
    "negative eval samples": (["run", "--eval-samples", "-3", *SMOKE], 2, ">= 0, got '-3'"),
    "max length 0": (["run", "--max-length", "0", *SMOKE], 2, "--max-length"),
    "unknown profile": (["run", "--profile", "nosuch", "--device", "cpu"], 2,
                        "expected one of seed, smoke"),
    "CUDA device absent": (["run", "--device", "cuda:99", "--profile", "smoke"], 1,
                           "CUDA is not available here"),
    "device torch cannot train on": (["run", "--device", "tpu", "--profile", "smoke"], 2,
                                     "expected cpu, cuda or cuda:N"),
    "unknown precision": (["run", "--precision", "nosuch", *SMOKE], 2,
                          "unknown precision 'nosuch'"),
    "zero processes": (["run", "--processes", "0", *SMOKE], 2, "--processes"),
    "json into a missing directory": (["run", "--json", "/nonexistent/dir/out.json", *SMOKE], 2,
                                      "give --mkdir to create it"),
    "compare a storage that does not exist": (["compare", "/nonexistent/store"], 3,
                                              "no such file or directory"),
    "compare an empty file": (["compare", "{store}"], 3, "is empty"),
    "calibrate negative trials": (["calibrate", "{store}", "--trials", "-1"], 2,
                                  "--trials must be within [0, 10000]"),
    "calibrate an unreadable history": (["calibrate", "{store}"], 3, "no readable saved run"),
    "report a storage that does not exist": (["report", "/nonexistent/store", "--out",
                                              "{tmp}/report"], 3, "no readable saved run"),
}


@pytest.fixture(autouse=True)
def registry_unchanged():
    """A model family named by a case registers itself: remove it, so that later tests see
    the registries as they were (their help and error texts list the ids)."""
    from ampcore.core import registry

    before = set(registry.WORKLOADS)
    yield
    for name in set(registry.WORKLOADS) - before:
        del registry.WORKLOADS[name]


@pytest.mark.parametrize("argv, status, message", CASES.values(), ids=CASES.keys())
def test_hostile_input_gets_a_clear_answer(argv, status, message, tmp_path, capsys):
    store = tmp_path / "store" / "machine"
    store.mkdir(parents=True)
    (store / "0001_empty.json").write_text("")
    argv = [a.format(tmp=tmp_path, store=store.parent) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    out = capsys.readouterr()
    text = out.err + out.out
    assert code == status, text[-2000:]
    assert message in text and "Traceback" not in text
