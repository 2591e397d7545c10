"""DFO-LoRA: adapters on W_Q and W_K tuned layer by layer through the API, with CMA-ES or the
Fireworks Algorithm, on tiny models; the result saves, loads and re-evaluates exactly."""
import dataclasses

import numpy as np
import pytest
import torch

import bbtkit as bk
from bbtkit.data import Example, Examples, Split
from bbtkit.dfo_lora import make_space
from bbtkit.projection import normal_std


@pytest.fixture(scope="module")
def split(toy):
    dev = Examples([Example("fun and good", None, 1), Example("awful", None, 0)], name="dev")
    return Split("sst2", 0, toy, dev, toy)


def small(optimizer="cma", **kw):
    return dataclasses.replace(bk.DFOLoRAConfig.cpu_quick(seed=3, optimizer=optimizer),
                               **{"intrinsic_dim": 16, "budget": 90, "eval_every": 30, "layers": None,
                                  "fw_sparks": 10, **kw})


@pytest.mark.parametrize("arch", ["llama", "gpt2", "roberta"])
@pytest.mark.parametrize("optimizer", ["cma", "fireworks"])
def test_a_run_alternates_layers_keeps_its_budget_and_reloads_exactly(arch, optimizer, split, tmp_path):
    lm = bk.tiny_model(arch, layers=2)
    res = bk.run_dfo_lora(lm, "sst2", split, small(optimizer), display=False)
    assert res.method == "dfo_lora" and 0 < res.api_calls <= 90 and res.prompt is None
    assert [row["layer"] for row in res.history[1:5]] == [0, 1, 0, 1]
    assert res.z.shape == (2, 16) and res.extra["targets"] == ["q", "k"]
    loaded = bk.load_result(res.save(tmp_path / "run"))
    for l, per in res.adapters.weights.items():
        for t, (A, B) in per.items():
            assert torch.equal(A, loaded.adapters.weights[l][t][0]) and torch.equal(B, loaded.adapters.weights[l][t][1])
    assert bk.evaluate(lm, "sst2", split.test, adapters=loaded.adapters) == res.test_metric
    assert bk.api.BlackBoxLM(lm, "sst2", split.dev)(adapters=loaded.adapters).logits.shape == (1, 2, 2)


def test_zero_z_is_the_bare_model_and_the_projections_follow_the_models_scale(toy):
    lm = bk.tiny_model("llama", layers=3)
    api = bk.BlackBoxLM(lm, "sst2", toy)
    cfg = small(layers=(-2, -1), alpha=0.5)
    space = make_space(cfg, api, cfg.resolve_layers(3))
    assert space.layers == [1, 2] and len(space.projections) == 8
    torch.testing.assert_close(api(adapters=space.adapters(np.zeros((2, 16)))).logits[0], api().logits[0],
                               atol=1e-5, rtol=0)
    scales = api.value_scales(0, deep=True)
    for i, l in enumerate(space.layers):
        for proj in space.projections[4 * i:4 * i + 4]:   # the paper: all four scaled to what enters layer l
            assert proj.kind == "normal" and proj.std == pytest.approx(normal_std(scales[l], 16, 1.0, 0.5))
    code = make_space(dataclasses.replace(cfg, scaled="A"), api, [0, 2])
    assert [p.kind for p in code.projections] == ["normal"] * 4 + ["normal", "uniform"] * 2  # B unscaled above 0
    a = space.adapters(np.ones((2, 16)))
    assert a.weights[1]["q"][0].shape == (1, 4, lm.hidden_size) and a.weights[2]["k"][1].shape[1] == 16  # 2 kv heads


def test_cpu_quick_adapts_the_top_six_layers_and_bad_settings_say_what_to_do():
    assert bk.DFOLoRAConfig.cpu_quick().resolve_layers(30) == list(range(24, 30))
    assert bk.DFOLoRAConfig.paper().resolve_layers(4) == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="layers 0..3"):
        dataclasses.replace(bk.DFOLoRAConfig.cpu_quick(), layers=(7,)).resolve_layers(4)
    with pytest.raises(ValueError, match="split evenly"):
        bk.DFOLoRAConfig(intrinsic_dim=10)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        bk.DFOLoRAConfig(optimizer="pso")
    assert bk.METHODS["dfo_lora_fw"].preset("sst2", 13).optimizer == "fireworks"


def test_notebook_09s_plain_loop_is_run_dfo_lora(split):
    """The loop notebook 09 shows, written out with the package's pieces, ends where run_dfo_lora does."""
    from bbtkit.dfo_lora import make_optimizer, make_space
    from bbtkit.objectives import Loss

    lm = bk.tiny_model("llama", layers=2)
    cfg = small(budget=41)
    res = bk.run_dfo_lora(lm, "sst2", split, cfg, display=False, evaluate_test=False)

    bk.set_seed(cfg.seed)
    layers = cfg.resolve_layers(lm.num_layers)
    api = bk.BlackBoxLM(lm, "sst2", split.train, budget=cfg.budget, layer_cache=True)
    space, opt, loss = make_space(cfg, api, layers), make_optimizer(cfg, layers), Loss(bk.get_task("sst2"), cfg.loss)
    opt.rescore(loss(api(adapters=space.adapters(opt.start)))[0][0])   # the incumbent: zero adapters
    while api.calls + opt.popsize <= cfg.budget:
        Z = opt.ask()                                    # (pop, layers, d): one layer's row varies
        losses, _ = loss(api(adapters=space.candidates(Z)))
        opt.tell(Z, losses)                              # kept only if the whole model improves
    assert opt.incumbent == res.extra["train_loss"] and api.calls == res.api_calls


def test_fireworks_pictures_and_the_widget_build():
    import matplotlib
    matplotlib.use("Agg")
    from bbtkit import fireworks, plots
    from bbtkit.cmaes import rosenbrock

    frames = fireworks.record(rosenbrock, dim=2, generations=3, bound=2.5, sparks=20, seed=0)
    assert len(frames) == 3 and all(len(f["sparks"]) == len(f["parent"]) for f in frames)
    assert frames[-1]["best"] <= frames[0]["best"]
    plots.fireworks_frame(frames[0], rosenbrock)
