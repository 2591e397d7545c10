"""Random projections, the CMA-ES driver, and BBT end to end on tiny models."""
import dataclasses
import math

import numpy as np
import pytest
import torch

import bbtkit as bk
from notebook_cells import Spy, run_cell
from bbtkit.methods.bbt import candidate_losses
from bbtkit.course.cmaes import minimize
from bbtkit.data.splits import Example, Examples, Split
from bbtkit.tuning.projection import Projection, normal_std


@pytest.fixture(scope="module")
def toy_split(toy):
    dev = Examples([Example("fun and good", None, 1), Example("awful", None, 0)], name="dev")
    return Split("sst2", 0, toy, dev, toy)


def tiny_cfg(**kw):
    return dataclasses.replace(bk.BBTConfig.cpu_quick(seed=3), n_prompt_tokens=2, intrinsic_dim=8, popsize=4,
                               budget=24, eval_every=8, **kw)


def test_uniform_projection_statistics_match_formula():
    p = Projection(d=400, out_dim=2000, seed=1, kind="uniform")
    a = p.matrix()
    assert a.abs().max() <= 1 / math.sqrt(400) + 1e-7
    assert a.std().item() == pytest.approx(p.bound / math.sqrt(3), rel=0.01)
    assert abs(a.mean().item()) < 1e-3


def test_normal_projection_statistics_match_formula():
    std = normal_std(sigma_hat=0.05, d=100, sigma=0.5, alpha=2.0)
    assert std == pytest.approx(2.0 * 0.05 / (10 * 0.5))
    a = Projection(d=100, out_dim=5000, seed=2, kind="normal", std=std).matrix()
    assert a.std().item() == pytest.approx(std, rel=0.01)
    # z ~ N(0, sigma^2 I) then gives prompt entries of std alpha * sigma_hat
    z = torch.randn(2000, 100) * 0.5
    assert (z @ a.T).std().item() == pytest.approx(2.0 * 0.05, rel=0.02)


def test_projection_is_rebuilt_from_its_seed():
    a, b = Projection(10, 30, seed=7).matrix(), Projection(10, 30, seed=7).matrix()
    assert torch.equal(a, b) and not torch.equal(a, Projection(10, 30, seed=8).matrix())


def test_cmaes_on_a_sphere_is_deterministic_and_respects_the_budget():
    sphere = lambda X: (np.asarray(X) ** 2).sum(1)
    runs = [minimize(sphere, 5, budget=203, popsize=10, sigma0=1.0, seed=4, x0=np.ones(5)) for _ in range(2)]
    assert runs[0].calls == runs[1].calls == 200  # never a generation past the budget
    np.testing.assert_array_equal(runs[0].best_z, runs[1].best_z)
    assert runs[0].best_loss < 0.05  # from 5.0 at the start
    assert runs[0].stop == {"budget": "200 of 203 calls used"}  # the budget ended it, not a tolerance


def test_losses_on_hand_computed_logits():
    logits = torch.tensor([[[2.0, 0.0], [0.0, 3.0]]])  # one candidate, two examples
    labels = torch.tensor([0, 0])
    ce, acc = candidate_losses(logits, labels, "ce", bk.get_task("sst2"))
    expected = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(3))) / 2
    assert ce[0] == pytest.approx(expected, rel=1e-5) and acc[0] == 0.5
    hinge, _ = candidate_losses(logits, labels, "hinge", bk.get_task("sst2"))
    assert hinge[0] == pytest.approx((0.0 + 5.0) / 2)  # margin 2: max(0, 2 - 2) and max(0, 2 + 3)
    neg, _ = candidate_losses(logits, labels, "neg_metric", bk.get_task("sst2"))
    assert neg[0] == -0.5


@pytest.mark.parametrize("kw, message", [
    (dict(budget=0), "budget of zero"), (dict(loss="mse"), "loss must be"), (dict(popsize=1), "popsize"),
    (dict(projection="sparse"), "projection must be"), (dict(sigma=0), "sigma"), (dict(bound=-1.0), "bound"),
])
def test_config_validation_messages(kw, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(bk.BBTConfig.cpu_quick(), **kw)


def test_presets():
    paper = bk.BBTConfig.paper()
    assert (paper.n_prompt_tokens, paper.intrinsic_dim, paper.popsize, paper.budget) == (50, 500, 20, 8000)
    assert bk.BBTConfig.cpu_quick(seed=13).seed == 13


@pytest.mark.parametrize("arch", ["llama", "roberta"])
def test_seeded_bbt_run_is_reproducible_and_within_budget(arch, toy_split):
    lm = bk.tiny_model(arch)
    runs = [bk.run_bbt(lm, "sst2", toy_split, tiny_cfg(), display=False) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].z, runs[1].z)
    assert [h["best_loss"] for h in runs[0].history] == [h["best_loss"] for h in runs[1].history]
    assert runs[0].api_calls <= 24 and runs[0].test_metric is not None
    assert runs[0].history[0]["calls"] == 0 and runs[0].history[0]["dev_metric"] is not None


def test_save_load_evaluate_gives_the_identical_metric(toy_split, tmp_path):
    lm = bk.tiny_model("gpt2")
    res = bk.run_bbt(lm, "sst2", toy_split, tiny_cfg(projection="uniform", loss="hinge"), display=False)
    loaded = bk.load_result(res.save(tmp_path / "run"))
    assert torch.equal(loaded.prompt, res.prompt)
    assert bk.evaluate(lm, "sst2", toy_split.test, loaded.prompt, position=loaded.position) == res.test_metric
    assert loaded.config == res.config and loaded.history == res.history


def test_load_result_from_an_empty_folder_says_what_is_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="result.json"):
        bk.load_result(tmp_path)


@pytest.mark.parametrize("name", ["sphere", "ellipsoid", "rosenbrock"])
def test_hand_written_cma_moves_the_mean_like_pycma(name):
    import cma
    from bbtkit.course.cmaes import TEST_FUNCTIONS, HandCMA, cma_options

    f = TEST_FUNCTIONS[name]
    es = cma.CMAEvolutionStrategy([1.5, -1.0], 0.6, cma_options(8, seed=5))
    hand = HandCMA([1.5, -1.0], 0.6, popsize=8)
    for _ in range(3):  # the same samples, the same selection: the same new mean each generation
        X = np.asarray(es.ask())
        losses = [f(x) for x in X]
        es.tell(list(X), losses)
        hand.tell(X, losses)
        np.testing.assert_allclose(hand.mean, es.mean, rtol=1e-10, atol=1e-12)
        hand.mean = es.mean.copy()  # the step sizes differ in details; re-align before the next one


def test_record_generations_keeps_what_the_pictures_need():
    from bbtkit.course.cmaes import record_generations, sphere
    frames = record_generations(sphere, [2.0, 2.0], sigma0=0.5, popsize=6, seed=1, generations=5)
    assert len(frames) == 5 and frames[0]["X"].shape == (6, 2) and frames[0]["cov"].shape == (2, 2)
    assert frames[-1]["best"] < frames[0]["best"]


def test_the_inline_loop_of_notebook_03_matches_run_bbt(toy_split):
    """Notebook 03 writes the BBT loop out by hand: its cell, run as committed on a tiny model, is the loop
    run_bbt runs (the same best loss at every generation, the same calls)."""

    lm, task = bk.tiny_model("llama"), bk.get_task("sst2")
    spy = Spy(candidate_losses)
    ns = run_cell("03_black_box_tuning.ipynb", "es.tell(", lm=lm, task=task, split=toy_split, BUDGET=60,
                  candidate_losses=spy)
    res = bk.run_bbt(lm, task, toy_split, ns["cfg"], display=False, evaluate_test=False)
    assert len(spy.returns) == len(res.history) - 1 == 60 // ns["cfg"].popsize
    np.testing.assert_allclose([losses.min() for losses, _ in spy.returns],
                               [h["best_loss"] for h in res.history[1:]], rtol=1e-6)
    assert ns["api"].calls == res.api_calls
