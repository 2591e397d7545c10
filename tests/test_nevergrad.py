"""nevergrad's optimizers through the ask/tell seam: each one the course names keeps the loop's budget
exactly, gives the same run for the same seed, and resumes after Ctrl-C to the same z as a run never
stopped, from a checkpoint that holds only the told losses (JSON, no pickle); BBTConfig, BBTv2 and
DFO-LoRA take any nevergrad name as their optimizer."""
import dataclasses
import json

import numpy as np
import pytest

import bbtkit as bk
from bbtkit.data.splits import Example, Examples, Split
from bbtkit.methods.registry import METHODS
from bbtkit.optim.by_name import make
from bbtkit.optim.nevergrad_seam import COURSE, Nevergrad
from bbtkit.tuning.loop import tune

from test_loop import StopAfter

TARGET = np.linspace(-1.0, 1.0, 6)


def sphere(X):
    """A noiseless problem: squared distance to TARGET (minimum 0)."""
    return np.sum((np.asarray(X) - TARGET) ** 2, axis=1)


def opt(name, seed=1, budget=40, popsize=4):
    return make(name, 6, popsize=popsize, sigma=0.5, seed=seed, budget=budget)


@pytest.mark.parametrize("name", COURSE)
@pytest.mark.parametrize("budget", [40, 38])
def test_the_loop_spends_whole_generations_and_never_more_than_its_budget(name, budget):
    calls = []
    trace = tune(lambda X: calls.append(len(X)) or sphere(X), opt(name, budget=budget), budget=budget)
    assert sum(calls) == trace.calls == budget // 4 * 4 and set(calls) == {4}
    assert trace.stop == {"budget": f"{trace.calls} of {budget} calls used", "nevergrad": trace.stop["nevergrad"]}
    assert trace.stop["nevergrad"].startswith(name)
    assert trace.best_loss < sphere(np.zeros((1, 6)))[0]  # it learned something on a plain sphere


@pytest.mark.parametrize("name", COURSE)
def test_the_same_seed_gives_the_same_run_and_another_seed_another(name):
    def asked(seed):
        seen = []
        tune(lambda X: seen.append(np.array(X)) or sphere(X), opt(name, seed=seed), budget=40)
        return np.stack(seen)
    np.random.seed(0)
    first = asked(7)
    np.random.seed(1)  # nevergrad must not read NumPy's global generator
    np.testing.assert_array_equal(first, asked(7))
    assert not np.array_equal(first, asked(8))


@pytest.mark.parametrize("name", COURSE)
def test_ctrl_c_and_resume_replays_to_the_same_z_from_a_json_checkpoint(name, tmp_path):
    whole = tune(sphere, opt(name), budget=40, dev=lambda z: -float(sphere(np.asarray(z)[None])[0]), eval_every=8)
    ckpt, stopper = tmp_path / "run.ckpt.json", StopAfter(4)
    stopped = tune(sphere, opt(name), budget=40, dev=lambda z: -float(sphere(np.asarray(z)[None])[0]), eval_every=8,
                   callback=stopper, checkpoint=ckpt)
    assert stopped.interrupted and stopped.calls == 16 < whole.calls
    body = json.loads(ckpt.read_text())  # plain JSON: the told losses, not the optimizer's pickled state
    assert [list(e) for e in body["events"]] == [["tell"]] * 4
    resumed = tune(sphere, opt(name), budget=40, dev=lambda z: -float(sphere(np.asarray(z)[None])[0]), eval_every=8,
                   resume=ckpt, checkpoint=ckpt)
    assert resumed.calls == whole.calls == 40 and not resumed.interrupted
    np.testing.assert_allclose(resumed.best_z, whole.best_z, atol=1e-9, rtol=0)
    assert [h["best_loss"] for h in resumed.history] == [h["best_loss"] for h in whole.history]


def test_a_tell_that_does_not_match_the_ask_is_refused():
    o = Nevergrad("DE", 3, budget=20, popsize=4)
    X = o.ask()
    with pytest.raises(ValueError, match="asked 4 candidates and told 3"):
        o.tell(X[:3], [1.0, 2.0, 3.0])


def test_a_wrong_name_is_refused_with_the_close_matches():
    with pytest.raises(ValueError, match=r"BBTConfig: optimizer .* not 'Pso'\. Did you mean 'PSO'"):
        bk.BBTConfig(optimizer="Pso")
    with pytest.raises(ValueError, match="DFOLoRAConfig: optimizer"):
        bk.DFOLoRAConfig(optimizer="ngopt")
    with pytest.raises(ValueError, match="BBTConfig\\(optimizer='DE'\\)"):
        from bbtkit.methods.random_search import RandomSearchConfig
        RandomSearchConfig(optimizer="DE")
    assert bk.BBTConfig(optimizer="NGOpt").optimizer == "NGOpt" and bk.BBTv2Config(optimizer="PSO").optimizer == "PSO"


def test_the_registry_rows_are_bbt_with_a_nevergrad_optimizer():
    for row, name in {"bbt_de": "DE", "bbt_pso": "PSO", "bbt_ngopt": "NGOpt"}.items():
        m = METHODS[row]
        assert m.run is bk.run_bbt and m.preset("sst2", 13).optimizer == name
        assert dataclasses.replace(m.preset("sst2", 13), optimizer="cma") == bk.BBTConfig.cpu_quick(13)


@pytest.fixture(scope="module")
def toy_split(toy):
    dev = Examples([Example("fun and good", None, 1), Example("awful", None, 0)], name="dev")
    return Split("sst2", 0, toy, dev, toy)


SMALL = dict(n_prompt_tokens=2, intrinsic_dim=8, popsize=4, eval_every=8)
RUNS = {  # a method with a nevergrad optimizer: (run, config, model)
    **{f"bbt-{n}": (bk.run_bbt, lambda n=n: dataclasses.replace(bk.BBTConfig.cpu_quick(3), budget=32, optimizer=n,
                                                                 **SMALL), lambda: bk.tiny_model("llama"))
       for n in COURSE},
    "bbtv2-DE": (bk.run_bbtv2, lambda: dataclasses.replace(bk.BBTv2Config.cpu_quick(3), budget=33, optimizer="DE",
                                                           **SMALL), lambda: bk.tiny_model("llama", layers=2)),
    "dfo_lora-PSO": (bk.run_dfo_lora, lambda: bk.DFOLoRAConfig(intrinsic_dim=8, popsize=4, budget=33, eval_every=8,
                                                              optimizer="PSO", seed=3),
                     lambda: bk.tiny_model("llama", layers=2)),
}


@pytest.mark.parametrize("case", list(RUNS))
def test_a_method_with_a_nevergrad_optimizer_resumes_after_ctrl_c_to_the_same_end(case, toy_split, tmp_path):
    run, make_cfg, make_model = RUNS[case]
    lm, cfg = make_model(), make_cfg()
    whole = run(lm, "sst2", toy_split, cfg, display=False)
    again = run(lm, "sst2", toy_split, cfg, display=False)
    np.testing.assert_array_equal(again.z, whole.z)
    ckpt = tmp_path / "run.ckpt.json"
    stopped = run(lm, "sst2", toy_split, cfg, display=False, callback=StopAfter(3), checkpoint=ckpt)
    assert "interrupted" in stopped.stop and stopped.api_calls < whole.api_calls
    resumed = run(lm, "sst2", toy_split, cfg, display=False, resume=ckpt)
    assert resumed.api_calls == whole.api_calls <= cfg.budget
    np.testing.assert_allclose(resumed.z, whole.z, atol=1e-9, rtol=0)
    assert resumed.dev_metric == whole.dev_metric and resumed.test_metric == whole.test_metric
    assert resumed.stop["nevergrad" if case.startswith("bbt-") else "rounds"] == whole.stop[
        "nevergrad" if case.startswith("bbt-") else "rounds"]
