"""bbtkit.tuning.spaces: what an optimizer's vectors mean to the API, each space checked against its definition."""
import numpy as np
import pytest
import torch

from bbtkit.tuning.projection import Projection
from bbtkit.tuning.spaces import DeepPrompt, InstancePrompt, LoRASpace, ShallowPrompt, WeightedPrompt, relevance

N, H, D = 2, 3, 4


def proj(seed, out=N * H, d=D):
    return Projection(d=d, out_dim=out, seed=seed, kind="normal", std=0.5)


def test_a_shallow_prompt_is_A_z_reshaped_and_zero_is_the_manual_prompt():
    space = ShallowPrompt(proj(0), N, H)
    X = np.random.default_rng(0).normal(size=(3, D))
    cands = space.candidates(X)
    assert cands.shape == (3, N, H) and space.dim == D and space.layers == [0]
    for x, c in zip(X, cands):
        assert torch.allclose(space.prompt(x), c)
        assert torch.allclose(c.reshape(-1), proj(0)(x))
    assert not space.prompt(np.zeros(D)).any()
    with pytest.raises(ValueError, match="needs 6"):
        ShallowPrompt(proj(0, out=5), N, H)


def test_a_deep_prompt_fills_its_layers_and_leaves_the_others_at_zero():
    layers, L = [0, 2], 4
    space = DeepPrompt([proj(1), proj(2)], layers, L, N, H)
    rng = np.random.default_rng(1)
    Z = rng.normal(size=(3, 2, D))
    Z[:, 0] = Z[0, 0]  # one block shared by the population (projected once), the other varies
    out = space.candidates(Z)
    assert out.shape == (3, L, N, H) and not out[:, [1, 3]].any()
    for i in range(3):
        assert torch.allclose(out[i, 0].reshape(-1), proj(1)(Z[i, 0]), atol=1e-6)
        assert torch.allclose(out[i, 2].reshape(-1), proj(2)(Z[i, 1]), atol=1e-6)
        assert torch.allclose(space.prompt(Z[i]), out[i])
    assert not space.candidates(np.zeros((2, 2, D))).any()
    with pytest.raises(ValueError, match="One projection per prompted layer"):
        DeepPrompt([proj(1)], layers, L, N, H)


def test_a_lora_space_maps_each_part_of_z_to_its_matrix():
    shapes, rank, layers = {"q": (3, 5), "k": (3, 2)}, 2, [1]
    projs = [Projection(d=2, out_dim=rank * n, seed=s) for s, n in enumerate((3, 5, 3, 2))]
    space = LoRASpace(projs, layers, rank, shapes, num_layers=2, hidden=3)
    assert space.dim == 8
    z = np.arange(8, dtype=float)[None, None] / 8  # (pop 1, blocks 1, d)
    w = space.candidates(z).weights[1]
    for k, (t, (d_in, d_out)) in enumerate(shapes.items()):
        A, B = w[t]
        assert A.shape == (1, rank, d_in) and B.shape == (1, d_out, rank)
        assert torch.allclose(A.reshape(-1), projs[2 * k](z[0, 0, 4 * k:4 * k + 2]))
        assert torch.allclose(B.reshape(-1), projs[2 * k + 1](z[0, 0, 4 * k + 2:4 * k + 4]))
    zero = space.adapters(np.zeros((1, 8))).weights[1]
    assert all(not A.any() and not B.any() for A, B in zero.values())  # z = 0: the bare model
    with pytest.raises(ValueError, match="not a rank-2 matrix of A"):
        LoRASpace([Projection(d=2, out_dim=7, seed=0)] + projs[1:], layers, rank, shapes, 2, 3)


def test_relevance_is_the_sigmoid_of_the_scaled_mean_query_key_product():
    g = torch.Generator().manual_seed(0)
    P, Wq, Wk = torch.randn(1, N, H, generator=g), torch.randn(1, 2, H, generator=g), torch.randn(1, 2, H, generator=g)
    bq, bk, feats = torch.randn(1, 2, generator=g), torch.randn(1, 2, generator=g), torch.randn(5, H, generator=g)
    w = relevance(P, Wq, bq, Wk, bk, feats)
    q, k = P[0] @ Wq[0].T + bq[0], feats @ Wk[0].T + bk[0]  # (n, h), (examples, h)
    assert torch.allclose(w[0], torch.sigmoid(k @ q.T / 2 ** 0.5), atol=1e-6)


def test_a_weighted_prompt_goes_to_flat_numbers_and_back():
    g = torch.Generator().manual_seed(1)
    wp = WeightedPrompt(torch.randn(N, H, generator=g), torch.randn(2, H, generator=g), torch.randn(2, generator=g),
                        torch.randn(2, H, generator=g), torch.randn(2, generator=g))
    again = WeightedPrompt.from_flat(wp.flat(), N, H, 2)
    feats = torch.randn(4, H, generator=g)
    assert torch.equal(again.prompts(feats), wp.prompts(feats)) and again.shape == (N, H)
    assert torch.allclose(wp.prompts(feats), wp.weights(feats)[..., None] * wp.P)
    with pytest.raises(ValueError, match="has 22 numbers, got 21"):
        WeightedPrompt.from_flat(wp.flat()[:-1], N, H, 2)


def test_an_instance_prompt_centres_its_keys_and_its_prompt_is_its_candidate():
    head = 2
    space = InstancePrompt([proj(3), proj(4, out=head * H), proj(5, out=head * H)], N, H, head, center=[0.1, -0.2, 0.3])
    X = np.random.default_rng(2).normal(size=(2, space.dim))
    feats = torch.tensor([[0.1, -0.2, 0.3], [1.0, 0.0, -1.0]])
    cands = space.candidates(X, feats)
    assert cands.shape == (2, 2, N, H)
    for i in range(2):
        assert torch.allclose(space.prompt(X[i]).prompts(feats), cands[i], atol=1e-6)
    w = space.prompt(X[0]).weights(feats)
    assert torch.allclose(w[0], torch.full((N,), 0.5))  # at the centre every key is zero: sigmoid(0)
    assert not space.candidates(np.zeros((1, space.dim)), feats).any()
