"""DFO-LoRA: adapters on W_Q and W_K tuned layer by layer through the API, with CMA-ES or the
Fireworks Algorithm, on tiny models; the result saves, loads and re-evaluates exactly."""
import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

import bbtkit as bk
from notebook_cells import run_cell
from bbtkit.data.splits import Example, Examples, Split
from bbtkit.methods.dfo_lora import make_space
from bbtkit.tuning.projection import normal_std


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
    assert bk.api.blackbox.BlackBoxLM(lm, "sst2", split.dev)(adapters=loaded.adapters).logits.shape == (1, 2, 2)


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
    """The loop notebook 09 shows, its cell run as committed on a tiny model, ends where run_dfo_lora does."""
    lm, task = bk.tiny_model("llama", layers=6), bk.get_task("sst2")  # cpu_quick tunes the top 6 layers
    ns = run_cell("09_dfo_lora.ipynb", "opt.tell(Z, losses)", lm=lm, task=task, split=split, BUDGET=20)
    res = bk.run_dfo_lora(lm, task, split, ns["cfg"], display=False, evaluate_test=False)
    assert ns["opt"].incumbent == res.extra["train_loss"]
    assert ns["api"].calls == res.api_calls + 1  # the cell's last line scores zero adapters once more


def test_fireworks_pictures_and_the_widget_build():
    import matplotlib
    matplotlib.use("Agg")
    from bbtkit.optim import fireworks
    from bbtkit.course import plots
    from bbtkit.course.cmaes import rosenbrock

    frames = fireworks.record(rosenbrock, dim=2, generations=3, bound=2.5, sparks=20, seed=0)
    assert len(frames) == 3 and all(len(f["sparks"]) == len(f["parent"]) for f in frames)
    assert frames[-1]["best"] <= frames[0]["best"]
    plots.fireworks_frame(frames[0], rosenbrock)


# --- bad settings say what to do (issue 29, items 10 and 20) ----------------------------------------
@pytest.mark.parametrize("bad,message", [
    ({"layers": (0.7,)}, r"layers\[0\] must be an int"),
    ({"layers": (0, 0)}, "layers must name at least one layer, each once"),
    ({"layers": 0}, "layers must be a tuple"),
    ({"budget": 2}, r"budget \(2\) must cover the starting adapters' call and one generation .* at least 21"),
    ({"budget": 5, "optimizer": "fireworks"}, r"budget \(5\) .*\(5 calls with optimizer='fireworks'\), at least 6"),
    ({"intrinsic_dim": 0}, "intrinsic_dim must be positive"),
    ({"intrinsic_dim": -4}, "intrinsic_dim must be positive"),
    ({"bound": -1}, "bound must be positive"),
    ({"targets": ("q", "q")}, "targets must name different projections"),
    ({"targets": "qk"}, "targets must be a tuple"),
])
def test_bad_fields_are_refused_with_the_field_named(bad, message):
    with pytest.raises(ValueError, match="DFOLoRAConfig: " + message):
        bk.DFOLoRAConfig(**bad)


def test_layers_that_name_one_layer_twice_on_this_model_are_refused_when_the_run_starts(split):
    lm = bk.tiny_model("llama", layers=2)
    cfg = small(layers=(0, -2))  # 0 and -2 are both layer 0 of a 2-layer model
    with pytest.raises(ValueError, match=r"\(0, -2\) name the same layer twice on a model of 2 layers"):
        bk.run_dfo_lora(lm, "sst2", split, cfg, display=False)
    assert small(layers=(0, -1)).resolve_layers(2) == [0, 1]


_NAN = st.sampled_from([float("nan"), float("inf"), -float("inf")])
_WRONG = {int: st.one_of(st.text(max_size=3), st.booleans(), st.none(),
                         st.floats(allow_nan=False).filter(lambda v: not v.is_integer())),
          float: st.one_of(st.text(max_size=3), st.booleans(), st.none(), _NAN),
          str: st.one_of(st.integers(), st.floats(), st.none()),
          tuple: st.one_of(st.integers(), st.floats(allow_nan=False), st.text(min_size=1, max_size=3))}
DFO_OUT_OF_RANGE = {
    "rank": st.integers(max_value=0), "intrinsic_dim": st.integers(max_value=0), "popsize": st.integers(max_value=1),
    "sigma": st.floats(max_value=0), "alpha": st.floats(max_value=0), "bound": st.floats(max_value=0),
    "fw_bound": st.floats(max_value=0), "fw_fireworks": st.integers(max_value=0), "fw_sparks": st.integers(max_value=0),
    "fw_gaussian": st.integers(max_value=-1), "fw_min_amplitude": st.floats(max_value=-1e-9),
    "budget": st.integers(max_value=20), "eval_every": st.integers(max_value=0), "seed": st.integers(max_value=-1),
    "optimizer": st.text(max_size=5), "scaled": st.text(max_size=5), "loss": st.text(max_size=5),
    "cache": st.text(max_size=5), "prompt_position": st.text(max_size=5),
    "layers": st.one_of(st.just(()), st.lists(st.integers(-3, 3), min_size=2).filter(lambda l: len(set(l)) < len(l))),
    "targets": st.one_of(st.just(()), st.lists(st.sampled_from("qkvo"), min_size=1).filter(
        lambda t: "o" in t or len(set(t)) < len(t))),
}


def _kind(cls, name):
    """The plain type of a field, read from its default (tuple for layers and targets; bound is a float)."""
    value = getattr(cls(), name)
    return tuple if name in ("layers", "targets") else type(value) if value is not None else float


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_random_wrong_or_out_of_range_values_name_the_field(data):
    """Property: any one field of the wrong type, non-finite, or out of its range is a ValueError naming it."""
    name = data.draw(st.sampled_from(sorted(DFO_OUT_OF_RANGE)))
    kind = _kind(bk.DFOLoRAConfig, name)
    value = data.draw(st.one_of(DFO_OUT_OF_RANGE[name], _WRONG[kind]).filter(
        lambda v: not (v is None and name in ("bound", "layers"))
        and not (isinstance(v, str) and v in ("cma", "fireworks", "all", "A", "ce", "hinge", "neg_metric", "layers",
                                              "none", "auto", "before", "after"))))
    with pytest.raises(ValueError, match=rf"^DFOLoRAConfig[:.] ?{name}\b"):
        bk.DFOLoRAConfig(**{name: value})
