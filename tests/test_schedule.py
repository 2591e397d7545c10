"""The schedule an estimate prices is the one the loop runs: calls, layers, classifier phases, dev checks."""
import dataclasses

import pytest

import bbtkit as bk
from bbtkit.data.splits import Examples, Split
from bbtkit.course.estimates import Estimate
from bbtkit.course.pilots import pilot
from bbtkit.tuning.schedule import steps

LAYERS = 4


@pytest.fixture(scope="module")
def setup(toy):
    lm = bk.tiny_model("llama", layers=LAYERS)
    many = Examples([toy[i % len(toy)] for i in range(16)], name="many")
    return lm, Split(train=many, dev=toy, test=toy, task="sst2", seed=42)


def small(method: str, budget: int, **kw):
    cfg = bk.get_method(method).preset("sst2", 42, budget=budget)
    return dataclasses.replace(cfg, n_prompt_tokens=2, intrinsic_dim=5, popsize=4, eval_every=10, **kw)


def recorded(res) -> list[tuple]:
    """(kind, calls, layer, dev) of each record of a run, as ``steps`` names them."""
    out = []
    for i, row in enumerate(res.history):
        kind = "start" if i == 0 else "phase" if row.get("phase") == "classifier" else "generation"
        out.append((kind, row["calls"], row.get("layer"), row.get("dev_metric") is not None))
    return out


@pytest.mark.parametrize("method,budget,kw", [
    ("bbt", 37, {}),
    ("bbtv2", 42, {}),
    ("bbtv2", 42, {"layers": (1, 3)}),
    ("ajo", 45, {"phase_generations": 3, "calibration": None}),
    ("ajo", 45, {"phase_generations": None, "calibration": None}),  # a phase per round over the layers
])
def test_steps_are_the_steps_the_loop_takes(setup, method, budget, kw):
    lm, split = setup
    cfg = small(method, budget, **kw)
    res = bk.get_method(method).run(lm, "sst2", split, cfg, display=False, evaluate_test=False)
    layered = method != "bbt"
    layers = (tuple(cfg.layers or range(LAYERS))) if layered else ()
    every = (cfg.phase_generations or len(layers)) if method == "ajo" else 0
    start = 0 if method == "bbt" else 1
    planned = [(s.kind, s.calls, s.layer, s.dev) for s in steps(budget, cfg.popsize, start, layers, every, cfg.eval_every)]
    assert planned == recorded(res)
    assert planned[-1][1] == res.api_calls


def hand(**kw) -> Estimate:
    return Estimate(**{**dict(method="bbtv2", setup=10.0, per_call=0.3, per_dev=1.0, per_test=0.0, generation=10,
                              start_calls=1, eval_every=1000, layers=(0, 1, 2, 3, 4), per_call_top=0.1), **kw})


def test_a_call_costs_less_the_higher_the_layer_and_a_round_adds_up():
    est = hand()
    assert [est.call_at(l) for l in range(5)] == pytest.approx([0.3, 0.25, 0.2, 0.15, 0.1])
    # one start call and one round of five generations: 0.3 + 10 x (0.3 + 0.25 + 0.2 + 0.15 + 0.1)
    assert est.parts(51)["call_seconds"] == pytest.approx(0.3 + 10.0)
    moving = hand(cache_per_layer=0.5)  # up one layer four times in a round, and back to the bottom for free
    assert moving.parts(101)["call_seconds"] == pytest.approx(0.3 + 2 * (10.0 + 4 * 0.5))
    flat = hand(per_call_top=None)
    assert flat.parts(51)["call_seconds"] == pytest.approx(51 * 0.3)
    assert "on average: 0.300 at layer 0, 0.100 at layer 4" in est.describe(51)


def test_classifier_phases_are_counted_and_priced():
    est = hand(per_call_top=None, per_phase=2.0, phase_every=2, method="ajo")
    run = est.steps(45)  # phase, gen, gen, phase, gen, gen: 1 + 20 + 1 + 20 = 42; a third phase and gen do not fit
    assert [s.kind for s in run] == ["start", "generation", "generation", "phase", "generation", "generation"]
    assert est.calls(45) == 42
    assert est.parts(45)["call_seconds"] == pytest.approx(2 * 2.0 + 40 * 0.3)


def test_a_layerwise_pilot_times_the_bottom_and_the_top_layer(setup):
    lm, split = setup
    for method, kw in [("bbtv2", {}), ("ajo", {"calibration": None})]:
        cfg = small(method, 200, **kw)
        est = pilot(method, lm, "sst2", split, cfg)
        assert est.layers == tuple(range(LAYERS)) and est.per_call_top is not None
        assert est.per_call > 0 and est.per_call_top > 0 and est.cache_per_layer >= 0
        assert (est.phase_every, est.per_phase > 0) == ((cfg.phase_generations, True) if method == "ajo" else (0, False))
        res = bk.get_method(method).run(lm, "sst2", split, cfg, display=False, evaluate_test=False)
        assert res.api_calls == est.calls(200)
        assert est.parts(200)["total"] / 3 < res.seconds < est.parts(200)["total"] * 3


def test_bad_steps_input():
    with pytest.raises(ValueError, match="popsize"):
        steps(10, 0)
    with pytest.raises(ValueError, match="per_call_top"):
        hand(per_call_top=float("nan"))
