"""EoT and its baselines: the paper's steps in order, one call each, every text in the trace; runs that
resume, save and reload exactly; the logic checked on a scripted model."""
import dataclasses

import pytest

import bbtkit as bk
from bbtkit import eot
from bbtkit.generate import Completion, GenerativeLM
from bbtkit.reasoning import Problem, ReasoningSet

PROBLEMS = ReasoningSet("multiarith", "number", [
    Problem("the team had 3 players and 4 more came . how many players ?", "7"),
    Problem("a dog saw 2 cats and 2 more cats . how many cats ?", "4"),
    Problem("she had 10 and gave 3 . how many ?", "7")])
SMALL = eot.EoTConfig.cpu_quick(evolve_tokens=4, select_tokens=2, rewrite_tokens=4, reason_tokens=6, extract_tokens=3, batch=2)
EOT_STEPS = ["crossover", "mutation", "selection", "rewrite", "reasoning", "extraction"]


@pytest.fixture(scope="module")
def lm():
    return bk.tiny_model("llama")


@pytest.mark.parametrize("method", list(eot.METHODS))
def test_each_method_takes_its_calls_and_keeps_every_steps_text(lm, method):
    res = eot.run_reasoning(lm, PROBLEMS, method, SMALL, display=False)
    assert res.n == 3 and res.calls == eot.METHODS[method] * 3 and res.stop == "done"
    steps = {"eot": EOT_STEPS, "zero-shot": ["answer"]}.get(method, ["reasoning", "extraction"])
    for t, p in zip(res.traces, PROBLEMS):
        assert [s["step"] for s in t["steps"]] == steps
        assert all(isinstance(s["prompt"], str) and isinstance(s["output"], str) for s in t["steps"])
        assert p.question in t["steps"][0]["prompt"] and t["answer"] == p.answer
    if method == "eot":
        options = res.traces[0]["steps"][2]["options"]
        assert len(options) == 4 and tuple(options[:2]) == SMALL.seeds
    assert res.prompt_tokens > 0 and res.completion_tokens > 0


def test_a_run_is_deterministic_saves_and_reloads_exactly(lm, tmp_path):
    a = eot.run_eot(lm, PROBLEMS, SMALL, display=False)
    b = eot.run_eot(lm, PROBLEMS, SMALL, display=False)
    assert a.traces == b.traces
    again = eot.ReasoningResult.load(a.save(tmp_path / "eot.json"))
    assert again == a and again.accuracy == a.accuracy


def test_an_interrupted_run_keeps_its_problems_and_resumes_from_its_file(lm, tmp_path, monkeypatch):
    whole = eot.run_eot(lm, PROBLEMS, SMALL, display=False)
    real, seen = GenerativeLM.complete, []

    def stop_in_second_batch(self, prompts, *a, **kw):
        seen.append(len(prompts))
        if len(seen) == 8:  # the second batch's second step
            raise KeyboardInterrupt
        return real(self, prompts, *a, **kw)

    monkeypatch.setattr(GenerativeLM, "complete", stop_in_second_batch)
    path = tmp_path / "run.json"
    part = eot.run_eot(lm, PROBLEMS, SMALL, display=False, path=path)
    assert part.stop == "interrupted" and part.n == 2 and part.calls == 6 * 2 + 1
    monkeypatch.setattr(GenerativeLM, "complete", real)
    done = eot.run_eot(lm, PROBLEMS, SMALL, display=False, path=path)
    assert done.stop == "done" and done.traces == whole.traces and done.calls == whole.calls + 1
    with pytest.raises(ValueError, match="holds another run"):
        eot.run_reasoning(lm, PROBLEMS, "zero-shot-cot", SMALL, display=False, path=path)


def scripted(self, prompts, max_new_tokens=128, **kw):
    """A model that follows every instruction: the steps' logic, without a model's whims."""
    out = []
    for p in prompts:
        if p.startswith("Cross over"):
            text = "Combined: <prompt>Plan, then think step by step.</prompt>"
        elif p.startswith("Mutate"):
            text = "<prompt>Plan, think step by step, then check.</prompt>"
        elif "Which of these instructions" in p:
            text = "3" if "dog" not in p else "I pick instruction 9"   # 9 does not exist: the mutant
        elif p.startswith("Rewrite"):
            text = "REWRITTEN " + p.split("Problem: ")[-1]
        elif p.endswith(eot.TRIGGERS["number"]):
            text = " 7." if "dog" not in p else " 1,004 cats"
        else:
            text = "First 3 + 4 = 7."
        out.append(Completion(text, 5, "eos"))
    self.calls += len(prompts)
    return out


def test_the_steps_logic_on_a_model_that_follows_instructions(lm, monkeypatch):
    monkeypatch.setattr(GenerativeLM, "complete", scripted)
    res = eot.run_eot(lm, PROBLEMS, SMALL, display=False)
    first, dog, third = res.traces
    assert first["instruction"] == "Plan, then think step by step."                    # choice 3: the child
    assert dog["instruction"] == "Plan, think step by step, then check."               # unreadable: the mutant
    assert not dog["steps"][2]["parsed"] and first["steps"][2]["parsed"]
    assert first["steps"][4]["prompt"].startswith("Q: REWRITTEN the team had 3")       # reasoning on the rewrite
    assert first["steps"][4]["prompt"].endswith("A: Plan, then think step by step.")
    assert "First 3 + 4 = 7." in first["steps"][5]["prompt"]                           # extraction sees the reasoning
    assert [t["prediction"] for t in res.traces] == ["7", "1004", "7"]
    assert [t["correct"] for t in res.traces] == [True, False, True] and res.accuracy == pytest.approx(2 / 3)
    cot = eot.run_reasoning(lm, PROBLEMS, "plan-and-solve", SMALL, display=False)
    assert cot.traces[0]["steps"][0]["prompt"] == f"Q: {PROBLEMS[0].question}\nA: {eot.PLAN_AND_SOLVE}"


def test_bad_input_says_what_to_do(lm):
    with pytest.raises(ValueError, match="Unknown method"):
        eot.run_reasoning(lm, PROBLEMS, "cot", SMALL)
    with pytest.raises(ValueError, match="non-empty ReasoningSet"):
        eot.run_eot(lm, PROBLEMS[:0], SMALL)
    with pytest.raises(ValueError, match="exactly two seed"):
        dataclasses.replace(SMALL, seeds=("only one",))
    with pytest.raises(ValueError, match="masked LM"):
        eot.run_eot(bk.tiny_model("roberta"), PROBLEMS, SMALL)
    res = eot.run_eot(lm, PROBLEMS, SMALL, display=False, budget=13)  # a budget that runs out keeps what it found
    assert res.stop == "budget" and res.n == 2 and res.calls == 13   # whole batches only: 2 problems of 6 calls, 1 spent


def test_trace_text_and_the_explorer_show_every_step(lm, monkeypatch, capsys):
    monkeypatch.setattr(GenerativeLM, "complete", scripted)
    res = {"EoT": eot.run_eot(lm, PROBLEMS, SMALL, display=False),
           "zero-shot CoT": eot.run_reasoning(lm, PROBLEMS, "zero-shot-cot", SMALL, display=False)}
    text = eot.trace_text(res["EoT"].traces[1])
    assert all(f"── {step} " in text for step in EOT_STEPS)
    assert "reply unreadable: the mutant" in text and "wrong (gold 4)" in text
    ui = bk.widgets.eot_explorer(res)
    assert "QUESTION: the team had 3" in capsys.readouterr().out
    method, problem = ui.widget.children[:2]
    method.value, problem.value = "zero-shot CoT", problem.options[2]
    shown = capsys.readouterr().out
    assert "QUESTION: she had 10" in shown and "── reasoning" in shown and "── crossover" not in shown
