"""bbtkit.tuning.projection: A is a fixed, seeded, linear map with the scale the papers give it."""
import math

import numpy as np
import pytest
import torch

from bbtkit.tuning.projection import Projection, normal_std


def test_a_seed_rebuilds_the_same_matrix_and_another_seed_another():
    a = Projection(d=20, out_dim=30, seed=7, kind="normal", std=0.3)
    assert torch.equal(a.matrix(), Projection(d=20, out_dim=30, seed=7, kind="normal", std=0.3).matrix())
    assert not torch.equal(a.matrix(), Projection(d=20, out_dim=30, seed=8, kind="normal", std=0.3).matrix())
    assert a.matrix().shape == (30, 20) and a.matrix().dtype == torch.float32


def test_the_map_is_linear_and_takes_one_vector_or_a_population():
    p = Projection(d=5, out_dim=12, seed=1)
    rng = np.random.default_rng(0)
    z1, z2 = rng.normal(size=5), rng.normal(size=5)
    np.testing.assert_allclose(p(2 * z1 - 3 * z2).numpy(), (2 * p(z1) - 3 * p(z2)).numpy(), atol=1e-5)
    pop = p(np.stack([z1, z2]))
    assert pop.shape == (2, 12)
    np.testing.assert_allclose(pop[1].numpy(), p(z2).numpy(), atol=1e-6)
    np.testing.assert_allclose(p(z1).numpy(), (p.matrix() @ torch.tensor(z1, dtype=torch.float32)).numpy(), atol=1e-5)
    assert not p(np.zeros(5)).any()  # z = 0 is p0: the manual prompt


def test_uniform_entries_lie_within_one_over_sqrt_d():
    a = Projection(d=100, out_dim=400, seed=3).matrix()
    assert a.abs().max() <= 1 / math.sqrt(100) and a.abs().max() > 0.9 / math.sqrt(100)
    assert abs(a.mean().item()) < 0.005


def test_the_normal_projection_puts_prompts_on_the_models_scale():
    """With std = alpha sigma_hat / (sqrt(d) sigma) and z ~ N(0, sigma^2 I), A z has entries of std alpha sigma_hat."""
    d, sigma, sigma_hat, alpha = 200, 0.7, 0.05, 2.0
    p = Projection(d=d, out_dim=2000, seed=5, kind="normal", std=normal_std(sigma_hat, d, sigma, alpha))
    z = np.random.default_rng(1).normal(0, sigma, (64, d))
    assert p(z).std().item() == pytest.approx(alpha * sigma_hat, rel=0.03)


@pytest.mark.parametrize("kw,match", [(dict(kind="gaussian"), "kind must be one of"),
                                      (dict(d=0), "sizes must be positive"), (dict(out_dim=-1), "sizes must be positive")])
def test_bad_arguments_say_what_is_wrong(kw, match):
    with pytest.raises(ValueError, match=match):
        Projection(**{**dict(d=4, out_dim=8, seed=0), **kw})
