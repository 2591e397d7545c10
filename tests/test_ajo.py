"""AJO and Feature-MLP on tiny random models: the joint prediction, f's training, runs, save/load."""
import dataclasses

import numpy as np
import pytest
import torch

import bbtkit as bk
from notebook_cells import Spy, run_cell
from bbtkit.methods import ajo
from bbtkit.methods.ajo import evaluate_parts, make_head, mixture, train_head
from bbtkit.data.splits import Example, Examples, Split


@pytest.fixture(scope="module")
def toy_split(toy):
    dev = Examples([Example("fun and good", None, 1), Example("awful", None, 0)], name="dev")
    return Split("sst2", 0, toy, dev, toy)


def positive_logit_roberta():
    """A tiny RoBERTa whose label-word logits are all positive (champion calibration needs it)."""
    lm = bk.tiny_model("roberta", layers=3)
    with torch.no_grad():
        lm.model.lm_head.bias += 10.0
    return lm


def tiny_cfg(**kw):
    small = dict(n_prompt_tokens=2, intrinsic_dim=8, popsize=4, budget=40, eval_every=8, phase_generations=3,
                 head_width=16, batch_size=2)
    return dataclasses.replace(bk.AJOConfig.cpu_quick(seed=5), **{**small, **kw})


def test_mixture_weights_the_two_predictions():
    lm = torch.tensor([[0.9, 0.1]])
    head_logits = torch.tensor([[0.0, float(np.log(3.0))]])  # softmax: (0.25, 0.75)
    torch.testing.assert_close(mixture(lm, head_logits, 0.5), torch.tensor([[0.575, 0.425]]))
    torch.testing.assert_close(mixture(lm, head_logits, 1.0), lm)
    torch.testing.assert_close(mixture(lm, head_logits, 0.0), torch.tensor([[0.25, 0.75]]))


def test_head_learns_separable_features_and_ignores_the_lm_part_at_mix_one():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(64, 12, generator=gen)
    y = (x[:, 0] > 0).long()
    uniform = torch.full((64, 2), 0.5)
    head = make_head("linear", 12, 2, seed=0)
    before = (head(x).argmax(-1) == y).float().mean()
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    first = train_head(head, opt, x, uniform, y, 0.5, 1, 8, gen)
    last = train_head(head, opt, x, uniform, y, 0.5, 30, 8, gen)
    assert last < first and (head(x).argmax(-1) == y).float().mean() > max(0.9, before)
    frozen = {k: v.clone() for k, v in head.state_dict().items()}
    fresh = torch.optim.Adam(head.parameters(), lr=1e-2)  # (Adam's momentum would move f anyway)
    train_head(head, fresh, x, uniform, y, 1.0, 3, 8, gen)  # mix 1: f does not enter the loss
    for k, v in head.state_dict().items():
        torch.testing.assert_close(v, frozen[k], atol=0, rtol=0)


@pytest.mark.parametrize("arch,calibration", [("llama", "contextual"), ("roberta+", "champion"), ("gpt2", None)])
def test_ajo_never_touches_the_language_model(arch, calibration, toy_split):
    lm = positive_logit_roberta() if arch == "roberta+" else bk.tiny_model(arch, layers=3)
    before = {k: v.clone() for k, v in lm.model.state_dict().items()}
    res = bk.run_ajo(lm, "sst2", toy_split, tiny_cfg(calibration=calibration), display=False)
    assert all(p.grad is None for p in lm.model.parameters())
    for k, v in lm.model.state_dict().items():
        torch.testing.assert_close(v, before[k], atol=0, rtol=0)
    assert res.api_calls <= 40 and res.classifier is not None
    phases = [h for h in res.history if h.get("phase") == "classifier"]
    assert len(phases) == res.stop["classifier phases"] >= 2
    assert set(res.extra["test_parts"]) == {"joint", "lm", "classifier"}


def test_ajo_is_deterministic_with_a_seed(toy_split):
    lm = bk.tiny_model("llama", layers=3)
    runs = [bk.run_ajo(lm, "sst2", toy_split, tiny_cfg(calibration="contextual"), display=False) for _ in range(2)]
    np.testing.assert_array_equal(runs[0].z, runs[1].z)
    assert [h["incumbent_loss"] for h in runs[0].history] == [h["incumbent_loss"] for h in runs[1].history]
    for (k, a), b in zip(runs[0].classifier.state_dict().items(), runs[1].classifier.state_dict().values()):
        torch.testing.assert_close(a, b, atol=0, rtol=0, msg=k)


def test_ajo_budget_and_loss_accounting(toy_split):
    lm = bk.tiny_model("llama", layers=3)
    cfg = tiny_cfg(calibration=None, budget=23)
    res = bk.run_ajo(lm, "sst2", toy_split, cfg, display=False)
    assert res.api_calls <= cfg.budget
    calls = [h["calls"] for h in res.history]
    assert calls == sorted(calls) and calls[-1] == res.api_calls
    steps = np.diff([0] + calls)
    assert set(steps) <= {1, cfg.popsize}  # one call per classifier phase, popsize per generation
    prompts = [h for h in res.history if h.get("phase") == "prompts"]
    assert all(b["incumbent_loss"] <= a["incumbent_loss"] + 1e-12 for a, b in zip(prompts, prompts[1:])
               if b["round"] == a["round"] and a["calls"] + cfg.popsize == b["calls"])
    with pytest.raises(ValueError, match="at least popsize \\+ 2"):
        bk.run_ajo(lm, "sst2", toy_split, dataclasses.replace(cfg, budget=5), display=False)


@pytest.mark.parametrize("arch", ["llama", "roberta+"])
def test_ajo_saves_f_and_reevaluates_identically(arch, toy_split, tmp_path):
    lm = positive_logit_roberta() if arch == "roberta+" else bk.tiny_model("llama", layers=3)
    res = bk.run_ajo(lm, "sst2", toy_split, tiny_cfg(calibration="champion" if arch == "roberta+" else "contextual"),
                     display=False)
    loaded = bk.load_result(res.save(tmp_path / "ajo"))
    assert (tmp_path / "ajo" / "classifier.safetensors").exists()
    for (k, a), b in zip(res.classifier.state_dict().items(), loaded.classifier.state_dict().values()):
        torch.testing.assert_close(a, b, atol=0, rtol=0, msg=k)
    assert loaded.calibration == res.calibration
    assert evaluate_parts(lm, "sst2", toy_split.test, loaded) == res.extra["test_parts"]
    # a BBTv2 result saved over it does not inherit f
    bbtv2 = bk.run_bbtv2(lm, "sst2", toy_split, dataclasses.replace(bk.BBTv2Config.cpu_quick(), n_prompt_tokens=2,
                                                                     intrinsic_dim=4, popsize=4, budget=9),
                         display=False, evaluate_test=False)
    assert bk.load_result(bbtv2.save(tmp_path / "ajo", overwrite=True)).classifier is None


def test_feature_mlp_is_one_call_and_the_classifier_alone(toy_split, tmp_path):
    lm = bk.tiny_model("llama", layers=3)
    cfg = tiny_cfg(feature_epochs=20, lr=1e-2)
    res = bk.run_feature_mlp(lm, "sst2", toy_split, cfg, display=False)
    assert res.api_calls == 1 and res.prompt is None and len(res.history) == 20
    parts = res.extra["test_parts"]
    assert parts["joint"] == parts["classifier"]  # mix 0
    assert res.dev_metric == max(h["dev_metric"] for h in res.history)
    loaded = bk.load_result(res.save(tmp_path / "fmlp"))
    assert evaluate_parts(lm, "sst2", toy_split.test, loaded) == parts


def test_config_validation_and_presets():
    for bad, match in [(dict(mix=1.5), "mix"), (dict(head="cnn"), "head"), (dict(lr=0.0), "lr"),
                       (dict(phase_generations=0), "phase_generations"), (dict(epochs=0), "epochs")]:
        with pytest.raises(ValueError, match=match):
            dataclasses.replace(bk.AJOConfig.cpu_quick(), **bad)
    assert bk.AJOConfig.paper("sst2").budget == 3000 and bk.AJOConfig.paper("dbpedia").budget == 3000
    assert {bk.AJOConfig.paper(t).budget for t in ("qqp", "qnli", "snli")} == {8000}
    paper = bk.AJOConfig.paper("snli", seed=13)
    assert (paper.mix, paper.lr, paper.epochs, paper.sigma, paper.alpha, paper.seed) == (0.5, 3e-4, 3, 0.2, 0.2, 13)
    # both presets mix the champion-calibrated LM prediction, as the report does
    assert paper.calibration == bk.AJOConfig.cpu_quick().calibration == "champion"
    with pytest.raises(TypeError, match="AJOConfig"):
        bk.run_ajo(None, "sst2", None, bk.BBTv2Config.cpu_quick())


def test_calls_to_reach():
    history = [{"calls": 1, "dev_metric": 0.5}, {"calls": 11, "dev_metric": None}, {"calls": 21, "dev_metric": 0.8}]
    assert bk.calls_to_reach(history, 0.5) == 1 and bk.calls_to_reach(history, 0.7) == 21
    assert bk.calls_to_reach(history, 0.9) is None


def test_the_inline_loop_of_notebook_06_matches_run_ajo(toy_split):
    """Notebook 06 section 2 writes AJO's first classifier phase and prompt phase by hand: its two cells, run
    as committed on a tiny model, are run_ajo's first phases (each generation's best loss, the kept loss)."""
    from bbtkit.tuning.objectives import candidate_losses

    lm, cfg = positive_logit_roberta(), tiny_cfg()
    spy = Spy(candidate_losses)
    ns = run_cell("06_ajo.ipynb", "joint = ajo.JointLoss(", "p.opt.rescore(", lm=lm, task=bk.get_task("sst2"),
                  split=toy_split, cfg=cfg, SMOKE=False, candidate_losses=spy)
    res = bk.run_ajo(lm, "sst2", toy_split, cfg, display=False, evaluate_test=False)
    packaged = [h for h in res.history if h["phase"] == "prompts"][:cfg.phase_generations]
    assert len(spy.returns) == 1 + cfg.phase_generations  # the incumbent rescored, then each generation
    np.testing.assert_allclose([losses.min() for losses, _ in spy.returns[1:]], [h["best_loss"] for h in packaged],
                               rtol=0, atol=1e-6)
    np.testing.assert_allclose(ns["p"].opt.incumbent, packaged[-1]["incumbent_loss"], rtol=0, atol=1e-6)


def test_ajo_warns_when_its_budget_is_short_of_one_round(toy_split):
    import warnings

    from bbtkit.methods.bbtv2 import round_calls
    from bbtkit.guards import PartialRoundWarning

    lm = bk.tiny_model("llama", layers=2)
    cfg = tiny_cfg(calibration=None, popsize=10, budget=12, eval_every=100, phase_generations=None)
    assert round_calls(cfg, 2) == 21  # the first classifier phase's call, then 10 per layer
    with pytest.warns(PartialRoundWarning, match=r"AJO: .*bottom 1 of its 2 layers .* at least 21"):
        res = bk.run_ajo(lm, "sst2", toy_split, cfg, display=False, evaluate_test=False)
    assert "at least 21" in res.extra["notes"][0]
    with warnings.catch_warnings():
        warnings.simplefilter("error", PartialRoundWarning)
        full = bk.run_ajo(lm, "sst2", toy_split, dataclasses.replace(cfg, budget=21), display=False, evaluate_test=False)
    assert "notes" not in full.extra
