"""Instance-aware prompts (IPL): one prompt per candidate and example through the API, on tiny models of
all four families; the relevance weighting; black-box and gradient runs that save, load and re-evaluate."""
import dataclasses

import numpy as np
import pytest
import torch

import bbtkit as bk
from notebook_cells import Spy, run_cell
from bbtkit.api.blackbox import BlackBoxLM, as_prompts, mean_embeddings
from bbtkit.data.splits import Example, Examples, Split
from bbtkit.tuning.spaces import WeightedPrompt, relevance


def _prompts(lm, *shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, lm.hidden_size, generator=g) * 0.5


@pytest.mark.parametrize("position", ["before", "auto"])
def test_equal_per_example_prompts_give_exactly_the_shared_prompt_logits(tiny, toy, position):
    api = BlackBoxLM(tiny, "sst2", toy, position=position)
    shared = _prompts(tiny, 3, 2)  # (pop, n, H)
    per = shared[:, None].expand(3, len(toy), 2, tiny.hidden_size)  # (pop, batch, n, H), all equal
    assert torch.equal(api(shared).logits, api(per, per_example=True).logits)
    assert api.calls == 6  # one call per candidate, however many prompts it carries


@pytest.mark.parametrize("position", ["before", "auto"])
def test_a_population_in_one_batch_equals_candidate_by_candidate(tiny, toy, position):
    api = BlackBoxLM(tiny, "sst2", toy, position=position, max_batch_tokens=10**6)
    per = _prompts(tiny, 3, len(toy), 2, seed=1)
    together = api(per, per_example=True).logits
    for c in range(3):
        assert torch.allclose(api(per[c:c + 1], per_example=True).logits[0], together[c], atol=1e-5)
    small = BlackBoxLM(tiny, "sst2", toy, position=position, max_batch_tokens=1)  # one candidate per forward
    assert torch.allclose(small(per, per_example=True).logits, together, atol=1e-5)


def test_all_zero_weights_or_prompt_give_the_manual_prompt(tiny, toy):
    api = BlackBoxLM(tiny, "sst2", toy)  # causal LMs: the template tokens; MLMs: placeholders before the input
    manual = api(torch.zeros(1, 2, tiny.hidden_size)).logits[0]  # BBT's p0: z = 0
    if tiny.family == "causal":
        assert torch.equal(manual, api().logits[0])
    feats = mean_embeddings(tiny, toy)
    P = _prompts(tiny, 2)
    w = WeightedPrompt(torch.zeros_like(P), torch.randn(4, tiny.hidden_size), torch.zeros(4),
                       torch.randn(4, tiny.hidden_size), torch.zeros(4))
    assert torch.equal(api(w.prompts(feats)[None], per_example=True).logits[0], manual)  # P = 0
    zero_w = torch.zeros(len(toy), 2)[..., None] * P  # w = 0: what relevance gives when every score is -inf
    assert torch.equal(api(zero_w[None], per_example=True).logits[0], manual)
    assert torch.allclose(bk.label_logits(tiny, "sst2", toy, w), manual, atol=1e-6)


def test_relevance_is_the_mean_over_the_input_tokens_of_q_dot_k(tiny, toy):
    """The weights from mean embeddings are the paper's mean_j q_i . k_j over the tokens, with biases."""
    g = torch.Generator().manual_seed(2)
    H, h = tiny.hidden_size, 4
    P, Wq, bq, Wk, bk_ = (torch.randn(*s, generator=g) for s in [(3, H), (h, H), (h,), (h, H), (h,)])
    w = WeightedPrompt(P, Wq, bq, Wk, bk_).weights(mean_embeddings(tiny, toy))
    for i, ex in enumerate(toy):
        e = tiny.embeddings(torch.tensor(tiny.encode(ex.text_a))).detach()  # (tokens, H)
        scores = ((P @ Wq.T + bq) @ (e @ Wk.T + bk_).T / h ** 0.5).mean(1)  # mean over tokens j
        assert torch.allclose(w[i], torch.sigmoid(scores), atol=1e-5)
    assert w.shape == (len(toy), 3) and relevance(P[None], Wq[None], bq[None], Wk[None], bk_[None],
                                                  mean_embeddings(tiny, toy)).shape == (1, len(toy), 3)


def test_per_example_evaluation_matches_the_api_across_length_batches(tiny, toy):
    per = _prompts(tiny, len(toy), 2, seed=3)
    api = BlackBoxLM(tiny, "sst2", toy, position="before")
    sorted_batches = bk.label_logits(tiny, "sst2", toy, per, position="before", batch_size=2, per_example=True)
    assert torch.allclose(sorted_batches, api(per[None], per_example=True).logits[0], atol=1e-5)


def test_a_4d_prompt_is_deep_unless_per_example_is_asked_for(toy):
    lm = bk.tiny_model("llama", layers=len(toy))  # layers == examples: the flag decides
    p = torch.zeros(1, len(toy), 2, lm.hidden_size)
    assert as_prompts(p, lm, len(toy))[2].shape == p.shape
    assert as_prompts(p, lm, len(toy), per_example=True)[1].shape == p.shape
    with pytest.raises(ValueError, match="one prompt per example"):
        BlackBoxLM(lm, "sst2", toy)(torch.zeros(1, 3, 2, lm.hidden_size), per_example=True)
    with pytest.raises(ValueError, match="pass per_example=True"):
        BlackBoxLM(bk.tiny_model("llama"), "sst2", toy)(torch.zeros(1, len(toy), 2, 32))


@pytest.fixture(scope="module")
def split(toy):
    dev = Examples([Example("fun and good", None, 1), Example("awful", None, 0)], name="dev")
    return Split("sst2", 0, toy, dev, toy)


@pytest.mark.parametrize("arch", ["llama", "roberta"])
def test_black_box_run_keeps_its_budget_and_reloads_exactly(arch, split, tmp_path):
    lm = bk.tiny_model(arch)
    cfg = dataclasses.replace(bk.IPLConfig.cpu_quick(seed=3), intrinsic_dim=8, weight_dim=4, head_size=4,
                              budget=40, eval_every=20)
    res = bk.run_ipl(lm, "sst2", split, cfg, display=False)
    assert res.method == "ipl" and res.api_calls <= 40 and res.z.shape == (1, 16)
    assert isinstance(res.prompt, WeightedPrompt) and res.prompt.shape == (3, lm.hidden_size)
    loaded = bk.load_result(res.save(tmp_path / "run"))
    assert np.array_equal(loaded.prompt.flat(), res.prompt.flat())
    assert bk.evaluate(lm, "sst2", split.test, loaded.prompt, position=loaded.position) == res.test_metric
    w = loaded.prompt.weights(mean_embeddings(lm, split.test))
    assert w.shape == (len(split.test), 3) and ((w > 0) & (w < 1)).all()


def test_z_zero_is_the_manual_prompt(split):
    lm = bk.tiny_model("llama")
    api = BlackBoxLM(lm, "sst2", split.train, position="after")
    space = bk.methods.ipl.make_space(dataclasses.replace(bk.IPLConfig.cpu_quick(), head_size=4, weight_dim=4,
                                                  intrinsic_dim=8), api)
    out = api(space.candidates(np.zeros((1, space.dim)), api.input_embeddings()), per_example=True)
    assert torch.equal(out.logits[0], api(torch.zeros(1, 3, lm.hidden_size)).logits[0])  # BBT's z = 0


def test_gradient_mode_trains_the_paper_encoder_and_reloads(split, tmp_path):
    lm = bk.tiny_model("llama")
    cfg = dataclasses.replace(bk.IPLConfig.cpu_quick(seed=1, mode="gradient"), head_size=4, steps=6, batch_size=3,
                              eval_every=3, lr=1e-2)
    before = [p.detach().clone() for p in lm.model.parameters()]
    flags = [p.requires_grad for p in lm.model.parameters()]
    res = bk.run_ipl(lm, "sst2", split, cfg, display=False)
    assert all(torch.equal(a, b) for a, b in zip(before, lm.model.parameters()))  # the model is untouched
    assert flags == [p.requires_grad for p in lm.model.parameters()]
    assert res.api_calls == 0 and res.stop["steps"] == 6 and len(res.history) == 6
    assert res.extra["mode"] == "gradient" and not res.projections
    loaded = bk.load_result(res.save(tmp_path / "grad"))
    assert bk.evaluate(lm, "sst2", split.test, loaded.prompt, position=loaded.position) == res.test_metric
    with pytest.raises(ValueError, match="black-box mode"):
        bk.run_ipl(lm, "sst2", split, cfg, checkpoint=tmp_path / "c.json")


def test_the_gradient_forward_is_the_api_forward(split):
    """What AdamW differentiates is what the API returns, for the same per-example prompts."""
    from bbtkit.whitebox import access as whitebox
    lm = bk.tiny_model("gpt2")
    per = _prompts(lm, len(split.train), 3, seed=4)
    fw = whitebox.encode(lm, "sst2", split.train, 3, "after")
    rows = torch.arange(len(split.train))
    white = whitebox.answer_logits(lm, fw, rows, per, per_example=True)
    assert torch.allclose(white, BlackBoxLM(lm, "sst2", split.train, position="after")(per[None], per_example=True)
                          .logits[0], atol=1e-5)


def test_bad_configs_say_what_to_do():
    with pytest.raises(ValueError, match="mode must be one of"):
        bk.IPLConfig(mode="white")
    with pytest.raises(TypeError, match="IPLConfig"):
        bk.run_ipl(bk.tiny_model("llama"), "sst2", None, bk.BBTConfig.cpu_quick())


def test_notebook_11s_plain_loop_is_run_ipl(split):
    """The loop notebook 11 shows, its cell run as committed on a tiny model, is the loop run_ipl runs (the same
    best loss at every generation, the same calls)."""
    from bbtkit.tuning.objectives import Loss

    lm, task, spies = bk.tiny_model("llama"), bk.get_task("sst2"), []
    ns = run_cell("11_instance_aware_prompts.ipynb", "opt.tell(X, losses)", lm=lm, task=task, split=split, BUDGET=40,
                  Loss=lambda *a, **kw: spies.append(Spy(Loss(*a, **kw))) or spies[-1])
    res = bk.run_ipl(lm, task, split, ns["cfg"], display=False, evaluate_test=False)
    np.testing.assert_allclose([out.min() for out, _ in spies[0].returns], [h["best_loss"] for h in res.history[1:]],
                               rtol=1e-6)
    assert ns["api"].calls == res.api_calls and len(res.history) > 2


def test_the_explorer_draws_the_weights_of_a_typed_input(split):
    import matplotlib
    matplotlib.use("Agg")
    lm = bk.tiny_model("llama")
    g = torch.Generator().manual_seed(6)
    H = lm.hidden_size
    prompt = WeightedPrompt(*(torch.randn(*s, generator=g) for s in [(3, H), (4, H), (4,), (4, H), (4,)]))
    w = bk.course.widgets.ipl_explorer(lm, prompt, "sst2", text="a fine film")
    w.children[0].value = "a dull film"  # typing runs the drawing again
    assert "a dull film" in w.children[0].value
    summary = bk.run_ipl(lm, "sst2", split, dataclasses.replace(bk.IPLConfig.cpu_quick(mode="gradient"), head_size=4,
                                                                 steps=2, eval_every=2), display=False).summary()
    assert "2 gradient steps, no API call" in summary
