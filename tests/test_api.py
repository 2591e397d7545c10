"""The black box's contract: shapes, API-call accounting, budgets and clear errors."""
import numpy as np
import pytest
import torch

import bbtkit as bk
from bbtkit.data.splits import Examples


@pytest.fixture(scope="module")
def llama():
    return bk.tiny_model("llama")


def test_output_shapes(llama, toy):
    api = bk.BlackBoxLM(llama, "sst2", toy, budget=10)
    out = api(torch.zeros(4, 2, llama.hidden_size), return_hidden=True)
    assert out.logits.shape == (4, len(toy), 2) and out.hidden.shape == (4, len(toy), llama.hidden_size)
    assert out.labels.tolist() == list(toy.labels)
    assert api(np.zeros((2, llama.hidden_size), dtype=np.float32)).logits.shape == (1, len(toy), 2)


def test_each_candidate_is_one_api_call_and_time_is_recorded(llama, toy):
    api = bk.BlackBoxLM(llama, "sst2", toy, budget=10)
    api(torch.zeros(3, 2, llama.hidden_size))
    api()
    assert api.calls == 4 and api.remaining == 6 and len(api.call_seconds) == 4
    assert api.seconds_per_call > 0


def test_budget_is_enforced_without_evaluating(llama, toy):
    api = bk.BlackBoxLM(llama, "sst2", toy, budget=5)
    api(torch.zeros(3, 2, llama.hidden_size))
    api(torch.zeros(2, 2, llama.hidden_size))
    with pytest.raises(bk.BudgetExceededError, match="budget of 5"):
        api(torch.zeros(1, 2, llama.hidden_size))
    assert api.calls == 5
    with pytest.raises(bk.BudgetExceededError):
        bk.BlackBoxLM(llama, "sst2", toy, budget=2)(torch.zeros(3, 2, llama.hidden_size))


@pytest.mark.parametrize("budget", [0, -3, 2.5])
def test_budget_must_be_a_positive_count(llama, toy, budget):
    with pytest.raises(ValueError, match="budget must be a positive"):
        bk.BlackBoxLM(llama, "sst2", toy, budget=budget)


def test_empty_split_is_a_clear_error(llama):
    with pytest.raises(ValueError, match="empty"):
        bk.BlackBoxLM(llama, "sst2", Examples([], name="empty"))
    with pytest.raises(ValueError, match="empty"):
        bk.evaluate(llama, "sst2", Examples([], name="empty"))


def test_bad_prompt_shapes_say_what_is_expected(llama, toy):
    api = bk.BlackBoxLM(llama, "sst2", toy)
    with pytest.raises(ValueError, match=r"\(pop, tokens, 32\)"):
        api(torch.zeros(2, 3, 7))
    with pytest.raises(ValueError, match="one entry per layer"):
        api(torch.zeros(1, 5, 2, llama.hidden_size))


def test_prompt_after_input_needs_a_causal_lm(toy):
    with pytest.raises(ValueError, match="causal LM"):
        bk.BlackBoxLM(bk.tiny_model("roberta"), "sst2", toy, position="after")


def test_labels_out_of_range_are_rejected(llama, toy_pairs):
    with pytest.raises(ValueError, match=r"outside 0\.\.1"):
        bk.BlackBoxLM(llama, "sst2", toy_pairs)  # SNLI labels (0..2) on a 2-class task


def test_unknown_label_word_is_a_clear_error(llama, toy):
    task = bk.Task("mine", ("good", "zyzzyva"), {"causal": "{text_a} it was {mask}"})
    with pytest.raises(bk.LabelWordError, match="zyzzyva"):
        bk.BlackBoxLM(llama, task, toy)
