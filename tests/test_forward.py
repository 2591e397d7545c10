"""bbtkit.model.forward: every path (cached context, shared prefix, padding, the layer cache) gives the label-word
logits the stock model gives for each example alone, with the prompt added to its positions' embeddings."""
import pytest
import torch

import bbtkit as bk
from bbtkit.model.forward import Forward
from bbtkit.model.templates import encode_example

TASK = bk.get_task("sst2")
N = 2


def reference(lm, examples, prompt, position):
    """The stock model, one example at a time, no cache: (examples, classes)."""
    ids = TASK.label_ids(lm)
    rows = []
    for ex in examples:
        enc = encode_example(lm, TASK, ex, N, position)
        emb = lm.embeddings(torch.tensor(enc.ids)).clone()
        if prompt is not None:
            emb[enc.prompt] += prompt
        with torch.no_grad():
            rows.append(lm.model(inputs_embeds=emb[None]).logits[0, enc.answer, ids])
    return torch.stack(rows)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize("position,use_cache", [("after", True), ("after", False), ("before", True), ("before", False)])
def test_each_path_is_the_stock_model_on_each_example_alone(toy, arch, position, use_cache):
    lm = bk.tiny_model(arch)
    fwd = Forward(lm, TASK, toy, N, position, use_cache=use_cache)
    prompts = 0.3 * torch.randn(3, N, lm.hidden_size, generator=torch.Generator().manual_seed(0))
    logits, _ = fwd.run(prompts, None, 3)
    assert logits.shape == (3, len(toy), 2)
    for i in range(3):
        torch.testing.assert_close(logits[i], reference(lm, toy, prompts[i], position), atol=1e-5, rtol=1e-4)
    zero, _ = fwd.run(torch.zeros(1, N, lm.hidden_size), None, 1)
    if position == "after":  # a zero prompt after the input is the manual template itself
        torch.testing.assert_close(zero[0], reference(lm, toy, None, position), atol=1e-5, rtol=1e-4)


def test_a_masked_lm_reads_the_answer_at_its_mask(toy):
    lm = bk.tiny_model("roberta")
    prompt = 0.3 * torch.randn(1, N, lm.hidden_size, generator=torch.Generator().manual_seed(1))
    logits, hidden = Forward(lm, TASK, toy, N, "before").run(prompt, None, 1, return_hidden=True)
    torch.testing.assert_close(logits[0], reference(lm, toy, prompt[0], "before"), atol=1e-5, rtol=1e-4)
    assert hidden.shape == (1, len(toy), lm.hidden_size)


def test_the_layer_cache_changes_nothing_but_the_work(toy):
    lm = bk.tiny_model("llama", layers=3)
    g = torch.Generator().manual_seed(2)
    deep = 0.3 * torch.randn(4, lm.num_layers, N, lm.hidden_size, generator=g)
    deep[:, :2] = deep[0, :2]  # the candidates agree below layer 2, as while BBTv2 tunes layer 2
    plain, _ = Forward(lm, TASK, toy, N, "after").run(None, deep, 4)
    fwd = Forward(lm, TASK, toy, N, "after")
    fwd.cache_layers_below(2, deep[0])
    cached, _ = fwd.run(None, deep, 4)
    torch.testing.assert_close(cached, plain, atol=1e-5, rtol=1e-4)
    assert fwd.layer_cache is not None and fwd.layer_cache[0] == 2
