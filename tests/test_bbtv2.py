"""BBTv2 on tiny random models: deep-prompt locality, the layer cache, projections, runs."""
import dataclasses

import numpy as np
import pytest
import torch

import bbtkit as bk
from notebook_cells import Spy, run_cell
from bbtkit.model import inject
from bbtkit.model.scales import clipped_std, layer_scales
from bbtkit.data.splits import Example, Examples, Split

ATOL = 1e-5
# (architecture, prompt position): both families, the cached-context path and the full path
PATHS = [("roberta", "before"), ("bert", "before"), ("llama", "after"), ("llama", "before"), ("gpt2", "after")]


@pytest.fixture(scope="module")
def toy_split(toy):
    dev = Examples([Example("fun and good", None, 1), Example("awful", None, 0)], name="dev")
    return Split("sst2", 0, toy, dev, toy)


def tiny_cfg(**kw):
    small = dict(n_prompt_tokens=2, intrinsic_dim=8, popsize=4, budget=41, eval_every=8)
    return dataclasses.replace(bk.BBTv2Config.cpu_quick(seed=3), **{**small, **kw})


@pytest.mark.parametrize("arch,position", PATHS)
def test_deep_prompt_at_layer_l_changes_nothing_below_l(arch, position, toy):
    lm = bk.tiny_model(arch, layers=4)
    api = bk.BlackBoxLM(lm, "sst2", toy, position=position)
    deep = torch.zeros(1, 4, 2, lm.hidden_size)
    fw = api.forward_for(2)
    seen = []
    for prompt_at_2 in (0.0, 1.0):
        deep[:, 2] = prompt_at_2
        with inject.capture_inputs(lm, range(4)) as inputs:
            fw.run(None, deep.clone(), 1)
        seen.append(inputs)
    for l in (0, 1, 2):  # what enters layer 2 is recorded before its own prompt is added
        torch.testing.assert_close(seen[0][l], seen[1][l], atol=0, rtol=0)
    assert (seen[0][3] - seen[1][3]).abs().max() > 1e-3


@pytest.mark.parametrize("arch,position", PATHS)
def test_deep_prompt_cache_matches_full_forward(arch, position, toy):
    lm = bk.tiny_model(arch, layers=4)
    torch.manual_seed(0)
    incumbent = 0.5 * torch.randn(4, 2, lm.hidden_size)
    for layer in range(4):
        cand = incumbent.expand(3, -1, -1, -1).clone()
        cand[:, layer:] = 0.5 * torch.randn(3, 4 - layer, 2, lm.hidden_size)  # candidates differ from layer up
        full = bk.BlackBoxLM(lm, "sst2", toy, position=position)(cand, return_hidden=True)
        api = bk.BlackBoxLM(lm, "sst2", toy, position=position)
        api.cache_below(layer, incumbent)
        cached = api(cand, return_hidden=True)
        assert api.forward_for(2)._cached_start(cand.to(lm.dtype))[0] == layer  # the cache was really used
        torch.testing.assert_close(cached.logits, full.logits, atol=ATOL, rtol=0)
        torch.testing.assert_close(cached.hidden, full.hidden, atol=ATOL, rtol=0)
    assert inject.count_hooks(lm) == 0


def test_cache_moves_up_one_layer_at_a_time_and_falls_back_when_lower_prompts_differ(toy):
    lm = bk.tiny_model("llama", layers=4)
    torch.manual_seed(1)
    incumbent = 0.5 * torch.randn(4, 2, lm.hidden_size)
    api = bk.BlackBoxLM(lm, "sst2", toy, position="after")
    api.cache_below(1, incumbent)
    api.cache_below(3, incumbent)  # from the state at layer 1: runs layers 1 and 2 only
    fresh = bk.BlackBoxLM(lm, "sst2", toy, position="after")
    fresh.cache_below(3, incumbent)  # from scratch
    torch.testing.assert_close(api.forward_for(2).layer_cache[-1], fresh.forward_for(2).layer_cache[-1], atol=ATOL, rtol=0)
    other = incumbent.clone()
    other[0] += 1.0  # disagrees below the cached layer: must not use the cache
    ref = bk.BlackBoxLM(lm, "sst2", toy, position="after")(other[None])
    torch.testing.assert_close(api(other[None]).logits, ref.logits, atol=0, rtol=0)
    with pytest.raises(ValueError, match="deep prompt of shape"):
        api.cache_below(2, incumbent[0])


def test_the_layer_cache_finds_the_lowest_layer_where_candidates_differ(toy):
    lm = bk.tiny_model("llama", layers=4)
    torch.manual_seed(2)
    cand = (0.5 * torch.randn(4, 2, lm.hidden_size)).expand(3, -1, -1, -1).clone()
    cand[:, 2] += 0.1 * torch.randn(3, 2, lm.hidden_size)  # the population differs at layer 2 only
    auto = bk.BlackBoxLM(lm, "sst2", toy, position="after", layer_cache=True)
    out = auto(cand)
    assert auto.forward_for(2).layer_cache[0] == 2 and auto.cache_seconds > 0
    plain = bk.BlackBoxLM(lm, "sst2", toy, position="after")(cand)
    torch.testing.assert_close(out.logits, plain.logits, atol=ATOL, rtol=0)
    assert auto.calls == 3  # filling the cache is not an API call


def test_clipped_std_ignores_outliers():
    x = torch.randn(100_000, generator=torch.Generator().manual_seed(0))
    spiky = torch.cat([x, torch.full((50,), 1e4)])
    assert spiky.std() > 50
    assert abs(clipped_std(spiky) - clipped_std(x)) < 0.02 and abs(clipped_std(x) - 1.0) < 0.05


def test_per_layer_projection_statistics_match_the_formula(toy):
    lm = bk.tiny_model("llama", layers=4)
    cfg = dataclasses.replace(tiny_cfg(), intrinsic_dim=50, sigma=0.5, alpha=0.3)
    scales = layer_scales(lm, "sst2", toy, 2, "after")
    assert scales[0] == pytest.approx(lm.embeddings.weight.std().item(), rel=1e-5)
    assert len(scales) == 4 and np.all(scales > 0) and len(set(np.round(scales, 6))) == 4
    for layer, sigma_hat in enumerate(scales):
        proj = bk.methods.bbt.make_projection(cfg, lm, 20_000, float(sigma_hat), layer)
        expected = cfg.alpha * sigma_hat / (np.sqrt(cfg.intrinsic_dim) * cfg.sigma)
        assert proj.matrix().std().item() == pytest.approx(expected, rel=0.02)
        # A z with z ~ N(0, sigma^2 I) has entries of std alpha * sigma_hat: the model's own scale
        z = cfg.sigma * torch.randn(200, cfg.intrinsic_dim, generator=torch.Generator().manual_seed(layer))
        assert proj(z.numpy()).std().item() == pytest.approx(cfg.alpha * sigma_hat, rel=0.05)


@pytest.mark.parametrize("arch", ["llama", "roberta"])
def test_seeded_bbtv2_run_is_reproducible_and_within_budget(arch, toy_split):
    lm = bk.tiny_model(arch, layers=3)
    runs = [bk.run_bbtv2(lm, "sst2", toy_split, tiny_cfg(), display=False) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].z, runs[1].z)
    assert [h["best_loss"] for h in runs[0].history] == [h["best_loss"] for h in runs[1].history]
    assert runs[0].api_calls <= 41 and runs[0].z.shape == (3, 8)
    layers = [h["layer"] for h in runs[0].history[1:]]
    assert layers[:6] == [0, 1, 2, 0, 1, 2]  # rounds go bottom to top, one generation per layer
    incumbent = [h["incumbent_loss"] for h in runs[0].history]
    assert all(b <= a for a, b in zip(incumbent, incumbent[1:]))  # the kept prompt never gets worse


def test_layer_cache_changes_no_result(toy_split):
    lm = bk.tiny_model("llama", layers=3)
    on, *offs = (bk.run_bbtv2(lm, "sst2", toy_split, tiny_cfg(cache=c), display=False)
                 for c in ("layers", "context", "none"))
    for off in offs:
        np.testing.assert_allclose(on.z, off.z, atol=1e-6)
        np.testing.assert_allclose([h["best_loss"] for h in on.history], [h["best_loss"] for h in off.history],
                                   atol=1e-5)
    assert on.extra["cache_seconds"] > 0 and offs[0].extra["cache_seconds"] == 0


def test_bbtv2_save_load_evaluate_gives_the_identical_metric(toy_split, tmp_path):
    lm = bk.tiny_model("gpt2", layers=3)
    res = bk.run_bbtv2(lm, "sst2", toy_split, tiny_cfg(layers=(1, 2)), display=False)
    loaded = bk.load_result(res.save(tmp_path / "run"))
    assert loaded.prompt.shape == (3, 2, lm.hidden_size) and torch.equal(loaded.prompt, res.prompt)
    assert not loaded.prompt[0].any()  # layer 0 was not tuned
    assert bk.evaluate(lm, "sst2", toy_split.test, loaded.prompt, position=loaded.position) == res.test_metric
    assert loaded.layers == [1, 2] and loaded.method == "bbtv2"


@pytest.mark.parametrize("kw,message", [
    (dict(layers=()), "distinct layer indices"),
    (dict(layers=(1, 1)), "distinct layer indices"),
    (dict(budget=0), "budget of zero"),
    (dict(sigma=0), "sigma must be positive"),
    (dict(cache="all"), "cache must be one of"),
])
def test_bbtv2_config_validation_messages(kw, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(bk.BBTv2Config.cpu_quick(), **kw)


def test_bbtv2_presets_and_errors(toy_split):
    paper = bk.BBTv2Config.paper()
    assert (paper.n_prompt_tokens, paper.intrinsic_dim, paper.popsize, paper.budget) == (50, 500, 20, 8000)
    assert (paper.sigma, paper.alpha, paper.projection) == (0.2, 0.2, "normal")
    assert bk.BBTv2Config.cpu_quick().budget == bk.BBTConfig.cpu_quick().budget  # equal budgets to compare
    lm = bk.tiny_model("llama", layers=3)
    with pytest.raises(ValueError, match="has layers 0..2"):
        bk.run_bbtv2(lm, "sst2", toy_split, tiny_cfg(layers=(5,)), display=False)
    with pytest.raises(TypeError, match="BBTv2Config"):
        bk.run_bbtv2(lm, "sst2", toy_split, bk.BBTConfig.cpu_quick(), display=False)


def test_the_inline_loop_of_notebook_04_matches_run_bbtv2(toy_split):
    """Notebook 04 section 3 writes one round of BBTv2 by hand: its cell, run as committed on a tiny model,
    is run_bbtv2's first round (each layer's best loss and the kept prompt's loss, the same calls)."""
    from bbtkit.methods.bbt import candidate_losses

    lm, task = bk.tiny_model("llama", layers=3), bk.get_task("sst2")
    L, cfg = lm.num_layers, tiny_cfg()
    n, H = cfg.n_prompt_tokens, lm.hidden_size
    scales = layer_scales(lm, task, toy_split.train, n, "after")
    spy = Spy(candidate_losses)
    ns = run_cell("04_bbtv2_deep_prompts.ipynb", "strategies[l].tell(", lm=lm, task=task, split=toy_split, cfg=cfg,
                  L=L, n=n, H=H, scales=scales, SMOKE=False, candidate_losses=spy)
    res = bk.run_bbtv2(lm, task, toy_split, tiny_cfg(budget=1 + L * cfg.popsize), display=False, evaluate_test=False)
    round1 = [h for h in res.history if h["round"] == 1]
    np.testing.assert_allclose([losses.min() for losses, _ in spy.returns[1:]], [h["best_loss"] for h in round1],
                               rtol=0, atol=1e-6)
    np.testing.assert_allclose(ns["kept"], round1[-1]["incumbent_loss"], rtol=0, atol=1e-6)
    assert ns["api"].calls == res.api_calls == 1 + L * cfg.popsize


def test_a_budget_short_of_one_round_warns_and_the_result_keeps_the_note(toy_split, tmp_path):
    import warnings

    from bbtkit.guards import PartialRoundWarning

    lm = bk.tiny_model("llama", layers=2)
    cfg = tiny_cfg(popsize=10, budget=11, eval_every=100)
    with pytest.warns(PartialRoundWarning, match=r"bottom 1 of its 2 layers .* at least 21, or prompt fewer layers"):
        res = bk.run_bbtv2(lm, "sst2", toy_split, cfg, display=False, evaluate_test=False)
    assert {h["layer"] for h in res.history} == {None, 0}  # the top layer was never tuned
    assert "at least 21" in res.extra["notes"][0]
    assert bk.load_result(res.save(tmp_path / "short")).extra["notes"] == res.extra["notes"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", PartialRoundWarning)
        full = bk.run_bbtv2(lm, "sst2", toy_split, dataclasses.replace(cfg, budget=21), display=False,
                            evaluate_test=False)
    assert "notes" not in full.extra and {h["layer"] for h in full.history} == {None, 0, 1}


def test_round_note_suggests_layers_whose_round_fits():
    from bbtkit.methods.bbtv2 import round_calls, round_note

    cfg = dataclasses.replace(bk.BBTv2Config.cpu_quick(), budget=100)
    note = round_note(cfg, 30)
    assert "bottom 9 of its 30 layers" in note and "at least 301" in note and "range(0, 30, 4)" in note
    assert round_calls(cfg, len(range(0, 30, 4))) <= 100
    assert round_note(dataclasses.replace(cfg, budget=301), 30) is None
    assert round_note(bk.BBTConfig.cpu_quick(), 30) is None  # no layer rounds, nothing to say
