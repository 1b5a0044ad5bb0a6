"""Workloads: smoke runs that learn, bert weight sources, builders, RunResult and FLOP counts."""

import dataclasses
import json
import math
import shutil
import statistics

import pytest
import torch

from ampcore.core.errors import DataError, UsageError, WeightsError
from ampcore.measure.flops import bert_train_flops_per_sample, mfu, tflops
from ampcore.core.profiles import get_profile
from ampcore.core.registry import workload_entry
from ampcore.train.result import SCALER_CONFIG, SCALER_HEALTH, RunResult
from ampcore.train.run import run_experiment
from ampcore.train.spec import RunSpec
from ampcore.workloads import bert, get_workload, resnet18

pytestmark = pytest.mark.usefixtures("isolated_env", "one_cpu_thread")
CPU = torch.device("cpu")

# Few full runs (seconds each), shared through the session fixture ``smoke_run``.
SMOKE_RUNS = [("bert", "fp32"), ("resnet18", "fp32"), ("bert", "amp-bf16")]
CHANCE = {"bert": 0.5, "resnet18": 0.1}


# --- full smoke runs --------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("workload, precision", SMOKE_RUNS, ids=[f"{w}-{p}" for w, p in SMOKE_RUNS])
def test_smoke_run_learns(smoke_run, workload, precision):
    result = smoke_run(workload, precision)
    config = workload_entry(workload).config("smoke")
    steps_per_epoch = math.ceil(config.train_samples / config.batch_size)
    losses = result.train_losses
    assert len(losses) == result.total_steps == steps_per_epoch * config.epochs
    assert all(math.isfinite(x) for x in losses)
    first_epoch = statistics.mean(losses[:steps_per_epoch])
    last_epoch = statistics.mean(losses[-steps_per_epoch:])
    assert last_epoch < 0.75 * first_epoch, (first_epoch, last_epoch)
    # Accuracy well above chance, and better at the end than after the first epoch.
    assert len(result.accuracy_per_epoch) == config.epochs
    assert result.final_accuracy > CHANCE[workload] + 0.25
    assert result.final_accuracy > result.accuracy_per_epoch[0]
    assert result.accuracy_meaningful


@pytest.mark.slow
@pytest.mark.parametrize("workload, precision", SMOKE_RUNS, ids=[f"{w}-{p}" for w, p in SMOKE_RUNS])
def test_smoke_run_records_the_run(smoke_run, workload, precision):
    result = smoke_run(workload, precision)
    profile = get_profile("smoke")
    config = workload_entry(workload).config("smoke")
    assert (result.workload, result.precision, result.profile, result.device) == (
        workload, precision, "smoke", "cpu")
    # Every round timed, every sample of every epoch counted once.
    assert len(result.round_times_s) == len(result.samples_per_round) == result.config["rounds"]
    assert result.config["rounds"] >= profile.min_rounds
    assert all(t > 0 for t in result.round_times_s)
    assert sum(result.samples_per_round) == config.train_samples * config.epochs
    assert len(result.predictions) == config.test_samples
    assert len(result.test_loss_per_epoch) == config.epochs
    assert result.grad_scaler == {"enabled": False, **dict.fromkeys(SCALER_CONFIG + SCALER_HEALTH),
                                  "skipped_steps": 0}
    assert result.nonfinite_losses == 0
    assert result.peak_memory_bytes is None  # only measured on CUDA
    assert result.environment["device_type"] == "cpu"
    assert "smoke" in result.data_source


@pytest.mark.slow
def test_smoke_runs_start_from_the_same_weights(smoke_run):
    # Each precision starts from the same seeded weights and batches, so the first losses
    # agree to within bf16 rounding (test_workload_builds_are_seeded checks the weights).
    fp32, bf16 = smoke_run("bert", "fp32"), smoke_run("bert", "amp-bf16")
    assert bf16.train_losses[0] == pytest.approx(fp32.train_losses[0], rel=1e-2)
    assert bf16.train_losses != fp32.train_losses  # and bf16 really ran in reduced precision


@pytest.mark.slow
def test_bert_smoke_run_counts_flops(smoke_run):
    result = smoke_run("bert", "fp32")
    config = workload_entry("bert").config("smoke")
    hidden = bert.TINY_BERT
    assert result.tokens_per_sample == config.max_length
    assert result.flops_per_sample == bert_train_flops_per_sample(
        hidden["hidden_size"], hidden["num_hidden_layers"], hidden["intermediate_size"],
        config.max_length, 2)
    assert result.model_tflops == pytest.approx(result.flops_per_sample * result.samples_per_s / 1e12)
    assert result.tokens_per_s == pytest.approx(result.samples_per_s * config.max_length)
    assert smoke_run("resnet18", "fp32").model_tflops is None  # no analytical count there


@pytest.mark.slow
@pytest.mark.parametrize("workload, precision", SMOKE_RUNS[:2], ids=["bert", "resnet18"])
def test_run_result_json_round_trip(smoke_run, workload, precision):
    result = smoke_run(workload, precision)
    data = json.loads(json.dumps(result.to_dict()))
    assert data["summary"]["final_accuracy"] == result.final_accuracy
    assert data["summary"]["samples_per_s"] == pytest.approx(result.samples_per_s)
    again = RunResult.from_dict(data)
    assert again == result
    assert again.summary() == result.summary()


# --- RunResult derived figures -------------------------------------------------------------------

def test_run_result_derived_figures(make_result):
    r = make_result()
    assert r.name == "bert-amp-fp16"
    assert r.train_time_s == 4.0
    assert r.samples_per_s == 250 / 4.0
    assert r.tokens_per_s == 250 / 4.0 * 256
    assert r.model_tflops == pytest.approx(1e11 * 62.5 / 1e12)  # 6.25 TFLOP/s
    # Per-sample round times: 0.01, 0.02, 0.02 s -> stdev / mean.
    per_sample = [0.01, 0.02, 0.02]
    assert r.round_cv == pytest.approx(statistics.stdev(per_sample) / statistics.mean(per_sample))
    assert r.round_cv == pytest.approx(0.34641, rel=1e-4)
    assert (r.final_accuracy, r.final_train_loss, r.skipped_steps) == (0.9, 0.2, 3)


def test_run_result_round_cv_is_zero_for_equal_or_single_rounds(make_result):
    # Rounds of different sizes but the same time per sample do not vary.
    assert make_result(round_times_s=[2.0, 1.0], samples_per_round=[100, 50]).round_cv == pytest.approx(0.0)
    assert make_result(round_times_s=[2.0], samples_per_round=[100]).round_cv == 0.0


def test_run_result_without_flops_or_tokens(make_result):
    r = make_result(workload="resnet18", tokens_per_sample=None, flops_per_sample=None)
    assert r.model_tflops is None and r.tokens_per_s is None


def test_run_result_from_dict_ignores_unknown_keys(make_result):
    data = make_result().to_dict()
    data["added_by_a_newer_version"] = 1
    assert RunResult.from_dict(data) == make_result()
    assert set(data["summary"]) >= {"train_time_s", "samples_per_s", "model_tflops", "round_cv"}


# --- FLOP counts ---------------------------------------------------------------------------------

def test_bert_base_flops_match_a_hand_count():
    h, layers, i, s, labels = 768, 12, 3072, 256, 2
    # Matrix products of one forward pass, 2 FLOPs per multiply-add, shape by shape:
    per_layer = (
        4 * (2 * s * h * h)  # Q, K, V and the attention output projection: (s x h) @ (h x h)
        + 2 * s * h * i + 2 * s * i * h  # MLP up (s x h) @ (h x i) and down (s x i) @ (i x h)
        + 2 * s * h * s  # scores: (s x h) @ (h x s), summed over the heads
        + 2 * s * s * h  # scores @ V: (s x s) @ (s x h)
    )
    head = 2 * h * h + 2 * h * labels  # pooler and classifier on the [CLS] token
    forward = layers * per_layer + head
    expected = 3 * forward  # backward is about twice the forward
    assert expected == 137_710_937_088
    assert bert_train_flops_per_sample(h, layers, i, s, labels) == pytest.approx(expected)
    assert bert_train_flops_per_sample(h, layers, i, s) == pytest.approx(1.38e11, rel=5e-3)


def test_tflops_and_mfu():
    assert tflops(1.377e11, 1000.0) == pytest.approx(137.7)
    assert mfu(137.7, 989.0) == pytest.approx(0.13923, rel=1e-4)


# --- bert weight sources ----------------------------------------------------------------------

def test_bert_dir_without_weights_needs_allow_random_init(tiny_bert_dirs):
    source = tiny_bert_dirs["config_only"]
    with pytest.raises(WeightsError) as info:
        bert.load_model(str(source), allow_random_init=False, allow_download=False)
    assert "--allow-random-init" in str(info.value)
    assert str(source) in str(info.value)


def test_bert_dir_without_weights_random_init(tiny_bert_dirs):
    source = tiny_bert_dirs["config_only"]
    model, tokenizer, weights_source, pretrained = bert.load_model(
        str(source), allow_random_init=True, allow_download=False)
    assert pretrained is False
    assert "random init" in weights_source and str(source) in weights_source
    assert model.config.hidden_size == tiny_bert_dirs["hidden_size"]
    assert model.config.num_labels == 2
    assert len(tokenizer) == model.config.vocab_size


def test_bert_fp16_checkpoint_loads_as_float32(tiny_bert_dirs):
    from safetensors.torch import load_file

    source = tiny_bert_dirs["fp16_weights"]
    saved = load_file(str(source / "model.safetensors"))
    assert {t.dtype for t in saved.values()} == {torch.float16}  # the checkpoint really is fp16
    model, _, weights_source, pretrained = bert.load_model(
        str(source), allow_random_init=False, allow_download=False)
    assert pretrained is True and "pretrained weights" in weights_source
    assert {p.dtype for p in model.parameters()} == {torch.float32}
    # The weights are the saved ones (upcast), not a fresh random init.
    name = "bert.embeddings.word_embeddings.weight"
    assert torch.equal(dict(model.named_parameters())[name], saved[name].float())


@pytest.mark.parametrize("allow_random_init", [False, True], ids=["pretrained", "random-init"])
def test_bert_hub_id_without_download_is_a_weights_error(allow_random_init):
    # Not on disk and not in the hub cache; --download is the way out (HF_HUB_OFFLINE is set).
    with pytest.raises(WeightsError) as info:
        bert.load_model("ampcore-tests/not-a-cached-bert", allow_random_init=allow_random_init,
                        allow_download=False)
    assert "--download" in str(info.value)
    assert "'ampcore-tests/not-a-cached-bert'" in str(info.value)


def test_bert_build_on_local_imdb_with_random_init(tmp_path, tiny_bert_dirs, write_imdb, hf_datasets_cache):
    # The seed path (real data) with local files: a tiny IMDB parquet and a config-only model.
    write_imdb(tmp_path, 40)
    config = dataclasses.replace(workload_entry("bert").config("seed"), train_samples=24,
                                 test_samples=8, max_length=16, model=str(tiny_bert_dirs["config_only"]),
                                 eval_samples=8)  # the seed's 5,000 exceed this file's 40 reviews
    workload = bert.build(config, CPU, real_data=True, data_dir=tmp_path, allow_download=False,
                          allow_random_init=True)
    assert workload.accuracy_meaningful is False
    # No test split: the held-out reviews come from the train reviews outside the sample.
    assert workload.heldout_inputs["input_ids"].shape == (8, 16)
    assert "outside the sample" in workload.heldout_source
    assert workload.train_inputs["input_ids"].shape == (24, 16)
    assert workload.test_inputs["input_ids"].shape == (8, 16)
    mask = workload.test_inputs["attention_mask"]  # 2D, or broadcastable 4D (N, 1, 1, L)
    assert (mask.shape[0], mask.shape[-1]) == (8, 16)
    assert workload.train_labels.shape == (24,) and set(workload.train_labels.tolist()) <= {0, 1}
    assert "imdb parquet" in workload.data_source
    assert workload.tokens_per_sample == 16
    assert workload.flops_per_sample == bert_train_flops_per_sample(32, 1, 64, 16, 2)
    assert all(p.dtype == torch.float32 for p in workload.model.parameters())
    logits = workload.forward(workload.model, {k: v[:4] for k, v in workload.train_inputs.items()})
    assert logits.shape == (4, 2)


def test_bert_max_length_beyond_position_embeddings_is_a_usage_error():
    # The tiny smoke BERT has 64 position embeddings: refused before any training.
    with pytest.raises(UsageError, match="--max-length 128 exceeds the model's 64"):
        run_experiment(RunSpec("bert", "fp32", "smoke", device="cpu", max_length=128))


# --- bert model sources: every bad source a WeightsError naming the file --------------------------

def _model_copy(tiny_bert_dirs, tmp_path, kind="fp16_weights", **config_changes):
    """A writable copy of a tiny model directory, its config.json edited with ``config_changes``."""
    target = tmp_path / kind
    shutil.copytree(tiny_bert_dirs[kind], target)
    if config_changes:
        config = json.loads((target / "config.json").read_text())
        config.update(config_changes)
        (target / "config.json").write_text(json.dumps(config))
    return target


def _refused(source, **kwargs):
    """The WeightsError message of ``bert.load_model(source)``; stdin must never be read."""
    options = dict(allow_random_init=False, allow_download=False) | kwargs
    with pytest.raises(WeightsError) as info:
        bert.load_model(str(source), **options)
    return str(info.value)


@pytest.fixture
def no_prompt(monkeypatch):
    """CI has no terminal: a [y/N] question would hang or fail there."""
    def refuse(*args):
        raise AssertionError(f"prompted: {args}")

    monkeypatch.setattr("builtins.input", refuse)


def test_bert_dir_without_tokenizer_files_is_refused(tiny_bert_dirs, tmp_path, no_prompt):
    # transformers would build a 5-token tokenizer: [CLS] [UNK] ... [SEP] for every review.
    source = _model_copy(tiny_bert_dirs, tmp_path)
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (source / name).unlink()
    message = _refused(source)
    assert str(source) in message
    assert "vocab.txt" in message and "tokenizer.json" in message


@pytest.mark.parametrize("case", ["specials-only", "much-smaller-than-model"])
def test_bert_implausibly_small_tokenizer_is_refused(tiny_bert_dirs, tmp_path, no_prompt, case):
    if case == "specials-only":  # a vocab.txt of only the special tokens, vocab_size as saved
        source = _model_copy(tiny_bert_dirs, tmp_path)
        for name in ("tokenizer.json", "tokenizer_config.json"):
            (source / name).unlink()
        (source / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]) + "\n")
        expected = "has 5 tokens"
    else:  # the tiny 57-token tokenizer for a model with a 28,996-row embedding table
        source = _model_copy(tiny_bert_dirs, tmp_path, "config_only", vocab_size=28996)
        expected = "vocab_size is 28996"
    message = _refused(source, allow_random_init=True)
    assert expected in message and "implausibly small" in message and str(source) in message


def test_bert_tokenizer_larger_than_the_embedding_table_is_refused(tiny_bert_dirs, tmp_path):
    source = _model_copy(tiny_bert_dirs, tmp_path, "config_only", vocab_size=40)
    message = _refused(source, allow_random_init=True)
    assert "vocab_size 40" in message and str(source) in message


@pytest.mark.parametrize("damage", ["empty", "truncated", "bad-header"])
def test_bert_bad_safetensors_names_the_file(tiny_bert_dirs, tmp_path, damage):
    source = _model_copy(tiny_bert_dirs, tmp_path)
    path = source / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes({"empty": b"", "truncated": data[: len(data) // 2],
                      "bad-header": b"\xff" * 8 + data[8:]}[damage])
    assert f"{path} is not a valid safetensors file: " in _refused(source)


def _pickle_model(tiny_bert_dirs, tmp_path, state):
    """The fp16 tiny model with its weights as a pickle (pytorch_model.bin) of ``state``."""
    source = _model_copy(tiny_bert_dirs, tmp_path)
    (source / "model.safetensors").unlink()
    torch.save(state, source / "pytorch_model.bin")
    return source, source / "pytorch_model.bin"


class _RunsCode:
    """A pickle that would create a file when unpickled without weights_only."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_bert_pickle_checkpoint_is_loaded_weights_only(tiny_bert_dirs, tmp_path):
    from safetensors.torch import load_file

    saved = load_file(str(tiny_bert_dirs["fp16_weights"] / "model.safetensors"))
    source, _ = _pickle_model(tiny_bert_dirs, tmp_path, saved)
    model, _, weights_source, pretrained = bert.load_model(
        str(source), allow_random_init=False, allow_download=False)
    name = "bert.embeddings.word_embeddings.weight"
    assert pretrained and torch.equal(dict(model.named_parameters())[name], saved[name].float())
    # A pickle holding more than tensors is refused, and its code never runs.
    marker = tmp_path / "pickle-ran-code"
    source, path = _pickle_model(tiny_bert_dirs, tmp_path / "evil", {**saved, "x": _RunsCode(marker)})
    message = _refused(source)
    assert str(path) in message and "weights_only=True" in message
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_bert_damaged_pickle_names_the_file(tiny_bert_dirs, tmp_path, damage):
    from safetensors.torch import load_file

    source, path = _pickle_model(tiny_bert_dirs, tmp_path,
                                 load_file(str(tiny_bert_dirs["fp16_weights"] / "model.safetensors")))
    data = path.read_bytes()
    path.write_bytes(b"" if damage == "empty" else data[: len(data) // 2])
    message = _refused(source)
    assert f"{path} is not a readable PyTorch checkpoint" in message


@pytest.mark.parametrize("where, model_type", [
    ("config.json", "ampcore-custom"),  # transformers cannot build it without the code
    ("config.json", "bert"),  # transformers would silently build plain BERT instead
    ("tokenizer_config.json", "bert"),
], ids=["unknown-type", "known-type", "tokenizer"])
def test_bert_custom_code_is_refused_without_a_prompt(tiny_bert_dirs, tmp_path, no_prompt,
                                                      where, model_type):
    source = _model_copy(tiny_bert_dirs, tmp_path, model_type=model_type)
    path = source / where
    content = json.loads(path.read_text())
    content["auto_map"] = {"AutoConfig": "modeling_custom.CustomConfig",
                           "AutoModelForSequenceClassification": "modeling_custom.CustomModel"}
    path.write_text(json.dumps(content))
    (source / "modeling_custom.py").write_text(f"open({str(tmp_path / 'ran')!r}, 'w')\n")
    message = _refused(source)
    assert f"{path} has an 'auto_map'" in message and "trust_remote_code=False" in message
    assert not (tmp_path / "ran").exists()


def test_bert_loading_passes_trust_remote_code_false(tiny_bert_dirs, monkeypatch):
    import transformers

    calls = []
    for cls in ("AutoConfig", "AutoTokenizer", "AutoModelForSequenceClassification"):
        original = getattr(transformers, cls).from_pretrained

        def spy(*args, _original=original, _cls=cls, **kwargs):
            calls.append((_cls, kwargs.get("trust_remote_code", "not passed")))
            return _original(*args, **kwargs)

        monkeypatch.setattr(getattr(transformers, cls), "from_pretrained", spy)
    bert.load_model(str(tiny_bert_dirs["fp16_weights"]), allow_random_init=False, allow_download=False)
    # AutoTokenizer reads the config itself too: every call says False.
    assert {cls for cls, _ in calls} == {"AutoConfig", "AutoTokenizer", "AutoModelForSequenceClassification"}
    assert {trust for _, trust in calls} == {False}


def _seed_bert_config(model, max_length):
    return dataclasses.replace(workload_entry("bert").config("seed"), train_samples=24,
                               test_samples=8, max_length=max_length, model=str(model),
                               eval_samples=8)  # the files written hold 40 reviews


def test_bert_max_length_refusal_names_the_model_and_the_fix(tmp_path, tiny_bert_dirs, write_imdb,
                                                             hf_datasets_cache):
    write_imdb(tmp_path, 40)
    source = tiny_bert_dirs["config_only"]  # 64 position embeddings
    with pytest.raises(UsageError) as info:
        bert.build(_seed_bert_config(source, 128), CPU, real_data=True, data_dir=tmp_path,
                   allow_download=False, allow_random_init=True)
    message = str(info.value)
    assert "--max-length 128 exceeds the model's 64" in message
    assert str(source) in message and "--max-length 64 or less" in message


def test_roberta_style_positions_count_the_padding_offset(tmp_path, tiny_bert_dirs, write_imdb,
                                                          hf_datasets_cache):
    # RoBERTa numbers positions from padding_idx + 1: 66 embeddings hold 64 positions, and a
    # 66-token sequence fails with an index error inside the first forward.
    write_imdb(tmp_path, 40)
    source = _model_copy(tiny_bert_dirs, tmp_path, "config_only", model_type="roberta",
                         max_position_embeddings=66, pad_token_id=1)
    with pytest.raises(UsageError, match="--max-length 66 exceeds the model's 64 position"):
        bert.build(_seed_bert_config(source, 66), CPU, real_data=True, data_dir=tmp_path,
                   allow_download=False, allow_random_init=True)
    workload = bert.build(_seed_bert_config(source, 64), CPU, real_data=True, data_dir=tmp_path,
                          allow_download=False, allow_random_init=True)
    assert workload.forward(workload.model, {k: v[:2] for k, v in workload.train_inputs.items()}).shape == (2, 2)


# --- builders ----------------------------------------------------------------------------------

def test_resnet18_build_on_local_mnist(tmp_path, write_mnist):
    write_mnist(tmp_path, n_train=12, n_test=5)
    config = dataclasses.replace(workload_entry("resnet18").config("seed"), model="builtin:tiny")
    workload = resnet18.build(config, CPU, real_data=True, data_dir=tmp_path, allow_download=False)
    assert workload.train_inputs["pixels"].shape == (12, 1, 28, 28)
    assert workload.test_labels.shape == (5,)
    assert workload.details["image_size"] == [28, 28]
    assert workload.forward(workload.model, {"pixels": workload.train_inputs["pixels"][:3]}).shape == (3, 10)


@pytest.mark.parametrize("split", ["train", "test"])
def test_resnet18_more_samples_than_the_data_holds_is_refused(tmp_path, write_mnist, split):
    # A slice past the end would train or evaluate on 5 images while the record says 10.
    write_mnist(tmp_path, n_train=12, n_test=5)
    sizes = {"train": dict(train_samples=20, test_samples=5), "test": dict(train_samples=12, test_samples=10)}
    config = dataclasses.replace(workload_entry("resnet18").config("seed"), model="builtin:tiny",
                                 **sizes[split])
    with pytest.raises(DataError) as info:
        resnet18.build(config, CPU, real_data=True, data_dir=tmp_path, allow_download=False)
    have = {"train": 12, "test": 5}[split]
    assert f"asks for {sizes[split][split + '_samples']} {split} images" in str(info.value)
    assert f"holds {have}" in str(info.value)


def test_resnet18_has_the_small_image_stem():
    model = resnet18.build_model()
    assert model.conv1.in_channels == 1 and model.conv1.stride == (1, 1)
    assert model.conv1.kernel_size == (3, 3)
    assert isinstance(model.maxpool, torch.nn.Identity)
    assert model.fc.out_features == 10
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_resnet18_unknown_architecture_is_a_usage_error():
    config = dataclasses.replace(workload_entry("resnet18").config("smoke"), model="resnet50")
    with pytest.raises(UsageError, match="'resnet50'"):
        resnet18.build(config, CPU, real_data=False, data_dir=None, allow_download=False)


def test_workload_builds_are_seeded():
    # The same config gives the same initial weights, whatever the global RNG did before.
    config = workload_entry("resnet18").config("smoke")
    torch.manual_seed(1)
    a = resnet18.build(config, CPU, real_data=False, data_dir=None, allow_download=False)
    torch.manual_seed(2)
    b = resnet18.build(config, CPU, real_data=False, data_dir=None, allow_download=False)
    for (name, x), y in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(x, y), name
    assert torch.equal(a.train_labels, b.train_labels)


@pytest.mark.parametrize("name", ["gpt2", "resnet"])
def test_unknown_workload_lists_valid_ids(name):
    with pytest.raises(UsageError) as info:
        get_workload(name)
    assert "bert" in str(info.value) and "resnet18" in str(info.value)
