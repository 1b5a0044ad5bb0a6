"""Model families (``hf-text:``, ``hf-lm:``, ``torchvision:``): names resolve to workloads on
first use, each family trains a smoke run on the CPU, the model and size are in the run's
config and comparison key, and every bad name or checkpoint is a clear error.

The models are tiny ones saved in tmp paths; ../shared is used only for its bert-base-cased
tokenizer when it is there (a tiny WordPiece one otherwise)."""

import contextlib
import dataclasses
import io
import json
from pathlib import Path

import pytest
import torch

from ampcore.core import families, registry
from ampcore.core.errors import UnsupportedPrecisionError, UsageError, WeightsError
from ampcore.train.run import run_experiment
from ampcore.train.spec import RunSpec

pytestmark = pytest.mark.usefixtures("isolated_env", "one_cpu_thread")
SHARED_TOKENIZER = Path(__file__).resolve().parents[2] / "shared/models/bert-base-cased-config"
SMOKE = ["--profile", "smoke", "--device", "cpu", "--no-progress"]


@pytest.fixture(autouse=True)
def forget_families():
    """Each test resolves its own names: none stays registered for the tests after it."""
    yield
    for key in [k for k in list(registry.WORKLOADS)
                if registry.WORKLOADS.source(k) == families.SOURCE]:
        del registry.WORKLOADS[key]


def tokenizer():
    """bert-base-cased's tokenizer from ../shared when present, else a tiny WordPiece one."""
    if (SHARED_TOKENIZER / "vocab.txt").is_file():
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(SHARED_TOKENIZER))
    from ampcore.data import smoke

    return smoke.train_wordpiece_tokenizer(smoke.sentiment_corpus(64, 16, seed=0).train_texts)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Local model directories: ``text`` (a tiny BERT encoder's weights, no head), ``renamed``
    (the same with its encoder's keys renamed), ``lm`` (a tiny Llama causal LM) and ``vit`` (a
    ViT config: no text head of either kind)."""
    from safetensors.torch import load_file, save_file
    from transformers import BertConfig, BertModel, LlamaConfig, LlamaForCausalLM, ViTConfig

    tok, root = tokenizer(), tmp_path_factory.mktemp("families")
    small = dict(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                 intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    saved = {"text": BertModel(BertConfig(vocab_size=len(tok), **small)),
             "renamed": BertModel(BertConfig(vocab_size=len(tok), **small)),
             "lm": LlamaForCausalLM(LlamaConfig(vocab_size=len(tok), **small))}
    for name, model in saved.items():
        model.save_pretrained(root / name)
        tok.save_pretrained(root / name)
    weights = root / "renamed" / "model.safetensors"
    save_file({k.replace("encoder.", "renamed_encoder."): v for k, v in load_file(weights).items()},
              weights, metadata={"format": "pt"})
    ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
              intermediate_size=64).save_pretrained(root / "vit")
    tok.save_pretrained(root / "vit")
    return root


def cli(*args: str) -> tuple[int, str, str]:
    from ampcore.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(args))
    return code, out.getvalue(), err.getvalue()


# --- names -------------------------------------------------------------------------------------

def test_a_family_name_resolves_to_a_registered_workload(models):
    name = f"hf-text:{models / 'text'}"
    entry = registry.workload_entry(name)
    assert entry.id == name and not entry.default and entry.accepts("max_length")
    assert registry.WORKLOADS.source(name) == families.SOURCE and name in list(registry.WORKLOADS)
    assert {p: c.model for p, c in entry.configs.items()} == {"seed": str(models / "text"),
                                                              "smoke": str(models / "text")}
    # bert's seed experiment, the model as named
    seed, bert_seed = entry.config("seed"), registry.workload_entry("bert").config("seed")
    assert dataclasses.replace(seed, model=bert_seed.model) == bert_seed
    lm = registry.workload_entry("hf-lm:org/some-model")  # a hub id: looked up when it loads
    assert lm.quality == "loss" and lm.config("seed").max_length == 1024
    assert "hf-text:x/y" not in registry.default_ids(registry.WORKLOADS)


def test_torchvision_sizes_default_per_profile_and_are_set_with_at():
    plain = registry.workload_entry("torchvision:resnet50")
    assert (plain.config("seed").image_size, plain.config("smoke").image_size) == (224, 32)
    sized = registry.workload_entry("torchvision:vit_b_16@224")
    assert {c.image_size for c in sized.configs.values()} == {224}
    assert sized.config("seed").model == "vit_b_16" and not sized.accepts("max_length")


def test_torchvision_transformers_train_with_deits_recipe_and_convnets_keep_theirs():
    # DeiT (Touvron et al. 2021): lr 5e-4 x batch / 512, weight decay 0.05; in the config, so
    # in the comparison key. The convolutional networks keep resnet18's lr 1e-3 and wd 0.01.
    for name in ("torchvision:vit_b_16", "torchvision:vit_b_32@64", "torchvision:swin_t",
                 "torchvision:maxvit_t"):
        for config in registry.workload_entry(name).configs.values():
            assert config.lr == pytest.approx(5e-4 * config.batch_size / 512), name
            assert config.weight_decay == 0.05, name
    vit = registry.workload_entry("torchvision:vit_b_16").config("seed")
    assert (vit.lr, vit.batch_size) == (pytest.approx(6.25e-5), 64)
    for config in registry.workload_entry("torchvision:resnet50").configs.values():
        assert (config.lr, config.weight_decay) == (1e-3, 0.01)


def test_an_unregistered_family_name_reads_without_being_registered():
    entry = registry.WORKLOADS.get("hf-lm:no/such-model")  # a saved run's id, say
    assert entry is not None and entry.quality == "loss"
    assert "hf-lm:no/such-model" not in registry.WORKLOADS  # "in": registered
    assert "hf-lm:no/such-model" not in list(registry.WORKLOADS)
    assert registry.WORKLOADS.get("foo:bar") is None and "foo:bar" not in registry.WORKLOADS


def test_both_faces_take_family_names():
    from ampcore.options.table import RUN, SUITE, resolve

    run = resolve(RUN, {"workloads": ["bert", "torchvision:resnet18@16"]}, {})
    assert run.workloads == ["bert", "torchvision:resnet18@16"]
    suite = resolve(SUITE, {"workloads": "torchvision:resnet18,resnet18"}, {})
    assert suite.workloads == ["torchvision:resnet18", "resnet18"]


# --- bad names: usage errors before anything trains ----------------------------------------------

@pytest.mark.parametrize("name, expected", [
    ("foo:bar", "unknown model family 'foo' in workload 'foo:bar'; valid: hf-text:"),
    ("torchvision:resnet5", "'resnet5' is not a torchvision classification model; did you mean "
                            "resnet50"),
    ("torchvision:resnet50@abc", "image size 'abc' is not a whole number of pixels from 16"),
    ("torchvision:resnet50@8", "image size '8' is not a whole number"),
    ("torchvision:resnet50@4096", "image size '4096' is not a whole number"),
    ("hf-text:./no/such/dir", "'./no/such/dir' is neither a directory nor a Hugging Face model id"),
    ("hf-lm:", "names no model; write hf-lm:<hub id or directory>"),
], ids=["family", "torchvision-name", "size-text", "size-small", "size-large", "no-dir", "empty"])
def test_a_bad_name_is_a_usage_error_naming_it(name, expected):
    with pytest.raises(UsageError) as info:
        registry.workload_entry(name)
    assert expected in str(info.value)
    assert name in str(info.value) or name.startswith("hf-lm")
    assert name not in list(registry.WORKLOADS)


def test_the_cli_refuses_a_bad_family_name_with_exit_2():
    code, _, err = cli("run", "--workload", "torchvision:resnet5", "--precision", "fp32", *SMOKE)
    assert code == 2 and "did you mean resnet50" in err and "Traceback" not in err
    code, _, err = cli("run", "--workload", "foo:bar", "--precision", "fp32", *SMOKE)
    assert code == 2 and "unknown model family 'foo'" in err and "Traceback" not in err


def test_a_size_the_model_cannot_take_is_a_usage_error():
    with pytest.raises(UsageError) as info:  # SqueezeNet pools a 16-pixel image away
        run_experiment(RunSpec("torchvision:squeezenet1_1@16", "fp32", "smoke", device="cpu"))
    message = str(info.value)
    assert "torchvision's squeezenet1_1 cannot take 16x16 images" in message
    assert "torchvision:squeezenet1_1@224" in message
    with pytest.raises(UsageError, match="vit_b_16 cannot take 40x40 images"):  # patches of 16
        run_experiment(RunSpec("torchvision:vit_b_16@40", "fp32", "smoke", device="cpu"))


def test_an_hf_id_neither_local_nor_cached_is_a_weights_error():
    # HF_HUB_OFFLINE is set (isolated_env) and the id is in no cache: --download is the way out.
    name = "hf-text:ampcore-tests/not-a-cached-model"
    with pytest.raises(WeightsError) as info:
        run_experiment(RunSpec(name, "fp32", "smoke", device="cpu"))
    assert f"workload '{name}'" in str(info.value) and "--download" in str(info.value)
    code, _, err = cli("run", "--workload", name, "--precision", "fp32", *SMOKE)
    assert code == 1 and "--download" in err and "Traceback" not in err


@pytest.mark.parametrize("family, task", [("hf-text", "sequence-classification"),
                                          ("hf-lm", "causal language-model")])
def test_a_model_without_the_head_is_a_usage_error(models, family, task):
    with pytest.raises(UsageError) as info:
        run_experiment(RunSpec(f"{family}:{models / 'vit'}", "fp32", "smoke", device="cpu"))
    message = str(info.value)
    assert f"workload '{family}:{models / 'vit'}'" in message and "'vit' model" in message
    assert f"no {task} class" in message


# --- weights that do not fit the architecture (#25) ----------------------------------------------

def test_a_checkpoint_missing_more_than_the_head_is_refused(models):
    from ampcore.workloads import hf, hf_text

    source = hf_text.source(str(models / "renamed"))
    with pytest.raises(WeightsError) as info:
        hf.load(source, allow_random_init=False, allow_download=False)
    message = str(info.value)
    # the keys as transformers names them: "bert.encoder..." from 5, "encoder..." in 4.46
    assert "lacks" in message and "encoder.layer.0." in message and "and " in message
    assert "--allow-random-init" in message and str(models / "renamed") in message
    loaded = hf.load(source, allow_random_init=True, allow_download=False)
    assert loaded.pretrained is False and "partly pretrained" in loaded.weights_source
    # the matching checkpoint: only the new classifier is random
    good = hf.load(hf_text.source(str(models / "text")), allow_random_init=False,
                   allow_download=False)
    assert good.pretrained and good.weights_source.startswith("pretrained weights from")


def test_the_head_and_the_pooler_may_be_missing():
    from ampcore.workloads import hf

    class Model(torch.nn.Module):
        base_model_prefix = "bert"

        def __init__(self):
            super().__init__()
            self.bert, self.classifier = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)

    missing = ["classifier.weight", "bert.pooler.dense.weight", "bert.weight", "encoder.x"]
    assert hf.unloaded_keys(Model(), missing) == ["bert.weight", "encoder.x"]


# --- smoke runs, one per family -------------------------------------------------------------------

def check_recorded(result, name: str, model: str, image_size=None):
    from ampcore.history import matching
    from ampcore.judge.record import BenchmarkRecord

    assert (result.workload, result.config["model"]) == (name, model)
    assert result.config["image_size"] == image_size
    assert result.weights_source and all(map(torch.isfinite, torch.tensor(result.train_losses)))
    key = matching.measured_key(BenchmarkRecord.from_result(result))
    assert key["workload"] == name and key["model"] == Path(model).name
    assert key["image_size"] == image_size and "max_length" in key and "random_init" in key


def test_hf_text_smoke_run(models):
    name = f"hf-text:{models / 'text'}"
    result = run_experiment(RunSpec(name, "fp32", "smoke", device="cpu"))
    check_recorded(result, name, str(models / "text"))
    assert result.accuracy_meaningful and "pretrained weights from" in result.weights_source
    assert result.details["attention_mask"] in ("4d", "3d")  # an encoder: the sync-free mask
    assert result.heldout_samples == 64 and result.tokens_per_sample == 32


def test_hf_lm_smoke_run_is_judged_by_loss(models):
    name = f"hf-lm:{models / 'lm'}"
    result = run_experiment(RunSpec(name, "fp32", "smoke", device="cpu", max_length=16))
    check_recorded(result, name, str(models / "lm"))
    assert result.config["max_length"] == 16 and result.heldout_loss is not None
    assert result.details["uniform_loss"] > 0 and result.accuracy_meaningful


@pytest.mark.slow
def test_torchvision_smoke_run_learns_and_keys_the_size():
    from ampcore.history import matching
    from ampcore.judge.record import BenchmarkRecord

    name = "torchvision:resnet18@16"
    result = run_experiment(RunSpec(name, "fp32", "smoke", device="cpu"))
    check_recorded(result, name, "resnet18", image_size=16)
    assert result.final_accuracy > 0.5 and result.flops_per_sample > 0
    assert "random init (torchvision resnet18" in result.weights_source
    other = dataclasses.replace(result, config={**result.config, "image_size": 32})
    assert "image_size 16 vs 32" in matching.key_differences(
        BenchmarkRecord.from_result(result), BenchmarkRecord.from_result(other))
    json.dumps(result.config)  # the config is saved as it is


# --- precisions a model cannot run ---------------------------------------------------------------

def test_an_op_without_a_reduced_precision_kernel_skips_the_precision():
    from ampcore.workloads.base import precision_guard

    def forward(model, inputs):
        raise RuntimeError('"addmm_impl_cpu_" not implemented for \'Half\'')

    guarded = precision_guard("torchvision:toy@16", forward)
    inputs = {"pixels": torch.zeros(1)}
    with torch.autocast("cpu", dtype=torch.float16):
        with pytest.raises(UnsupportedPrecisionError) as info:
            guarded(None, inputs)
    assert "float16" in str(info.value) and "torchvision:toy@16" in str(info.value)
    with pytest.raises(RuntimeError, match="not implemented"):  # not autocast: a real error
        guarded(None, inputs)


def test_a_ddp_saved_checkpoint_with_module_prefixed_keys_is_refused(models, tmp_path):
    """A DistributedDataParallel save keeps its wrapper's "module." prefix on every key: nothing
    loads, and transformers would only log it (the faults issue's case 2)."""
    import shutil

    from safetensors.torch import load_file, save_file

    from ampcore.workloads import hf, hf_text

    ddp = tmp_path / "ddp"
    shutil.copytree(models / "text", ddp)
    weights = ddp / "model.safetensors"
    save_file({f"module.{k}": v for k, v in load_file(weights).items()}, weights,
              metadata={"format": "pt"})
    with pytest.raises(WeightsError, match="lacks"):
        hf.load(hf_text.source(str(ddp)), allow_random_init=False, allow_download=False)
    assert hf.load(hf_text.source(str(models / "text")), allow_random_init=False,
                   allow_download=False).pretrained  # negative control: the same weights
