"""Length buckets (prompt before the input): the same logits as one padded batch, for less compute."""
import itertools

import numpy as np
import pytest
import torch

import bbtkit as bk
from bbtkit.model.forward import Bucketed, Forward, length_buckets


def brute_force(lengths, overhead):
    """The cheapest cost over every split of the sorted lengths into consecutive groups."""
    ls, best = sorted(lengths), float("inf")
    for k in range(len(ls)):
        for cuts in itertools.combinations(range(1, len(ls)), k):
            bounds = [0, *cuts, len(ls)]
            best = min(best, sum((b - a) * ls[b - 1] + overhead for a, b in zip(bounds, bounds[1:])))
    return best


@pytest.mark.parametrize("seed", range(6))
def test_length_buckets_are_the_cheapest_grouping(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(3, 60, size=int(rng.integers(1, 9))).tolist()
    overhead = float(rng.choice([0.0, 10.0, 80.0]))
    groups = length_buckets(lengths, overhead)
    assert sorted(i for g in groups for i in g) == list(range(len(lengths)))  # every example once
    cost = sum(len(g) * max(lengths[i] for i in g) + overhead for g in groups)
    assert cost == pytest.approx(brute_force(lengths, overhead))


@pytest.mark.parametrize("arch", ["roberta", "llama"])
def test_buckets_give_the_padded_batchs_logits(arch, toy):
    lm = bk.tiny_model(arch)
    H, g = lm.hidden_size, torch.Generator().manual_seed(0)
    one = Forward(lm, bk.get_task("sst2"), toy, 3, "before")
    buck = Bucketed(lm, bk.get_task("sst2"), toy, 3, "before", overhead=0.0)
    assert len(buck.parts) > 1 and buck.padded_tokens < len(toy) * one.width  # it did split, and saves positions
    shallow = torch.randn(4, 3, H, generator=g) * 0.1
    deep = torch.randn(4, lm.num_layers, 3, H, generator=g) * 0.1
    per_example = torch.randn(4, len(toy), 3, H, generator=g) * 0.1
    for sh, dp in [(shallow, None), (None, deep), (per_example, None)]:
        a, ha = one.run(sh, dp, 4, return_hidden=True, max_batch_tokens=64)
        b, hb = buck.run(sh, dp, 4, return_hidden=True, max_batch_tokens=64)
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(hb, ha, atol=1e-5, rtol=1e-5)
    one.cache_layers_below(1, deep[0])
    buck.cache_layers_below(1, deep[0])
    same_below = deep.clone()
    same_below[:, :1] = deep[:1, :1]
    torch.testing.assert_close(buck.run(None, same_below, 4)[0], one.run(None, same_below, 4)[0], atol=1e-5, rtol=1e-5)


def test_the_api_buckets_when_nothing_is_shared_and_keeps_the_context_cache_otherwise(toy):
    lm = bk.tiny_model("llama")
    before = bk.BlackBoxLM(lm, "sst2", toy, position="before")
    after = bk.BlackBoxLM(lm, "sst2", toy, position="after")
    assert isinstance(before.forward_for(3), Bucketed) and isinstance(after.forward_for(3), Forward)
    prompts = torch.randn(2, 3, lm.hidden_size) * 0.1
    ref = Forward(lm, bk.get_task("sst2"), toy, 3, "before").run(prompts, None, 2)[0]
    torch.testing.assert_close(before(prompts).logits, ref, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_a_causal_lms_shared_prefix_runs_once_per_candidate_with_the_same_logits(arch, toy):
    lm = bk.tiny_model(arch)
    task, H, g = bk.get_task("sst2"), lm.hidden_size, torch.Generator().manual_seed(1)
    task = task.with_template("Review of a film: {text_a} It was {mask}", "causal", task.words("causal"))
    fast = Forward(lm, task, toy, 3, "before")
    plain = Forward(lm, task, toy, 3, "before", use_cache=False)
    assert fast.prefix > 3 and plain.prefix == 0  # the prompt and the template's words before the input
    shallow = torch.randn(5, 3, H, generator=g) * 0.1
    deep = torch.randn(5, lm.num_layers, 3, H, generator=g) * 0.1
    per_example = torch.randn(5, len(toy), 3, H, generator=g) * 0.1
    for sh, dp in [(shallow, None), (None, deep), (shallow, deep), (per_example, None)]:
        a, ha = fast.run(sh, dp, 5, return_hidden=True, max_batch_tokens=96)
        b, hb = plain.run(sh, dp, 5, return_hidden=True, max_batch_tokens=96)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(ha, hb, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(Forward(lm, task, toy, 0, "before").run(None, None, 1)[0],
                               Forward(lm, task, toy, 0, "before", use_cache=False).run(None, None, 1)[0], atol=1e-5, rtol=1e-5)


def test_a_large_set_is_grouped_in_linear_time_with_groups_of_at_most_256():
    groups = length_buckets([5] * 600 + [9] * 100, overhead=1.0)
    assert sorted(i for g in groups for i in g) == list(range(700)) and max(map(len, groups)) <= 256
