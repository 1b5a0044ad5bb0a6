"""Workload llama: architecture specs, packed sequences, the build, a smoke run, the per-token
held-out loss and the loss-parity rule."""

import copy
import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F

from ampcore.judge import gates
from ampcore.core.errors import DataSizeError, UsageError
from ampcore.measure.flops import llama_train_flops_per_sample
from ampcore.train.loop import Trainer
from ampcore.train.plan import plan_steps
from ampcore.judge.metrics import METRICS
from ampcore.train.precision import ActivePrecision
from ampcore.core.profiles import TINY_MODEL
from ampcore.judge.record import BenchmarkRecord
from ampcore.core.registry import get_precision, workload_entry
from ampcore.workloads import get_workload, llama

pytestmark = pytest.mark.usefixtures("isolated_env", "one_cpu_thread")
CPU = torch.device("cpu")
SMOKE = workload_entry("llama").config("smoke")


def test_registry_traits():
    entry = workload_entry("llama")
    assert (entry.quality, entry.asserts_speedup, entry.ddp) == ("loss", False, False)
    assert entry.accepts("max_length") and entry.accepts("model")
    assert entry.model_parser == "ampcore.workloads.llama:architecture"  # checks --llama-model
    assert entry.config("seed").max_length == 1024


def test_architecture_presets_and_specs():
    assert llama.architecture("llama-125m") == dict(hidden=768, layers=12, heads=12,
                                                    intermediate=2048, vocab=32000, kv_heads=12)
    spec = llama.architecture("llama:hidden=256,layers=2,heads=4,intermediate=512,kv_heads=2")
    assert (spec["hidden"], spec["kv_heads"], spec["vocab"]) == (256, 2, 32000)


@pytest.mark.parametrize("name, message", [
    ("gpt2", "unknown llama architecture 'gpt2'"),
    ("llama:hidden=64,layers=2", "lacks heads, intermediate"),
    ("llama:hidden=64,layers=2,heads=3,intermediate=128", "hidden must be a multiple of heads"),
    ("llama:hidden=64,layers=x,heads=2,intermediate=128", "'layers=x' is not key=N"),
    ("llama:hidden=64,depth=2,heads=2,intermediate=128", "'depth=2' is not key=N"),
])
def test_bad_architectures_are_usage_errors(name, message):
    with pytest.raises(UsageError, match=message):
        llama.architecture(name)


def test_the_125m_preset_has_about_125m_parameters():
    with torch.device("meta"):
        model = llama.build_model(llama.architecture("llama-125m"), 32000, 1024)
    assert 120e6 < sum(p.numel() for p in model.parameters()) < 140e6


def test_pack_cuts_documents_joined_by_the_separator():
    packed = llama.pack([[1, 2, 3], [4, 5], [6, 7, 8, 9]], length=3, count=2, separator=0,
                        where="x")
    assert packed.tolist() == [[1, 2, 3, 0], [4, 5, 0, 6]]
    with pytest.raises(DataSizeError, match="x holds 5 tokens; the profile asks for 2 sequences "
                       "of 4"):
        llama.pack([[1, 2], [3]], length=3, count=2, separator=0, where="x")


def test_smoke_build():
    workload = get_workload("llama")(SMOKE, CPU, real_data=False, data_dir=None,
                                     allow_download=False)
    n, length = SMOKE.train_samples, SMOKE.max_length
    inputs, labels = workload.train_inputs["input_ids"], workload.train_labels
    assert inputs.shape == labels.shape == (n, length)
    assert torch.equal(inputs[:, 1:], labels[:, :-1])  # labels are the next tokens
    assert workload.test_inputs["input_ids"].shape == (SMOKE.test_samples, length)
    config = workload.model.config
    assert config.vocab_size % 64 == 0
    assert config._attn_implementation in (llama.CAUSAL_ATTENTION, "sdpa")
    assert config.hidden_act == "silu" and not config.tie_word_embeddings  # SwiGLU, own head
    norms = {type(m).__name__ for m in workload.model.modules()}
    assert {"LlamaRMSNorm", "LlamaRotaryEmbedding", "LlamaMLP"} <= norms
    logits = workload.forward(workload.model, {"input_ids": inputs[:2]})
    assert logits.shape == (2, length, config.vocab_size)
    assert workload.tokens_per_sample == length
    assert workload.flops_per_sample == llama_train_flops_per_sample(64, 2, 4, 4, 176,
                                                                     config.vocab_size, length)


def test_seed_build_reads_train_and_test_splits(tmp_path, write_imdb, hf_datasets_cache):
    write_imdb(tmp_path, 60)
    write_imdb(tmp_path, 30, split="test")
    config = dataclasses.replace(workload_entry("llama").config("seed"), train_samples=8,
                                 test_samples=2, max_length=16, model=TINY_MODEL)
    workload = llama.build(config, CPU, real_data=True, data_dir=tmp_path, allow_download=False)
    assert workload.train_inputs["input_ids"].shape == (8, 16)
    assert "test split -> held-out text" in workload.data_source
    with pytest.raises(DataSizeError, match="held-out text"):
        llama.build(dataclasses.replace(config, test_samples=500), CPU, real_data=True,
                    data_dir=tmp_path, allow_download=False)


def test_flops_hand_count():
    # 1 layer, h=4, 2 heads, 1 kv head (kv width 2), i=8, vocab 10, s=3.
    per_token = (2 * 16 + 2 * 4 * 2 + 3 * 4 * 8) + 4 * 10
    forward = 2 * 3 * per_token + 4 * 9 * 4
    assert llama_train_flops_per_sample(4, 1, 2, 1, 8, 10, 3) == 3 * forward


def test_held_out_loss_is_per_token():
    workload = get_workload("llama")(SMOKE, CPU, real_data=False, data_dir=None,
                                     allow_download=False)
    amp = ActivePrecision(get_precision("fp32"), CPU)
    plan = plan_steps(workload.train_size, 16, 1, 0, 1, CPU)
    evaluation = Trainer(workload, amp, plan, eval_batch_size=8).evaluate()
    with torch.no_grad():
        logits = workload.forward(workload.model, workload.test_inputs)
    # (sequences, tokens, vocab) logits: the mean over every token, with the vocabulary as
    # cross-entropy's class dimension
    expected = F.cross_entropy(logits.transpose(1, 2), workload.test_labels).item()
    assert evaluation.loss == pytest.approx(expected, rel=1e-5)
    assert len(evaluation.predictions) == workload.test_labels.numel()
    token_accuracy = (logits.argmax(dim=-1) == workload.test_labels).float().mean().item()
    assert evaluation.accuracy == pytest.approx(token_accuracy)


@pytest.mark.slow
def test_smoke_run_learns_and_records_its_held_out_loss(smoke_run):
    result = smoke_run("llama", "fp32")
    losses = result.train_losses
    assert len(losses) == result.total_steps and all(math.isfinite(x) for x in losses)
    assert result.test_loss_per_epoch[-1] < result.details["uniform_loss"]
    assert result.test_loss_per_epoch[-1] < result.test_loss_per_epoch[0]
    record = BenchmarkRecord.from_result(result)
    assert record.heldout_loss == result.test_loss_per_epoch[-1]
    assert METRICS["heldout_loss"].value(record) == record.heldout_loss


def test_held_out_loss_is_recorded_only_where_it_is_the_quality(make_result):
    bert = make_result()
    lm = make_result(workload="llama")
    assert bert.summary()["heldout_loss"] is None and METRICS["heldout_loss"].value(
        BenchmarkRecord.from_result(bert)) is None
    assert lm.heldout_loss == lm.test_loss_per_epoch[-1]


# --- the loss-parity rule ---------------------------------------------------------------------

def _lm(make_result, precision, loss, uniform=4.0):
    return make_result(workload="llama", precision=precision, test_loss_per_epoch=[5.0, loss],
                       details={"uniform_loss": uniform})


def test_loss_parity_within_tolerance(make_result):
    verdict = gates.loss_parity_verdict(_lm(make_result, "fp32", 3.0),
                                        _lm(make_result, "fp8", 3.04), tolerance=0.05)
    assert verdict.passed and "gap +0.0400" in verdict.message
    assert f"perplexity {math.exp(3.04):.2f}" in verdict.message


def test_loss_parity_fails_beyond_tolerance(make_result):
    verdict = gates.loss_parity_verdict(_lm(make_result, "fp32", 3.0),
                                        _lm(make_result, "amp-bf16", 3.06), tolerance=0.05)
    assert not verdict.passed and "gap +0.0600, tolerance 0.0500" in verdict.message


def test_loss_parity_against_the_precision_fp8_builds_on_names_it(make_result):
    verdict = gates.loss_parity_verdict(_lm(make_result, "amp-bf16", 3.0),
                                        _lm(make_result, "fp8", 3.06), tolerance=0.05)
    assert not verdict.passed and "vs amp-bf16 3.0000" in verdict.message


def test_a_lower_amp_loss_passes(make_result):
    verdict = gates.loss_parity_verdict(_lm(make_result, "fp32", 3.0),
                                        _lm(make_result, "amp-bf16", 2.5), tolerance=0.0)
    assert verdict.passed


def test_loss_parity_fails_when_fp32_learned_nothing(make_result):
    verdict = gates.loss_parity_verdict(_lm(make_result, "fp32", 4.1),
                                        _lm(make_result, "amp-bf16", 4.1), tolerance=0.05)
    assert not verdict.passed and "not below 4.0000, a uniform guess" in verdict.message


def test_causal_attention_is_transformers_attention_with_its_causal_mask():
    """The unmasked causal SDPA equals transformers' eager attention, which applies a
    materialised causal mask; a changed last token changes the last logits only."""
    torch.manual_seed(0)
    model = llama.build_model(llama.architecture(TINY_MODEL), 256, 32).eval()
    tokens = torch.randint(0, 256, (2, 32))
    changed = tokens.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 256
    config = copy.deepcopy(model.config)
    config._attn_implementation = "eager"
    eager = type(model)(config).eval()
    eager.load_state_dict(model.state_dict())
    with torch.no_grad():
        ours, ours_changed = model(input_ids=tokens).logits, model(input_ids=changed).logits
        reference = eager(input_ids=tokens).logits
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)
    assert torch.equal(ours[:, :-1], ours_changed[:, :-1])  # no token sees a later one
    assert not torch.allclose(ours[:, -1], ours_changed[:, -1])
