"""bbtkit.optim.optimizers: the ask/tell seam's CMA-ES and its layer-by-layer wrapper, on plain functions."""
import numpy as np
import pytest

from bbtkit.optim.optimizers import CMA, Layerwise, LayerwiseCMA, cma_options


def sphere(X):
    return (np.asarray(X) ** 2).reshape(len(X), -1).sum(1)


def test_cma_minimises_a_sphere_and_is_the_same_given_its_seed():
    def run(seed):
        opt = CMA(5, sigma0=1.0, popsize=8, seed=seed, x0=np.full(5, 2.0))
        for _ in range(60):
            X = opt.ask()
            opt.tell(X, sphere(X))
        return opt
    a, b = run(3), run(3)
    assert np.array_equal(a.final(), b.final()) and not np.array_equal(a.final(), run(4).final())
    assert sphere(a.final()[None])[0] < 1e-3 < sphere(np.full((1, 5), 2.0))[0]
    assert np.array_equal(a.start, np.full(5, 2.0)) and a.popsize == 8


def test_cma_puts_forward_its_generations_best_and_keeps_within_its_bound():
    opt = CMA(3, sigma0=5.0, popsize=6, seed=0, bound=1.0)
    X = opt.ask()
    losses = sphere(X)
    opt.tell(X, losses)
    assert np.array_equal(opt.selected, X[np.argmin(losses)])
    assert np.abs(X).max() <= 1.0
    assert opt.info()["sigma"] != opt.start_info()["sigma"] == 5.0


def test_cma_options_shift_the_seed_so_that_zero_is_reproducible():
    assert cma_options(10, 0)["seed"] == 1 and "bounds" not in cma_options(10, 0)
    assert cma_options(10, 0, bound=2)["bounds"] == [-2.0, 2.0]


def test_layerwise_keeps_a_blocks_sample_only_if_the_whole_point_improves():
    opt = LayerwiseCMA(blocks=3, dim=2, sigma0=0.5, popsize=4, seeds=[0, 1, 2], names=[0, 5, 9])
    shift = np.array([[1.0, 1.0], [0.0, 0.0], [-1.0, 2.0]])
    f = lambda cand: sphere(cand - shift)  # noqa: E731
    opt.rescore(f(opt.Z[None])[0])
    seen = []
    for _ in range(12):  # four rounds over three blocks, bottom to top
        before = opt.Z.copy()
        cand = opt.ask()
        active = opt.active
        assert np.array_equal(np.delete(cand, active, axis=1), np.repeat(np.delete(before, active, 0)[None], 4, 0))
        losses = f(cand)
        opt.tell(cand, losses)
        kept = losses.min() < f(before[None])[0]
        assert np.array_equal(opt.Z[active], cand[np.argmin(losses), active] if kept else before[active])
        assert opt.incumbent == pytest.approx(f(opt.Z[None])[0])
        seen.append((opt.info()["layer"], opt.info()["round"]))
    assert seen[:4] == [(0, 1), (5, 1), (9, 1), (0, 2)] and opt.round == 4
    assert opt.incumbent < f(np.zeros((1, 3, 2)))[0]


def test_layerwise_refuses_blocks_of_different_sizes_and_missing_seeds():
    with pytest.raises(ValueError, match="one dimension for all"):
        Layerwise([CMA(2), CMA(3)])
    with pytest.raises(ValueError, match="one seed per block"):
        LayerwiseCMA(blocks=2, dim=2, sigma0=1.0, popsize=4, seeds=[0])
