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


@pytest.mark.parametrize("name,arch", [("roberta-large", "roberta"), ("bert-large-uncased", "bert")])
def test_shape_twins_have_the_papers_shapes_and_realistic_lengths(name, arch):
    from bbtkit.model.twins import SHAPES

    lm = bk.model.load.shape_twin(name, layers=1, dtype="fp32")  # one layer: every other dimension is the original's
    c = lm.config
    assert (c.hidden_size, c.num_attention_heads, c.intermediate_size) == (1024, 16, 4096)
    assert SHAPES[name][1]["num_hidden_layers"] == 24 and c.num_hidden_layers == 1
    assert (c.vocab_size, c.max_position_embeddings) == ((50265, 514) if arch == "roberta" else (30522, 512))
    assert lm.family == "mlm" and len(lm.tokenizer) <= c.vocab_size
    text = "a gripping , funny and ultimately moving film about growing up in a small town ."
    ids = lm.tokenizer(text)["input_ids"]
    assert 0.8 * len(text.split()) <= len(ids) - 2 <= 1.4 * len(text.split())  # word-level lengths, as the originals
    if arch == "roberta":  # RoBERTa's own ids for <s>, <pad>, </s>: its position ids count from the pad id
        assert (ids[0], lm.tokenizer.pad_token_id, ids[-1]) == (0, 1, 2)
    split = bk.load_split("sst2", seed=42)
    out = bk.BlackBoxLM(lm, "sst2", split.train[:4])(torch.zeros(2, 5, 1024))
    assert out.logits.shape == (2, 4, 2) and torch.isfinite(out.logits).all()


def test_an_unknown_twin_says_which_there_are():
    with pytest.raises(ValueError, match="the twins are roberta-large"):
        bk.model.load.shape_twin("gpt-5")
