"""EvoPrompt's GA and DE over instructions: population size kept, identical instructions never evaluated twice,
the budget kept, operator replies parsed; end to end on a tiny model."""
import dataclasses
import itertools

import numpy as np
import pytest

import bbtkit as bk
from notebook_cells import run_cell
from bbtkit.data.splits import Example, Examples, Split
from bbtkit.methods.evoprompt import (EvoPromptConfig, InstructionFitness, TextEvolution, extract_prompt, run_evoprompt,
                              with_instruction)
from bbtkit.tuning.loop import tune


class FakeLLM:
    """An operator that answers with a few instructions in turn (so that some repeat), bracketed as asked."""

    def __init__(self, pool=("good or bad ?", "is it good ?", "the movie was", "good", "bad")):
        self.pool, self.calls, self.prompts = itertools.cycle(pool), 0, []

    def __call__(self, prompts, **kw):
        self.calls += len(prompts)
        self.prompts += prompts
        return [f"1. Crossover prompt: x\n2. <prompt>{next(self.pool)}</prompt>" for _ in prompts]


def test_operator_replies_are_parsed():
    assert extract_prompt("1. Crossover: a\n2. <prompt>Classify it.</prompt> done") == "Classify it."
    assert extract_prompt("<prompt>Cut off at the tok") == "Cut off at the tok"
    assert extract_prompt('Some reasoning\nFinal prompt: "Label the review."') == "Label the review."
    assert extract_prompt("Some text\nPrompt 2: Read the text and decide.") == "Read the text and decide."
    assert extract_prompt("   \n ") is None


@pytest.mark.parametrize("operator", ["ga", "de"])
def test_the_population_keeps_its_size_and_no_instruction_is_evaluated_twice(operator):
    llm, seen = FakeLLM(), []
    scores = {"good or bad ?": 0.9, "is it good ?": 0.7, "the movie was": 0.4, "good": 0.6, "bad": 0.2}

    def evaluate(X):
        out = []
        for i in np.asarray(X, dtype=int)[:, 0]:
            text = opt.archive[i]
            if text not in cache:
                seen.append(text)
                cache[text] = scores.get(text, 0.5)
            out.append(-cache[text])
        return np.array(out)

    cache = {}
    opt = TextEvolution(llm, ["a start", "another start"], operator, population=4, generations=5, seed=0)
    trace = tune(evaluate, opt, budget=1000)
    assert opt.generation == 5 and trace.stop == {"generations": 5}
    assert len(opt.pop) == 4 and len(set(opt.pop)) == 4
    assert len(seen) == len(set(seen)) == len(opt.archive)  # each instruction once
    best = [r["population_best"] for r in trace.history]
    assert best == sorted(best) and opt.fitness[opt.best] == 0.9  # elitist: the best never gets lost
    assert len(opt.log) == llm.calls and all("child" in op for op in opt.log)


def test_a_run_keeps_the_budget_and_its_result_re_evaluates(tmp_path):
    lm = bk.tiny_model("gpt2")
    ex = Examples([Example(t, None, y) for t, y in [("good fun", 1), ("awful", 0), ("the best", 1), ("boring", 0)]])
    split = Split("sst2", 0, ex, ex, ex)
    cfg = EvoPromptConfig(population=3, generations=10, budget=15, max_new_tokens=6, seed=1)
    res = run_evoprompt(lm, "sst2", split, cfg, display=False)
    assert res.api_calls <= 15 and res.api_calls == res.extra["generation_calls"] + res.extra["fitness_calls"]
    assert res.extra["fitness_calls"] == len(res.extra["archive"])  # one call per distinct instruction
    again = bk.load_result(res.save(tmp_path / "evo"))
    assert again.task_definition.templates["causal"].startswith(res.extra["instruction"])
    assert bk.evaluate(lm, again.task_definition, split.test) == res.test_metric
    fit = InstructionFitness(lm, bk.get_task("sst2"), ex)
    assert fit("good or bad ?") == fit("good or bad ?") and fit.calls == 1
    assert with_instruction(bk.get_task("sst2"), "Hi.", "causal").templates["causal"].startswith("Hi.\nReview:")


def test_bad_settings_say_what_to_change():
    with pytest.raises(ValueError, match="operator must be"):
        EvoPromptConfig(operator="pso")
    with pytest.raises(ValueError, match="budget of at least"):
        EvoPromptConfig(population=10, budget=12)


def test_without_a_generation_limit_the_run_spends_its_budget():
    """cpu_quick has generations=None, so at the leaderboard's budget EvoPrompt meets the others at equal calls."""
    lm = bk.tiny_model("gpt2")
    ex = Examples([Example(t, None, y) for t, y in [("good fun", 1), ("awful", 0)]])
    split = Split("sst2", 0, ex, ex, ex)
    cfg = dataclasses.replace(EvoPromptConfig.cpu_quick(seed=3), population=3, budget=30, max_new_tokens=6)
    assert EvoPromptConfig.cpu_quick().generations is None
    res = run_evoprompt(lm, "sst2", split, cfg, display=False, evaluate_test=False)
    assert 30 - 2 * cfg.population < res.api_calls <= 30 and "budget" in str(res.stop)


def test_notebook_10s_plain_loop_is_run_evoprompt():
    """The GA loop notebook 10 shows, its cell run as committed on a tiny model (at the smoke budget: tiny-gpt2
    reads 256 positions), is the loop run_evoprompt runs: the same archive, the same best, the same calls."""
    lm, task = bk.tiny_model("gpt2"), bk.get_task("sst2")
    ex = Examples([Example(t, None, y) for t, y in [("good fun", 1), ("awful", 0), ("the best", 1), ("boring", 0)]])
    split = Split("sst2", 0, ex, ex, ex)
    ns = run_cell("10_evolving_prompts.ipynb", "opt.tell(X, -scores)", lm=lm, task=task, split=split, SMOKE=True)
    res = run_evoprompt(lm, task, split, ns["cfg"], display=False, evaluate_test=False)
    opt = ns["opt"]
    assert ns["llm"].calls > 0  # the LLM was asked for children
    assert opt.archive == [a["instruction"] for a in res.extra["archive"]]
    assert opt.archive[opt.best] == res.extra["instruction"]
    assert ns["llm"].calls + ns["fitness"].calls == res.api_calls


# --- issue 29: an operator's text never ends a run; configs refuse bad fields with a sentence ---

from hypothesis import given, settings, strategies as st

from bbtkit.api.generate import GenerativeLM

BROKEN = ("Say {foo}", "Fill in {}", "Answer {mask}")


@pytest.mark.parametrize("operator", ["ga", "de"])
def test_an_operator_child_that_would_break_the_template_is_discarded_and_counted(operator):
    llm = FakeLLM(pool=BROKEN + ("good or bad ?",))
    opt = TextEvolution(llm, ["a start", "another start", "a third"], operator, population=3, generations=4, seed=0)
    trace = tune(lambda X: np.zeros(len(X)), opt, budget=1000)
    assert trace.stop == {"generations": 4} and opt.invalid > 0
    assert not any("{" in text for text in opt.archive)
    bad = [op for op in opt.log if "invalid" in op]
    assert len(bad) == opt.invalid and {op["discarded"] for op in bad} <= set(BROKEN)
    assert all(op["child"] == op["parents"][-1] and "{" in op["invalid"] for op in bad)


@pytest.mark.parametrize("operator", ["ga", "de"])
def test_a_run_whose_operator_writes_only_broken_instructions_still_returns_a_result(operator, monkeypatch):
    replies = itertools.cycle(f"<prompt>{b}</prompt>" for b in BROKEN)
    monkeypatch.setattr(GenerativeLM, "__call__", lambda self, prompts, **kw: (
        setattr(self, "calls", self.calls + len(prompts)) or [next(replies) for _ in prompts]))
    ex = Examples([Example(t, None, y) for t, y in [("good fun", 1), ("awful", 0)]])
    cfg = EvoPromptConfig(operator=operator, population=3, generations=3, budget=40, initial=("Classify it.",), seed=2)
    res = run_evoprompt(bk.tiny_model("gpt2"), "sst2", Split("sst2", 0, ex, ex, ex), cfg, display=False,
                        evaluate_test=False)
    assert res.extra["instruction"] == "Classify it." and res.extra["invalid_children"] == res.extra["generation_calls"] > 0
    assert all(op["invalid"] for op in res.extra["operations"]) and len(res.extra["archive"]) == 1


def test_initial_must_be_a_tuple_of_usable_instructions():
    with pytest.raises(ValueError, match=r"EvoPromptConfig: initial must be a tuple .* one character at a time"):
        EvoPromptConfig(initial="Classify it")
    with pytest.raises(ValueError, match=r"EvoPromptConfig: initial\[0\] must be a string, not int 5"):
        EvoPromptConfig(initial=(5, 6, 7))
    with pytest.raises(ValueError, match=r"initial\[1\] 'Say \{foo\}' cannot start the search: it holds \{foo\}"):
        EvoPromptConfig(initial=("Fine.", "Say {foo}"))
    with pytest.raises(ValueError, match=r"initial\[0\] '  ' cannot start the search: it is empty"):
        EvoPromptConfig(initial=("  ",))
    with pytest.raises(ValueError, match="list of one or more starting instructions"):
        TextEvolution(FakeLLM(), "Classify it", population=3)
    assert EvoPromptConfig(initial=["Classify it.", "Read {text_a}"]).initial == ("Classify it.", "Read {text_a}")


_GOOD = {"operator": "ga", "population": 10, "generations": 10, "budget": 300, "temperature": 0.5,
         "max_new_tokens": 96, "initial": (), "seed": 42}
_BAD = {"operator": st.text(max_size=5).filter(lambda s: s not in ("ga", "de")) | st.sampled_from([None, 1, ("ga",)]),
        "population": st.integers(max_value=2) | st.floats() | st.sampled_from(["10", True, None]),  # any float
        "generations": st.integers(max_value=0) | st.sampled_from([2.5, "3", False]),
        "budget": st.integers(max_value=19) | st.sampled_from([25.5, "300", True, None]),
        "temperature": st.floats(max_value=-1e-9) | st.sampled_from([float("nan"), float("inf"), "0.5", None, True]),
        "max_new_tokens": st.integers(max_value=0) | st.sampled_from([2.5, "5", None, False]),
        "initial": st.text(min_size=1, max_size=6) | st.lists(st.integers(), min_size=1, max_size=3)
        | st.sampled_from([("{mask}",), ("",), 5, None]),
        "seed": st.integers(max_value=-1) | st.sampled_from([1.5, "42", None, True])}


@settings(max_examples=150, deadline=None)
@given(data=st.data(), name=st.sampled_from(sorted(_BAD)))
def test_any_wrong_field_is_a_value_error_that_names_it(data, name):
    value = data.draw(_BAD[name])
    with pytest.raises(ValueError, match=rf"EvoPromptConfig: .*\b{name}\b"):
        EvoPromptConfig(**{**_GOOD, name: value})
