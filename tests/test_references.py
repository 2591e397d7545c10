"""The generation scoring call: the reference's per-token log-probabilities under candidate prompts equal
those of a plain teacher-forced forward (the full model on the whole sequence, one example at a time), for
prompts before and after the input, with and without the context cache; calls are counted and budgeted."""
import dataclasses

import numpy as np
import pytest
import torch

import bbtkit as bk
from bbtkit.api.reference import ReferenceScorer
from bbtkit.data.splits import Example, Examples
from bbtkit.model.templates import encode_example

INPUTS = ["what is two plus three", "name a colour", "is ice cold? answer yes or no"]
REFERENCES = ["5", "a deep shade of blue", "yes"]


def task_for(lm):
    return bk.get_task("sst2").with_template("Question: {text_a}\nAnswer: {mask}", lm.family, ("bad", "great"))


def plain(lm, task, prompt, position, n):
    """(examples, T) by the full model on each whole sequence: template, input, reference, the prompt added."""
    rows = []
    for text, ref in zip(INPUTS, REFERENCES):
        e = encode_example(lm, task, Example(text, None, 0), n, position)
        target = lm.encode(" " + ref)
        ids = torch.tensor(e.ids + target)[None]
        embeds = lm.embeddings(ids).clone()
        if prompt is not None:
            embeds[0, e.prompt] += prompt.to(embeds.dtype)
        with torch.no_grad():
            logp = torch.log_softmax(lm.model(inputs_embeds=embeds).logits[0].float(), -1)
        rows.append([logp[e.answer + k, t].item() for k, t in enumerate(target)])
    T = max(map(len, rows))
    return torch.tensor([r + [float("nan")] * (T - len(r)) for r in rows])


@pytest.mark.parametrize("kind", ["llama", "gpt2"])
@pytest.mark.parametrize("position,cache", [("after", True), ("after", False), ("before", False)])
def test_the_scoring_call_equals_a_plain_teacher_forced_forward(kind, position, cache):
    lm = bk.tiny_model(kind)
    task, n = task_for(lm), 2
    examples = Examples([Example(t, None, 0) for t in INPUTS], name="qa")
    scorer = ReferenceScorer(lm, task, examples, REFERENCES, budget=4, position=position, use_cache=cache)
    assert scorer.forward_for(n).context_cached == (position == "after" and cache)
    prompts = torch.randn(3, n, lm.hidden_size, generator=torch.Generator().manual_seed(0)) * 0.5
    got = scorer(prompts)
    assert got.shape == (3, len(INPUTS), max(len(lm.encode(" " + r)) for r in REFERENCES)) and scorer.calls == 3
    for c in range(3):
        want = plain(lm, task, prompts[c], position, n)
        assert torch.equal(torch.isnan(got[c]), torch.isnan(want))
        np.testing.assert_allclose(got[c].nan_to_num(), want.nan_to_num(), atol=1e-5, rtol=0)
    assert not torch.allclose(got[0].nan_to_num(), got[1].nan_to_num())  # the prompt matters
    np.testing.assert_allclose(scorer(None)[0].nan_to_num(), plain(lm, task, None, position, 0).nan_to_num(),
                               atol=1e-5, rtol=0)
    assert scorer.calls == 4 and scorer.token_counts.tolist() == [len(lm.encode(" " + r)) for r in REFERENCES]
    with pytest.raises(bk.BudgetExceededError, match="budget of 4"):
        scorer(prompts[:1])


def test_bad_pairs_are_refused_with_a_sentence():
    lm = bk.tiny_model("llama")
    examples = Examples([Example(t, None, 0) for t in INPUTS], name="qa")
    with pytest.raises(ValueError, match="one reference output per example"):
        ReferenceScorer(lm, task_for(lm), examples, REFERENCES[:2]).forward_for(0)
    with pytest.raises(ValueError, match="reference output is empty"):
        ReferenceScorer(lm, task_for(lm), examples, ["1", " ", "2"]).forward_for(0)
    with pytest.raises(ValueError, match="shallow prompts"):
        ReferenceScorer(lm, task_for(lm), examples, REFERENCES)(torch.zeros(1, lm.num_layers, 2, lm.hidden_size))
    with pytest.raises(ValueError, match="causal LM"):
        mlm = bk.tiny_model("roberta")
        ReferenceScorer(mlm, bk.get_task("sst2"), examples, REFERENCES, position="before").forward_for(0)


@pytest.mark.parametrize("position", ["after", "before"])
def test_greedy_generation_under_a_prompt_is_transformers_greedy_search_on_the_same_embeddings(position):
    from bbtkit.model.prompted_generation import greedy_with_prompt

    lm = bk.tiny_model("llama")
    task, n = task_for(lm), 2
    examples = Examples([Example(t, None, 0) for t in INPUTS], name="qa")
    prompt = 4 * torch.randn(n, lm.hidden_size, generator=torch.Generator().manual_seed(1))
    got = greedy_with_prompt(lm, task, examples, prompt, position=position, max_new_tokens=5, stop=(), batch_size=2)
    for text, ex in zip(got, examples):
        e = encode_example(lm, task, ex, n, position)
        embeds = lm.embeddings(torch.tensor(e.ids)[None]).clone()
        embeds[0, e.prompt] += prompt
        ids = lm.model.generate(inputs_embeds=embeds, attention_mask=torch.ones(1, len(e.ids), dtype=torch.long),
                                max_new_tokens=5, do_sample=False, pad_token_id=lm.pad_id)[0]
        ids = [t for t in ids.tolist() if t != lm.tokenizer.eos_token_id]
        assert text == lm.tokenizer.decode(ids, skip_special_tokens=True).strip()
    if position == "after":  # next to the answer the prompt changes what is written (before, this tiny model
        plain = greedy_with_prompt(lm, task, examples, None, position=position, max_new_tokens=5, stop=())
        assert plain != got  # writes ": : :" whatever comes first)


def test_bbt_for_generation_tunes_within_its_budget_and_answers_the_same_test_problems_with_and_without(tmp_path):
    from bbtkit.data.reasoning import Problem, ReasoningSet
    from bbtkit.methods.bbt_generation import GenerationConfig, mean_nll, run_bbt_generation, split_problems

    problems = ReasoningSet("toy", "number", [Problem(f"what is {k} plus one", str(k + 1)) for k in range(14)])
    cfg = GenerationConfig(n_prompt_tokens=2, intrinsic_dim=6, popsize=4, budget=16, eval_every=8, train_size=4,
                           dev_size=3, test_size=5, max_new_tokens=3, seed=7)
    train, dev, test = split_problems(problems, cfg)
    assert {p.question for p in train} & {p.question for p in dev} == set() and len(test) == 5
    other = split_problems(problems, dataclasses.replace(cfg, seed=8))
    assert other[2].problems == test.problems and other[0].problems != train.problems  # test fixed, train per seed
    tuned, untuned, trace = run_bbt_generation(bk.tiny_model("llama"), problems, cfg)
    again = bk.ReasoningResult.load(tuned.save(tmp_path / "tuned.json"))  # a run saves and reads back whole
    assert again.traces == tuned.traces and again.calls == tuned.calls
    assert trace.calls == 16 and tuned.calls == 16 + 5 and untuned.calls == 5
    assert [t["question"] for t in tuned.traces] == [t["question"] for t in untuned.traces] == [p.question for p in test]
    assert trace.history[0]["calls"] == 0 and trace.history[0]["dev_metric"] is not None  # the start competes
    assert trace.best_loss <= trace.history[1]["best_loss"]
    assert mean_nll(np.array([[[-1.0, np.nan], [-2.0, -3.0]]])).tolist() == [2.0]  # per reference token
    with pytest.raises(ValueError, match="fewer than train_size"):
        split_problems(problems, dataclasses.replace(cfg, test_size=10))
    with pytest.raises(ValueError, match="end with \\{mask\\}"):
        GenerationConfig(template="Q: {text_a}")
    with pytest.raises(ValueError, match="loss='ce'"):
        GenerationConfig(loss="hinge")
