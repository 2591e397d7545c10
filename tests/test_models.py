"""Model loading: tiny models from configs, device and dtype choice, offline errors."""
import os

import pytest
import torch

import bbtkit as bk
from bbtkit.runtime import pick_dtype


@pytest.mark.parametrize("arch, family", [("roberta", "mlm"), ("bert", "mlm"), ("llama", "causal"), ("gpt2", "causal")])
def test_tiny_models_expose_the_uniform_view(arch, family):
    lm = bk.load_model(f"tiny-{arch}")
    assert lm.family == family and lm.num_layers == 2 and lm.hidden_size == 32
    assert lm.embeddings.weight.shape[1] == 32 and not lm.model.training
    assert all(not p.requires_grad for p in lm.model.parameters())
    assert "tiny" in repr(lm)


def test_tiny_models_are_seeded():
    a, b = bk.tiny_model("llama", seed=3), bk.tiny_model("llama", seed=3)
    assert torch.equal(a.embeddings.weight, b.embeddings.weight)


def test_unknown_tiny_architecture():
    with pytest.raises(ValueError, match="choose one of"):
        bk.tiny_model("t5")


def test_dtype_rules():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert pick_dtype(cpu, "fp32") is torch.float32 and pick_dtype(cpu, torch.float16) is torch.float16
    assert pick_dtype(cpu) in (torch.float32, torch.bfloat16)
    with pytest.raises(ValueError, match="Unknown dtype"):
        pick_dtype(cuda, "int3")
    assert bk.pick_device("cpu").type == "cpu"


def test_offline_hub_name_gives_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(bk.ModelNotAvailableError, match="embedded default"):
        bk.load_model("roberta-large-that-is-not-cached")


def test_load_model_from_a_local_folder(tmp_path):
    tiny = bk.tiny_model("gpt2")
    tiny.model.save_pretrained(tmp_path, safe_serialization=True)
    tiny.tokenizer.save_pretrained(tmp_path)
    lm = bk.load_model(str(tmp_path), device="cpu", dtype="fp32")
    assert lm.family == "causal" and torch.equal(lm.embeddings.weight, tiny.embeddings.weight)
