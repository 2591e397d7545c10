"""Adapters per candidate (DFO-LoRA's candidates): low-rank updates of W_Q and W_K applied by hooks
inside inject.py, on tiny models of all four families. Zero adapters are the bare model exactly; a
population in one batch equals candidate by candidate, and equals merging W + B A into the weights;
no hook stays behind."""
import copy

import pytest
import torch

import bbtkit as bk
from bbtkit.model import inject
from bbtkit.api.blackbox import Forward


def _inputs(lm, toy, pop):
    fw = Forward(lm, bk.get_task("sst2"), toy, 0, "before", use_cache=False)
    return fw.base_embeds.repeat(pop, 1, 1), fw.mask.repeat(pop, 1), fw.pos.repeat(pop, 1)


def _random_adapters(lm, pop, layers, rank=2, seed=0, zero_b=False):
    g = torch.Generator().manual_seed(seed)
    out = {}
    for layer in layers:
        out[layer] = {}
        for t, (mod, part) in inject.attention_projections(lm, layer).items():
            d_in = lm.hidden_size
            d_out = lm.hidden_size if part is not None else mod.out_features
            A = torch.randn(pop, rank, d_in, generator=g) * 0.3
            B = torch.zeros(pop, d_out, rank) if zero_b else torch.randn(pop, d_out, rank, generator=g) * 0.3
            out[layer][t] = (A, B)
    return out


def _hidden(lm, toy, pop, adapters=None, scale=1.0):
    embeds, mask, pos = _inputs(lm, toy, pop)
    with torch.no_grad(), (inject.candidate_adapters(lm, adapters, scale) if adapters else torch.no_grad()):
        h, _ = inject.run_layers(lm, embeds, mask, pos)
    return h.view(pop, len(toy), *h.shape[1:])


def test_zero_adapters_are_exactly_the_bare_model(tiny, toy):
    bare = _hidden(tiny, toy, 3)
    zero = _hidden(tiny, toy, 3, _random_adapters(tiny, 3, range(tiny.num_layers), zero_b=True))
    assert torch.equal(bare, zero)


def test_no_hook_remains_after_the_context_even_on_error(tiny, toy):
    before = inject.count_hooks(tiny)
    with pytest.raises(RuntimeError, match="stop"):
        with inject.candidate_adapters(tiny, _random_adapters(tiny, 2, [0])):
            assert inject.count_hooks(tiny) > before
            raise RuntimeError("stop")
    assert inject.count_hooks(tiny) == before


def test_a_population_in_one_batch_equals_candidate_by_candidate(tiny, toy):
    adapters = _random_adapters(tiny, 3, range(tiny.num_layers), seed=1)
    together = _hidden(tiny, toy, 3, adapters, scale=0.5)
    for c in range(3):
        one = {l: {t: (A[c:c + 1], B[c:c + 1]) for t, (A, B) in per.items()} for l, per in adapters.items()}
        torch.testing.assert_close(together[c], _hidden(tiny, toy, 1, one, scale=0.5)[0], atol=1e-6, rtol=0)
    assert (together[0] - together[1]).abs().max() > 1e-3  # candidates really differ


def test_adapters_equal_merging_the_update_into_the_weights(tiny, toy):
    adapters = _random_adapters(tiny, 2, [tiny.num_layers - 1], seed=2)
    hooked = _hidden(tiny, toy, 2, adapters, scale=2.0)
    for c in range(2):
        merged = copy.deepcopy(tiny)
        for layer, per in adapters.items():
            for t, (mod, part) in inject.attention_projections(merged, layer).items():
                A, B = per[t]
                delta = 2.0 * B[c] @ A[c]                                     # (out, in)
                with torch.no_grad():
                    if part is None:
                        mod.weight += delta                                   # Linear: (out, in)
                    else:
                        mod.weight[:, part] += delta.T                        # GPT-2 Conv1D: (in, 3H)
        torch.testing.assert_close(hooked[c], _hidden(merged, toy, 1)[0], atol=1e-5, rtol=1e-5)


def test_bad_targets_say_what_there_is():
    lm = bk.tiny_model("llama")
    with pytest.raises(ValueError, match="among"):
        inject.attention_projections(lm, 0, ("o",))


# --- through the API: "the service applies the adapters the client sends" ---------------------------
ATOL = 1e-5


def _set(lm, pop, layers, seed=0, zero_b=False, scale=1.0):
    return bk.api.blackbox.AdapterSet(_random_adapters(lm, pop, layers, seed=seed, zero_b=zero_b), scale)


def test_the_api_with_zero_adapters_gives_the_bare_logits_and_counts_one_call_each(tiny, toy):
    api = bk.BlackBoxLM(tiny, "sst2", toy, budget=10)
    bare = api().logits[0]
    out = api(adapters=_set(tiny, 3, range(tiny.num_layers), zero_b=True))
    assert out.logits.shape == (3, len(toy), 2) and api.calls == 4
    for c in range(3):
        torch.testing.assert_close(out.logits[c], bare, atol=ATOL, rtol=0)
    with pytest.raises(bk.BudgetExceededError):
        api(adapters=_set(tiny, 7, [0]))
    assert api.calls == 4


def test_the_api_batches_adapter_candidates_as_it_would_one_by_one(tiny, toy):
    adapters = _set(tiny, 3, range(tiny.num_layers), seed=4, scale=0.5)
    api = bk.BlackBoxLM(tiny, "sst2", toy, max_batch_tokens=10 ** 6)
    together = api(adapters=adapters).logits
    chunked = bk.BlackBoxLM(tiny, "sst2", toy, max_batch_tokens=1)(adapters=adapters).logits  # one at a time
    torch.testing.assert_close(together, chunked, atol=ATOL, rtol=0)
    one = api(adapters=adapters.take(1, 2)).logits[0]
    torch.testing.assert_close(together[1], one, atol=ATOL, rtol=0)


@pytest.mark.parametrize("arch", bk.model.load.TINY)
def test_the_layer_cache_with_adapters_equals_the_full_forward(arch, toy):
    """Layer 0's adapters are fixed while layer 1's are tuned (DFO-LoRA's layer by layer): the cached
    hidden states entering layer 1 must give what the full forward gives."""
    lm = bk.tiny_model(arch, layers=3)
    fixed = _set(lm, 1, [0], seed=5)
    tuned = _set(lm, 4, [1, 2], seed=6)
    weights = {0: {t: (A.expand(4, -1, -1), B.expand(4, -1, -1)) for t, (A, B) in fixed.weights[0].items()},
               **tuned.weights}
    candidates = bk.api.blackbox.AdapterSet(weights, 1.0)
    cached_api = bk.BlackBoxLM(lm, "sst2", toy, layer_cache=True)
    cached = cached_api(adapters=candidates).logits
    fw = cached_api.forward_for(0, context=False)
    assert fw.layer_cache is not None and fw.layer_cache[0] == 1  # it ran only layers 1 and 2
    full = bk.BlackBoxLM(lm, "sst2", toy, layer_cache=False)(adapters=candidates).logits
    torch.testing.assert_close(cached, full, atol=ATOL, rtol=0)
    other = bk.api.blackbox.AdapterSet({**weights, 0: {t: (A + 1, B) for t, (A, B) in weights[0].items()}}, 1.0)
    assert fw._cached_start(None, other)[0] == 0  # other adapters below: the cache does not serve them


def test_bad_adapters_are_refused_before_any_call(toy):
    lm = bk.tiny_model("llama")
    api = bk.BlackBoxLM(lm, "sst2", toy)
    A, B = torch.zeros(2, 2, lm.hidden_size), torch.zeros(3, lm.hidden_size, 2)
    with pytest.raises(ValueError, match="same number"):
        bk.api.blackbox.AdapterSet({0: {"q": (A, B)}})
    with pytest.raises(ValueError, match="NaN or inf"):
        bk.api.blackbox.AdapterSet({0: {"q": (A, torch.full((2, lm.hidden_size, 2), float("nan")))}})
    with pytest.raises(ValueError, match="2 prompts but 3 adapter sets"):
        api(torch.zeros(2, 2, lm.hidden_size), adapters=_set(lm, 3, [0]))
    assert api.calls == 0
