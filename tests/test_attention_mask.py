"""BERT's padding mask: the form is chosen by what the installed transformers takes (probed on
the model), gives the 2D mask's logits and reads nothing on the host."""

import contextlib
from types import SimpleNamespace

import pytest
import torch

from ampcore.workloads import bert

pytestmark = pytest.mark.usefixtures("one_cpu_thread")


def tiny_bert(**config):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    model = BertForSequenceClassification(BertConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=16, num_labels=2, **config))
    return model.eval()


def padded_inputs() -> dict[str, torch.Tensor]:
    torch.manual_seed(1)
    mask = torch.ones(3, 8, dtype=torch.long)
    mask[0, 5:] = 0
    mask[1, 2:] = 0
    return {"input_ids": torch.randint(1, 50, (3, 8)), "attention_mask": mask}


@contextlib.contextmanager
def no_host_reads():
    """Reading a tensor's value on the host (``if mask.all():``, ``.item()``) raises: on a
    GPU that is a sync inside the training step, which a CUDA graph cannot capture."""
    def host_read(*_):
        raise AssertionError("a tensor was read on the host")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch.Tensor, "__bool__", host_read)
        patch.setattr(torch.Tensor, "item", host_read)
        yield


def test_installed_transformers_takes_a_sync_free_form_with_the_2d_logits():
    # transformers 5 takes "4d", 4 takes "3d" (tox -e oldest runs this on 4.46).
    model, inputs = tiny_bert(), padded_inputs()
    assert model.config._attn_implementation == "sdpa"
    form = bert.attention_mask_form(model, inputs)
    assert form in bert.MASK_FORMS
    with torch.no_grad():
        expected = model(**inputs).logits
        shaped = bert.with_mask_form(inputs, form)
        with no_host_reads():
            got = model(**shaped).logits
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_the_2d_mask_is_read_on_the_host_under_sdpa():
    # Why the forms exist: without one, every forward reads the mask on the host.
    model, inputs = tiny_bert(), padded_inputs()
    with pytest.raises(AssertionError, match="read on the host"), torch.no_grad(), no_host_reads():
        model(**inputs)


def test_the_forms_are_views_of_the_tokenized_mask():
    inputs = padded_inputs()
    mask = inputs["attention_mask"]
    for name, form in bert.MASK_FORMS.items():
        shaped = bert.with_mask_form(inputs, name)["attention_mask"]
        assert shaped.shape[0] == 3 and shaped.shape[-1] == 8
        assert shaped.dtype == torch.bool
        if name == "3d":  # (batch, queries, keys): every query row is the sample's mask
            assert shaped.shape == (3, 8, 8) and shaped.stride(1) == 0  # expanded, not copied
            assert torch.equal(shaped[:, 4, :], mask.bool())
        else:
            assert shaped.shape == (3, 1, 1, 8) and torch.equal(shaped[:, 0, 0, :], mask.bool())
    assert bert.with_mask_form(inputs, bert.TOKENIZED_FORM) is inputs


class FakeModel(torch.nn.Module):
    """A model that takes only masks of the given dimensions, raising as transformers does."""

    def __init__(self, accepted: set[int], attention: str = "sdpa") -> None:
        super().__init__()
        self.config = SimpleNamespace(_attn_implementation=attention)
        self.accepted, self.seen = accepted, []

    def forward(self, input_ids, attention_mask):
        self.seen.append((attention_mask.dim(), self.training, torch.is_grad_enabled()))
        if attention_mask.dim() not in self.accepted:
            raise ValueError("Wrong shape for input_ids or attention_mask "
                             f"(shape {attention_mask.shape})")
        return input_ids


@pytest.mark.parametrize("accepted, form", [({2, 4}, "4d"), ({2, 3}, "3d"), ({2}, "2d")],
                         ids=["transformers-5", "transformers-4", "neither"])
def test_the_first_form_the_model_takes_is_chosen(accepted, form):
    model = FakeModel(accepted).train()
    assert bert.attention_mask_form(model, padded_inputs()) == form
    assert model.training  # the probe's eval mode is undone
    assert all(not training and not grad for _, training, grad in model.seen)
    assert [dim for dim, _, _ in model.seen] == [4, 3][:len(model.seen)]


def test_other_attention_implementations_keep_the_2d_mask_untried():
    model = FakeModel({2, 3, 4}, attention="eager")
    assert bert.attention_mask_form(model, padded_inputs()) == bert.TOKENIZED_FORM
    assert model.seen == []


def test_the_smoke_build_uses_and_records_the_probed_form(isolated_env):
    import dataclasses

    from ampcore.core.registry import workload_entry

    config = dataclasses.replace(workload_entry("bert").config("smoke"), train_samples=16,
                                 test_samples=8)
    workload = bert.build(config, torch.device("cpu"), real_data=False, data_dir=None,
                          allow_download=False)
    form = workload.details["attention_mask"]
    assert form == bert.attention_mask_form(workload.model, {
        "input_ids": workload.train_inputs["input_ids"],
        "attention_mask": torch.ones_like(workload.train_inputs["input_ids"])})
    dims = {"4d": 4, "3d": 3, "2d": 2}[form]
    for inputs in (workload.train_inputs, workload.test_inputs):
        assert inputs["attention_mask"].dim() == dims
    logits = workload.forward(workload.model, {k: v[:4] for k, v in workload.train_inputs.items()})
    assert logits.shape == (4, 2)
