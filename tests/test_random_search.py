"""Random search: BBT's space, budget and loss, candidates drawn around the start; a registered method."""
import dataclasses

import numpy as np
import pytest

import bbtkit as bk
from bbtkit.course import leaderboard as lb
from bbtkit.data.splits import Example, Examples, Split
from bbtkit.methods.random_search import RandomSearch, RandomSearchConfig, run_random_search


@pytest.fixture(scope="module")
def toy_split(toy):
    dev = Examples([Example("fun and good", None, 1), Example("awful", None, 0)], name="dev")
    return Split("sst2", 0, toy, dev, toy)


def small(**kw):
    return dataclasses.replace(RandomSearchConfig.cpu_quick(seed=3), n_prompt_tokens=2, intrinsic_dim=8, popsize=4,
                               budget=24, eval_every=8, **kw)


def test_draws_are_centred_on_the_start_with_spread_sigma_and_learn_nothing():
    opt = RandomSearch(dim=5, sigma=0.5, popsize=2000, seed=0)
    X = opt.ask()
    opt.tell(X, np.arange(len(X)))  # whatever it is told, the next draws come from the same distribution
    Y = opt.ask()
    for S in (X, Y):
        assert np.abs(S.mean(0)).max() < 0.05 and np.abs(S.std(0) - 0.5).max() < 0.05
    np.testing.assert_array_equal(opt.selected, X[0])
    again = RandomSearch(dim=5, sigma=0.5, popsize=2000, seed=0)
    np.testing.assert_array_equal(again.ask(), X)


def test_random_search_runs_in_bbts_space_within_the_budget_and_reloads(toy_split, tmp_path):
    lm = bk.tiny_model("llama")
    res = run_random_search(lm, "sst2", toy_split, small(), display=False)
    bbt = bk.run_bbt(lm, "sst2", toy_split, dataclasses.replace(bk.BBTConfig.cpu_quick(seed=3), n_prompt_tokens=2,
                                                                 intrinsic_dim=8, popsize=4, budget=24, eval_every=8),
                     display=False)
    assert res.method == "random" and res.api_calls == 24 == bbt.api_calls
    assert res.projections == bbt.projections and res.z.shape == bbt.z.shape  # the same space
    assert res.stop == {"budget": "24 of 24 calls used"}
    assert res.dev_metric >= res.history[0]["dev_metric"]  # the start competes in selection
    loaded = bk.load_result(res.save(tmp_path / "rs"))
    assert bk.evaluate(lm, "sst2", toy_split.test, loaded.prompt, position=loaded.position) == res.test_metric
    assert run_random_search(lm, "sst2", toy_split, small(), display=False).z.tolist() == res.z.tolist()


def test_random_search_is_a_registered_leaderboard_method(toy_split, tmp_path):
    assert bk.METHODS["random"].label == "Random search" and "random" in lb.METHODS
    res = lb.run_entry(bk.tiny_model("llama"), "random", "sst2", 13, scale=0.01, test_size=16, root=tmp_path)
    assert res.method == "random" and res.api_calls <= lb.budget("sst2", 0.01)
    assert "random" in bk.load_leaderboard(tmp_path)
