"""Adapters sent to the service (DFO-LoRA's candidates) that cannot mean anything are refused with a
sentence before any call is charged or any metric reported (issue 29, items 8, 9 and 19)."""
import numpy as np
import pytest
import torch

import bbtkit as bk
from bbtkit.api.blackbox import AdapterSet


def _weights(lm, pop=1, layers=(0,), value=0.1, d_in=None, d_out=None, rank=2):
    d_in, d_out = d_in or lm.hidden_size, d_out or lm.hidden_size
    return {l: {"q": (torch.full((pop, rank, d_in), value), torch.full((pop, d_out, rank), value))} for l in layers}


@pytest.fixture(scope="module")
def lm():
    return bk.tiny_model("llama")


@pytest.mark.parametrize("scale", [float("nan"), float("inf"), -float("inf"), "1", None])
def test_a_scale_that_is_not_a_finite_number_is_refused(lm, scale):
    with pytest.raises(ValueError, match="AdapterSet: scale must be a finite number"):
        AdapterSet(_weights(lm), scale)


def test_huge_finite_adapters_are_refused_instead_of_scored_and_nothing_is_charged(lm, toy):
    huge = AdapterSet(_weights(lm, pop=2, value=1e30))  # finite, but the forward overflows: NaN logits
    api = bk.BlackBoxLM(lm, "sst2", toy, budget=10)
    with pytest.raises(ValueError, match="Candidate 0 of 2 gives NaN or inf logits"):
        api(adapters=huge)
    assert api.calls == 0
    with pytest.raises(ValueError, match="NaN or inf logits"):
        bk.evaluate(lm, "sst2", toy, adapters=huge.take(0, 1))  # not a plausible 0.5


def test_evaluate_scores_one_candidate_and_refuses_several(lm, toy):
    two = AdapterSet(_weights(lm, pop=2))
    with pytest.raises(ValueError, match=r"scores one candidate, but the adapters hold 2.*take\(c, c \+ 1\)"):
        bk.evaluate(lm, "sst2", toy, adapters=two)
    assert bk.evaluate(lm, "sst2", toy, adapters=two.take(1, 2)) == bk.evaluate(lm, "sst2", toy, adapters=two.take(0, 1))


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_adapters_that_do_not_fit_the_model_say_so_before_any_call(arch, toy):
    lm = bk.tiny_model(arch)
    api = bk.BlackBoxLM(lm, "sst2", toy)
    H = lm.hidden_size
    with pytest.raises(ValueError, match=rf"layer 99, but tiny-{arch} has layers 0..1"):
        api(adapters=AdapterSet(_weights(lm, layers=(99,))))
    with pytest.raises(ValueError, match=rf"needs A \(pop, r, {H}\) and B \(pop, \d+, r\), got \(1, 2, 7\)"):
        api(adapters=AdapterSet(_weights(lm, d_in=7)))
    with pytest.raises(ValueError, match=r"needs A .* got \(1, 2, 32\) and \(1, 5, 2\)"):
        bk.evaluate(lm, "sst2", toy, adapters=AdapterSet(_weights(lm, d_out=5)))
    with pytest.raises(ValueError, match="layers 0..1"):
        api.cache_below(1, adapters=AdapterSet(_weights(lm, layers=(5,))))
    assert api.calls == 0


@pytest.mark.parametrize("weights,message", [
    ({"0": {"q": (torch.zeros(1, 2, 32), torch.zeros(1, 32, 2))}}, r"layer '0' \(str\) must be a layer index"),
    ({-1: {"q": (torch.zeros(1, 2, 32), torch.zeros(1, 32, 2))}}, "layer -1 .* must be a layer index"),
    ({0: {"q": (torch.zeros(1, 2, 32), torch.zeros(1, 32, 2), torch.zeros(1))}}, r"give a pair \(A .*\), not 3 values"),
    ({0: {"o": (torch.zeros(1, 2, 32), torch.zeros(1, 32, 2))}}, "targets must be among"),
    ({0: {"q": ("A", "B")}}, "A must be a tensor or numpy array of numbers"),
    ({0: (torch.zeros(1, 2, 32), torch.zeros(1, 32, 2))}, r"must map targets to \(A, B\) pairs"),
    ({}, "at least one layer"),
    ([torch.zeros(1)], "weights must be a dict"),
])
def test_malformed_adapters_get_a_sentence(weights, message):
    with pytest.raises(ValueError, match=message):
        AdapterSet(weights)


def test_numpy_adapters_are_accepted_and_give_what_tensors_give(lm, toy):
    rng = np.random.default_rng(0)
    A, B = rng.normal(size=(1, 2, lm.hidden_size)), rng.normal(size=(1, lm.hidden_size, 2))
    from_numpy = AdapterSet({np.int64(1): {"q": (A, B)}}, np.float32(0.5))
    assert list(from_numpy.weights) == [1] and type(from_numpy.scale) is float
    as_tensor = lambda x: torch.tensor(x, dtype=torch.float32)  # noqa: E731
    from_torch = AdapterSet({1: {"q": (as_tensor(A), as_tensor(B))}}, 0.5)
    api = bk.BlackBoxLM(lm, "sst2", toy)
    assert torch.equal(api(adapters=from_numpy).logits, api(adapters=from_torch).logits)
