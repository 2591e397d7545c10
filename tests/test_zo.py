"""Zeroth-order SGD and its prior-guided forms: the estimators, their cost in calls, determinism, and
the black-box method on BBT's space."""
import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import bbtkit as bk
from notebook_cells import run_cell
from bbtkit.course import leaderboard as lb
from bbtkit.data.splits import Example, Examples, Split
from bbtkit.tuning.loop import tune
from bbtkit.optim.zo import ZO, VectorParams, gradient_alignment
from bbtkit.methods.zo_sgd import ZOConfig, run_zo

RNG = np.random.default_rng(7)
Q = RNG.standard_normal((6, 6))
A, B = Q @ Q.T / 6 + np.eye(6), RNG.standard_normal(6)


def quadratic(X):
    X = np.atleast_2d(X)
    return 0.5 * np.einsum("pi,ij,pj->p", X, A, X) + X @ B


def grad(x):
    return A @ x + B


@pytest.mark.parametrize("method,extra", [("zo-sgd", {}), ("zo-gv", {}), ("zo-gv", {"form": "code"}),
                                          ("zo-greedy", {})])
def test_each_optimizer_is_deterministic_for_a_seed(method, extra):
    def run(seed):
        opt = ZO(VectorParams(6), method, eps=0.01, lr=0.05, samples=4, seed=seed, **extra)
        for _ in range(30):
            X = opt.ask()
            opt.tell(X, quadratic(X))
        return opt.final()

    np.testing.assert_array_equal(run(1), run(1))
    assert not np.array_equal(run(1), run(2))
    assert quadratic(run(1))[0] < quadratic(np.zeros(6))[0]  # and it descends


def test_the_mean_of_many_zo_sgd_estimates_approaches_the_true_gradient():
    x = np.linspace(-1, 1, 6)
    estimates = []
    for k in range(4000):
        opt = ZO(VectorParams(6, x), "zo-sgd", eps=1e-3, lr=0.0, seed=k)
        X = opt.ask()
        opt.tell(X, quadratic(X))
        estimates.append(opt.estimate())
    g, mean = grad(x), np.mean(estimates, 0)
    # one estimate is far off (cos ~ 0.4 in 6-D); their mean is within 4 standard errors of the truth
    assert np.linalg.norm(mean - g) / np.linalg.norm(g) < 0.15
    assert np.linalg.norm(estimates[0] - g) / np.linalg.norm(g) > 0.3


def test_prior_guided_estimates_align_better_with_the_gradient_as_the_paper_claims():
    x = np.linspace(-1, 1, 6)
    sgd = gradient_alignment(quadratic, grad(x), x, "zo-sgd", draws=200, eps=1e-3)
    gv = gradient_alignment(quadratic, grad(x), x, "zo-gv", draws=200, eps=1e-3, samples=16)
    greedy = gradient_alignment(quadratic, grad(x), x, "zo-greedy", draws=200, eps=1e-3, samples=16)
    assert (sgd >= -1e-9).all() and (gv >= -1e-9).all()  # a two-point step along v always points downhill
    assert gv.mean() > greedy.mean() > sgd.mean()


@pytest.mark.parametrize("method,extra,per_step", [("zo-sgd", {}, 2), ("zo-gv", {"samples": 6}, 8),
                                                   ("zo-gv", {"form": "code"}, 4), ("zo-greedy", {"samples": 3}, 5)])
def test_every_loss_evaluation_is_one_call_and_a_step_costs_what_the_issue_says(method, extra, per_step):
    opt = ZO(VectorParams(6), method, eps=0.01, lr=0.05, seed=0, **extra)
    trace = tune(quadratic, opt, budget=10 * per_step + 1)
    assert opt.calls_per_step == per_step
    assert trace.calls == 10 * per_step and opt.steps == 10 and trace.stop["steps"] == 10


def test_the_code_form_scores_the_best_seed_so_far_again():
    opt = ZO(VectorParams(6), "zo-gv", form="code", eps=0.01, lr=0.05, seed=0)
    X = opt.ask()
    first = list(opt.pending)
    opt.tell(X, [2.0, 1.0])                       # the second seed is better
    assert opt.direction == ((first[1], 1.0), (first[0], -1.0))
    opt.tell(opt.ask(), [0.5, 0.4])               # the two-point step
    opt.ask()
    assert opt.pending[1] == first[1] and opt.pending[0] not in first


def test_paper_form_guide_is_mean_of_best_minus_mean_of_rest():
    opt = ZO(VectorParams(3), "zo-gv", samples=4, top=0.5, seed=0)
    assert opt.guide([10, 11, 12, 13], np.array([3.0, 1.0, 4.0, 2.0])) == (
        (11, 0.5), (13, 0.5), (10, -0.5), (12, -0.5))


def test_momentum_and_bad_settings():
    p = VectorParams(2, momentum=0.5)
    d = ((3, 1.0),)
    p.update(d, 1.0)
    p.update(d, 1.0)
    np.testing.assert_allclose(p.x, -2.5 * p.vector(d))
    with pytest.raises(ValueError, match="one of"):
        ZO(VectorParams(2), "adam")
    with pytest.raises(ValueError, match="form='code'"):
        ZO(VectorParams(2), "zo-sgd", form="code")
    with pytest.raises(ValueError, match="samples"):
        ZO(VectorParams(2), "zo-gv", samples=1)
    with pytest.raises(ValueError, match="ZOConfig: optimizer"):
        ZOConfig(optimizer="sgd")
    with pytest.raises(ValueError, match="ZOConfig: momentum"):
        ZOConfig(momentum=1.5)


@pytest.fixture(scope="module")
def toy_split(toy):
    dev = Examples([Example("fun and good", None, 1), Example("awful", None, 0)], name="dev")
    return Split("sst2", 0, toy, dev, toy)


def small(optimizer="zo-sgd", **kw):
    return dataclasses.replace(ZOConfig.cpu_quick(seed=3, optimizer=optimizer), n_prompt_tokens=2, intrinsic_dim=8,
                               budget=24, eval_every=8, **kw)


def test_run_zo_tunes_bbts_z_at_equal_calls_and_reloads(toy_split, tmp_path):
    lm = bk.tiny_model("llama")
    bbt = bk.run_bbt(lm, "sst2", toy_split, dataclasses.replace(bk.BBTConfig.cpu_quick(seed=3), n_prompt_tokens=2,
                                                                 intrinsic_dim=8, popsize=4, budget=24, eval_every=8),
                     display=False)
    for optimizer in ("zo-sgd", "zo-gv"):
        res = run_zo(lm, "sst2", toy_split, small(optimizer, samples=4), display=False)
        assert res.method == optimizer and res.api_calls == 24 == bbt.api_calls
        assert res.projections == bbt.projections and res.z.shape == bbt.z.shape  # the same space
        assert res.prompt.shape == (2, lm.hidden_size)
        loaded = bk.load_result(res.save(tmp_path / optimizer))
        assert bk.evaluate(lm, "sst2", toy_split.test, loaded.prompt, position=loaded.position) == res.test_metric
    again = run_zo(lm, "sst2", toy_split, small("zo-gv", samples=4), display=False)
    assert again.z.tolist() == res.z.tolist() and again.dev_metric == res.dev_metric


def test_a_stopped_zo_run_resumes_to_the_same_end(toy_split, tmp_path):
    lm = bk.tiny_model("llama")
    whole = run_zo(lm, "sst2", toy_split, small("zo-gv", samples=4), display=False)
    ckpt = tmp_path / "zo.json"
    calls = []

    def stop_after_two(trace):
        calls.append(trace.calls)
        if len(calls) == 2:
            raise KeyboardInterrupt

    part = run_zo(lm, "sst2", toy_split, small("zo-gv", samples=4), display=False, callback=stop_after_two,
                  checkpoint=ckpt)
    assert part.stop.get("interrupted")
    rest = run_zo(lm, "sst2", toy_split, small("zo-gv", samples=4), display=False, checkpoint=ckpt, resume=ckpt)
    assert rest.z.tolist() == whole.z.tolist() and rest.dev_metric == whole.dev_metric


def test_zo_rows_are_registered_leaderboard_methods(tmp_path):
    for name in ("zo_sgd", "zo_gv"):
        assert name in bk.METHODS and name in lb.METHODS
    res = lb.run_entry(bk.tiny_model("llama"), "zo_gv", "sst2", 13, scale=0.01, test_size=16, root=tmp_path)
    assert res.method == "zo_gv" and res.api_calls <= lb.budget("sst2", 0.01)
    assert res.config["optimizer"] == "zo-gv"


def test_the_inline_loop_of_notebook_08_matches_run_zo(toy_split):
    """Notebook 08 writes the ZO loop out by hand: its cell, run as committed on a tiny model, is the loop
    run_zo runs (the same loss at every step, the same calls)."""
    lm, task = bk.tiny_model("llama"), bk.get_task("sst2")
    ns = run_cell("08_zeroth_order.ipynb", "opt.tell(X, losses)", lm=lm, task=task, split=toy_split, BUDGET=20)
    res = run_zo(lm, task, toy_split, ns["cfg"], display=False, evaluate_test=False)
    np.testing.assert_allclose(ns["plain"], [h["best_loss"] for h in res.history[1:]], rtol=1e-6)
    assert len(ns["plain"]) == ns["opt"].steps == 10 and ns["api"].calls == 20


def test_curves_over_seeds_take_the_best_value_so_far_on_a_common_grid():
    from bbtkit.course.plots import so_far

    history = [{"calls": 0, "best_loss": None, "dev_metric": 0.5}, {"calls": 4, "best_loss": 0.9, "dev_metric": None},
               {"calls": 8, "best_loss": 1.2, "dev_metric": 0.7}, {"calls": 12, "best_loss": 0.4, "dev_metric": 0.6}]
    np.testing.assert_array_equal(so_far(history, "best_loss", [0, 4, 10, 12]), [np.nan, 0.9, 0.9, 0.4])
    np.testing.assert_array_equal(so_far(history, "dev_metric", [0, 10, 12], max), [0.5, 0.7, 0.7])


# --- ZO's own budget rule and field checks (issue 29, item 21) -------------------------------------------
def test_zo_needs_a_budget_of_one_step_not_one_cma_generation(toy_split):
    assert ZOConfig(budget=3).budget == 3  # popsize (20) is not ZO's: 2 calls make a ZO-SGD step
    with pytest.raises(ValueError, match=r"ZOConfig: budget \(1\) must cover one step of zo-sgd \(2 calls\); "
                                         "popsize is not used"):
        ZOConfig(budget=1)
    with pytest.raises(ValueError, match=r"budget \(9\) must cover one step of zo-gv \(10 calls\)"):
        ZOConfig(optimizer="zo-gv", budget=9)  # M = 8 samples, then the two points
    assert ZOConfig(optimizer="zo-gv", form="code", budget=4).budget == 4
    cfg = dataclasses.replace(small(), budget=3, eval_every=2)
    res = run_zo(bk.tiny_model("llama"), "sst2", toy_split, cfg, display=False)
    assert res.api_calls == 2 and res.stop["steps"] == 1


ZO_OUT_OF_RANGE = {
    "eps": st.one_of(st.floats(max_value=0), st.sampled_from([math.nan, math.inf])),
    "lr": st.one_of(st.floats(max_value=-1e-9), st.sampled_from([math.nan, math.inf])),
    "samples": st.integers(max_value=1), "top": st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1 + 1e-9)),
    "momentum": st.one_of(st.floats(max_value=-1e-9), st.floats(min_value=1)),
    "weight_decay": st.floats(max_value=-1e-9), "budget": st.integers(max_value=1),
    "optimizer": st.text(max_size=6).filter(lambda t: t not in ("zo-sgd", "zo-gv", "zo-greedy")),
    "form": st.text(max_size=6).filter(lambda t: t not in ("paper", "code")),
}
WRONG_TYPE = {int: st.one_of(st.text(max_size=3), st.booleans(), st.none(),
                             st.floats(allow_nan=False).filter(lambda v: not v.is_integer())),
              float: st.one_of(st.text(max_size=3), st.booleans(), st.none()),
              str: st.one_of(st.integers(), st.floats(), st.none())}


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_random_wrong_or_out_of_range_values_name_the_field(data):
    """Property: any one of ZO's own fields (or the budget) of the wrong type or out of range is a ValueError
    that names it."""
    name = data.draw(st.sampled_from(sorted(ZO_OUT_OF_RANGE)))
    value = data.draw(st.one_of(ZO_OUT_OF_RANGE[name], WRONG_TYPE[type(getattr(ZOConfig(), name))]))
    with pytest.raises(ValueError, match=rf"^ZOConfig: {name}\b"):
        ZOConfig(**{name: value})
