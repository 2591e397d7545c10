"""The Fireworks Algorithm (Tan & Zhu, 2010) behind the ask/tell seam: its two formulas by hand, its
sparks in bounds, better than random search at equal evaluations, deterministic (so the loop can
replay it), and layer by layer exactly as CMA-ES."""
import numpy as np
import pytest

from bbtkit.course.cmaes import rosenbrock, sphere
from bbtkit.optim.fireworks import PAPER, Fireworks
from bbtkit.tuning.loop import tune
from bbtkit.optim.optimizers import Layerwise

SHIFT = np.random.default_rng(99).uniform(-3, 3, 10)  # the optimum is not the start (0), where sparks begin
FUNCTIONS = {"sphere": lambda x: sphere(x - SHIFT), "rosenbrock": lambda x: rosenbrock(x - SHIFT + 1)}


def test_spark_counts_and_amplitudes_follow_the_papers_formulas():
    fw = Fireworks(4, bound=100, fireworks=3, sparks=10, a=0.04, b=0.8, amplitude=40)
    y = np.array([1.0, 2.0, 3.0])
    # s_i = m (y_max - y_i + eps) / sum(...) = 10 * (2, 1, 0) / 3, rounded, within [round(0.4), round(8)] = [0, 8]
    assert fw.spark_counts(y).tolist() == [7, 3, 0]
    assert fw.spark_counts(np.array([0.0, 10.0, 10.0])).tolist() == [8, 0, 0]   # capped at b m
    # A_i = A_hat (y_i - y_min + eps) / sum(...) = 40 * (0, 1, 2) / 3: the best explodes least
    np.testing.assert_allclose(fw.amplitudes(y), [0.0, 40 / 3, 80 / 3], atol=1e-9)
    assert Fireworks(4, min_amplitude=0.5).amplitudes(y)[0] == 0.5                # EFWA's floor
    assert PAPER == dict(fireworks=5, sparks=50, a=0.04, b=0.8, amplitude=40.0, gaussian=5)


def test_first_the_fireworks_then_as_many_sparks_as_planned_all_in_bounds():
    fw = Fireworks(6, bound=2.0, seed=3, x0=np.full(6, 0.5))
    X = fw.ask()
    assert X.shape == (5, 6) and np.array_equal(X[0], np.full(6, 0.5))      # firework 0 starts at x0
    f = lambda x: sphere(x - 1)  # noqa: E731
    for _ in range(5):
        fw.tell(X, [f(x) for x in X])
        planned = fw.popsize
        X = fw.ask()
        assert len(X) == planned == fw.plan.sum() + 5
        assert np.all(np.abs(X) <= 2.0)


def test_selection_keeps_the_best_location():
    fw = Fireworks(3, seed=0)
    f = lambda x: sphere(x - 1)  # noqa: E731
    X = fw.ask()
    fw.tell(X, [f(x) for x in X])
    for _ in range(10):
        X = fw.ask()
        best_before = fw.y[0]
        losses = [f(x) for x in X]
        fw.tell(X, losses)
        assert fw.y[0] == min(best_before, min(losses)) and f(fw.selected) == fw.y[0]


def _run(opt, f, budget):
    used, best = 0, np.inf
    while used + opt.popsize <= budget:
        X = opt.ask()
        y = np.array([f(x) for x in X])
        opt.tell(X, y)
        used, best = used + len(X), min(best, y.min())
    return best, used


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fireworks_beat_random_search_at_equal_evaluations(name, seed):
    f = FUNCTIONS[name]
    best, used = _run(Fireworks(10, bound=5, seed=seed), f, budget=3000)
    rs = min(f(x) for x in np.random.default_rng(seed).uniform(-5, 5, (used, 10)))
    assert best < 0.5 * rs, (best, rs)
    assert best < 0.5 * f(np.zeros(10))  # and moved well away from the start


def test_the_same_seed_and_losses_give_the_same_run():
    a, b = (_run(Fireworks(5, seed=7), lambda x: sphere(x - 1), 400) for _ in range(2))
    assert a == b


def test_the_tuning_loop_runs_fireworks_within_its_budget():
    f = FUNCTIONS["sphere"]
    trace = tune(lambda X: np.array([f(x) for x in X]), Fireworks(10, bound=5, seed=0), budget=500)
    assert 0 < trace.calls <= 500 and trace.best_loss < f(np.zeros(10))
    assert {"fireworks_best", "max_amplitude"} <= set(trace.history[-1])


def test_layer_by_layer_alternation_works_with_fireworks_as_with_cma():
    """Three blocks of 4 coordinates; each block's optimizer sees only its own row, and a row is kept
    only when the whole point improves."""
    target = np.arange(12.0).reshape(3, 4) / 6 - 1

    def loss(X):
        return np.array([np.sum((x - target) ** 2) for x in X])
    # with EFWA's amplitude floor: in the original the best firework's sparks land on itself, and ten
    # generations per block leave it near its start (3.46 of 4.06 here; 0.09 with the floor)
    opt = Layerwise([Fireworks(4, bound=3, seed=s, min_amplitude=0.1) for s in range(3)], names=[2, 5, 9])
    trace = tune(loss, opt, budget=1500)
    layers = [row["layer"] for row in trace.history[1:]]
    assert layers[:6] == [2, 5, 9, 2, 5, 9] and trace.history[-1]["round"] >= 2
    assert loss(opt.final()[None])[0] == opt.incumbent < 0.1 * loss(np.zeros((1, 3, 4)))[0]
