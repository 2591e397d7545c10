"""Exact equivalences of the prompt-injection paths on tiny random models (fp32)."""
import warnings

import pytest
import torch

import bbtkit as bk
from bbtkit.model import inject
from bbtkit.model.templates import encode_example, pad_batch

ATOL = 1e-5


def stock_logits(lm, task, examples, n, position):
    """The stock model on input_ids, no injection: full-vocabulary logits at every position."""
    enc = [encode_example(lm, task, ex, n, position) for ex in examples]
    b = pad_batch(enc, lm.pad_id, "right")
    kwargs = dict(input_ids=b.ids, attention_mask=b.mask)
    with torch.no_grad():
        logits = lm.model(**kwargs).logits  # (batch, seq, vocab)
    return logits[torch.arange(len(enc)), b.answer][:, task.label_ids(lm)]


def test_zero_shallow_prompt_equals_stock_model(tiny, toy):
    task = bk.get_task("sst2")
    for position in (["before", "after"] if tiny.family == "causal" else ["before"]):
        api = bk.BlackBoxLM(tiny, task, toy, position=position)
        out = api(torch.zeros(2, 3, tiny.hidden_size))
        ref = stock_logits(tiny, task, toy, 3, position)
        torch.testing.assert_close(out.logits[0], ref, atol=ATOL, rtol=0)
        torch.testing.assert_close(out.logits[1], ref, atol=ATOL, rtol=0)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_zero_prompt_after_input_equals_bare_template(arch, toy):
    """Added to the template tokens after the input, a zero prompt is the manual prompt itself."""
    lm, task = bk.tiny_model(arch), bk.get_task("sst2")
    api = bk.BlackBoxLM(lm, task, toy, position="after")
    bare = stock_logits(lm, task, toy, 0, "after")
    torch.testing.assert_close(api(torch.zeros(1, 2, lm.hidden_size)).logits[0], bare, atol=ATOL, rtol=0)
    torch.testing.assert_close(api().logits[0], bare, atol=ATOL, rtol=0)


def test_zero_deep_prompt_equals_bare_model(tiny, toy):
    task = bk.get_task("sst2")
    api = bk.BlackBoxLM(tiny, task, toy)
    deep = torch.zeros(2, tiny.num_layers, 2, tiny.hidden_size)
    shallow = torch.zeros(1, 2, tiny.hidden_size)
    torch.testing.assert_close(api(deep).logits[0], api(shallow).logits[0], atol=ATOL, rtol=0)
    torch.testing.assert_close(api(deep).logits[0], stock_logits(tiny, task, toy, 2, api.position), atol=ATOL, rtol=0)


def test_deep_prompt_changes_logits(tiny, toy):
    api = bk.BlackBoxLM(bk.tiny_model(tiny.name.removeprefix("tiny-")), bk.get_task("sst2"), toy)
    torch.manual_seed(0)
    deep = torch.zeros(1, tiny.num_layers, 2, tiny.hidden_size)
    deep[:, 1] = torch.randn(2, tiny.hidden_size)  # only layer 1: through a hook, not the embeddings
    assert (api(deep).logits - api(torch.zeros_like(deep)).logits).abs().max() > 1e-4


def test_hooks_are_removed_after_the_context_exits(tiny):
    deep = torch.randn(1, tiny.num_layers, 2, tiny.hidden_size)
    pos = torch.zeros(1, 2, dtype=torch.long)
    with inject.deep_prompt_hooks(tiny, deep, pos):
        assert inject.count_hooks(tiny) == tiny.num_layers - 1
    assert inject.count_hooks(tiny) == 0
    with pytest.raises(RuntimeError):
        with inject.deep_prompt_hooks(tiny, deep, pos):
            raise RuntimeError("boom")
    assert inject.count_hooks(tiny) == 0


def test_left_and_right_padding_give_the_same_logits(tiny, toy):
    task = bk.get_task("sst2")
    torch.manual_seed(1)
    shallow = 0.5 * torch.randn(2, 3, tiny.hidden_size)
    deep = 0.5 * torch.randn(2, tiny.num_layers, 3, tiny.hidden_size)
    kw = dict(position="before", use_cache=False)
    left = bk.BlackBoxLM(tiny, task, toy, padding_side="left", **kw)
    right = bk.BlackBoxLM(tiny, task, toy, padding_side="right", **kw)
    torch.testing.assert_close(left(shallow).logits, right(shallow).logits, atol=ATOL, rtol=0)
    torch.testing.assert_close(left(deep).logits, right(deep).logits, atol=ATOL, rtol=0)


def test_population_in_one_batch_equals_one_candidate_at_a_time(tiny, toy):
    task = bk.get_task("sst2")
    torch.manual_seed(2)
    prompts = 0.5 * torch.randn(5, tiny.num_layers, 2, tiny.hidden_size)
    whole = bk.BlackBoxLM(tiny, task, toy)(prompts, return_hidden=True)
    chunked = bk.BlackBoxLM(tiny, task, toy, max_batch_tokens=1)(prompts, return_hidden=True)  # 1 per pass
    single = [bk.BlackBoxLM(tiny, task, toy)(p[None]) for p in prompts]
    torch.testing.assert_close(whole.logits, torch.cat([s.logits for s in single]), atol=ATOL, rtol=0)
    torch.testing.assert_close(whole.logits, chunked.logits, atol=ATOL, rtol=0)
    torch.testing.assert_close(whole.hidden, chunked.hidden, atol=ATOL, rtol=0)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
@pytest.mark.parametrize("n", [2, 6])  # 6 > the template tail: fillers are inserted
def test_prompt_after_input_with_cached_keys_values_equals_full_forward(arch, n, toy, toy_pairs):
    lm = bk.tiny_model(arch)
    torch.manual_seed(3)
    for task, ex in [(bk.get_task("sst2"), toy), (bk.get_task("snli"), toy_pairs)]:
        shallow = 0.5 * torch.randn(3, n, lm.hidden_size)
        deep = 0.5 * torch.randn(3, lm.num_layers, n, lm.hidden_size)
        cached = bk.BlackBoxLM(lm, task, ex, position="after", use_cache=True)
        full = bk.BlackBoxLM(lm, task, ex, position="after", use_cache=False)
        assert cached.forward_for(n).context_cached and not full.forward_for(n).context_cached
        for p in (shallow, deep):
            a, b = cached(p, return_hidden=True), full(p, return_hidden=True)
            torch.testing.assert_close(a.logits, b.logits, atol=ATOL, rtol=0)
            torch.testing.assert_close(a.hidden, b.hidden, atol=ATOL, rtol=0)


def test_evaluate_matches_the_black_box(tiny, toy):
    task = bk.get_task("sst2")
    prompt = 0.3 * torch.randn(2, tiny.hidden_size)
    api_logits = bk.BlackBoxLM(tiny, task, toy)(prompt[None]).logits[0]
    torch.testing.assert_close(bk.label_logits(tiny, task, toy, prompt, batch_size=2), api_logits, atol=ATOL, rtol=0)
    acc = bk.evaluate(tiny, task, toy, prompt)
    assert acc == pytest.approx((api_logits.argmax(-1).numpy() == toy.labels).mean())


def test_label_rows_head_equals_full_head(tiny):
    h = torch.randn(4, tiny.hidden_size)
    ids = torch.tensor([5, 9, 11])
    with torch.no_grad():
        full = tiny.model.get_output_embeddings()(tiny._head_transform(h))[:, ids]
        torch.testing.assert_close(tiny.label_logits(h, ids), full, atol=ATOL, rtol=0)


def test_empty_input_at_template_start_falls_back_to_full_forward():
    from bbtkit.data.splits import Example, Examples
    lm, task = bk.tiny_model("llama"), bk.Task("t", ("bad", "good"), {"causal": "{text_a} it was {mask}"})
    empty = Examples([Example("", None, 0)], name="content-free")
    api = bk.BlackBoxLM(lm, task, empty)
    assert not api.forward_for(0).context_cached
    torch.testing.assert_close(api().logits[0], stock_logits(lm, task, empty, 0, "after"), atol=ATOL, rtol=0)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_no_cache_deprecation_warning(arch, toy, monkeypatch):
    """The KV-cache keyword follows the installed transformers (`cache` from 5.24, else
    `past_key_values`): a deprecation message on stderr breaks the notebooks' output checks."""
    generic = pytest.importorskip("transformers.utils.generic")
    said = []
    if hasattr(generic, "logger"):
        monkeypatch.setattr(generic.logger, "warning_once", lambda msg, *a, **k: said.append(msg))
    lm, task = bk.tiny_model(arch), bk.get_task("sst2")
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        for position in ("before", "after"):
            api = bk.BlackBoxLM(lm, task, toy, position=position)
            api(torch.zeros(2, 2, lm.hidden_size))
        bk.api.blackbox.label_logits(lm, task, toy)
    assert not [m for m in said if "deprecated" in str(m)], said

