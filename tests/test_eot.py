"""EoT and its baselines: the paper's steps in order, one call each, every text in the trace; runs that
resume, save and reload exactly; the logic checked on a scripted model."""
import dataclasses

import pytest

import bbtkit as bk
from bbtkit.methods import eot
from bbtkit.api.generate import Completion, GenerativeLM
from bbtkit.data.reasoning import Problem, ReasoningSet

PROBLEMS = ReasoningSet("multiarith", "number", [
    Problem("the team had 3 players and 4 more came . how many players ?", "7"),
    Problem("a dog saw 2 cats and 2 more cats . how many cats ?", "4"),
    Problem("she had 10 and gave 3 . how many ?", "7")])
SMALL = eot.EoTConfig.cpu_quick(evolve_tokens=4, select_tokens=2, rewrite_tokens=4, reason_tokens=6, extract_tokens=3, batch=2)
EOT_STEPS = ["crossover", "mutation", "selection", "rewrite", "reasoning", "extraction"]


@pytest.fixture(scope="module")
def lm():
    return bk.tiny_model("llama")


@pytest.mark.parametrize("method", list(eot.CALLS_PER_PROBLEM))
def test_each_method_takes_its_calls_and_keeps_every_steps_text(lm, method):
    res = eot.run_reasoning(lm, PROBLEMS, method, SMALL, display=False)
    assert res.n == 3 and res.calls == eot.CALLS_PER_PROBLEM[method] * 3 and res.stop == "done"
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
    ui = bk.course.widgets.eot_explorer(res)
    assert "QUESTION: the team had 3" in capsys.readouterr().out
    method, problem = ui.widget.children[:2]
    method.value, problem.value = "zero-shot CoT", problem.options[2]
    shown = capsys.readouterr().out
    assert "QUESTION: she had 10" in shown and "── reasoning" in shown and "── crossover" not in shown


# --- issue 29: resume files that are checked, paths checked first, untrusted step text, config fields ---

import json
import os

from hypothesis import given, settings, strategies as st


def _saved(lm, tmp_path, method="zero-shot"):
    path = tmp_path / "run.json"
    eot.run_reasoning(lm, PROBLEMS, method, SMALL, display=False, path=path)
    return path, json.loads(path.read_text())


def _never_called(self, *a, **kw):
    raise AssertionError("a generation ran before the path was checked")


def test_a_resume_file_edited_to_fewer_calls_is_refused(lm, tmp_path, monkeypatch):
    path, doc = _saved(lm, tmp_path)
    monkeypatch.setattr(GenerativeLM, "complete", _never_called)
    path.write_text(json.dumps({**doc, "calls": 0}))
    with pytest.raises(ValueError, match="changed after it was saved"):
        eot.run_reasoning(lm, PROBLEMS, "zero-shot", SMALL, display=False, path=path)
    doc.pop("checksum")                                          # an older file, without a checksum
    path.write_text(json.dumps({**doc, "calls": 0}))
    with pytest.raises(ValueError, match="reports 0 calls, fewer than the 3 its traces record"):
        eot.run_reasoning(lm, PROBLEMS, "zero-shot", SMALL, display=False, path=path)
    path.write_text(json.dumps({**doc, "calls": 4}))             # more than the traces: cannot be checked
    with pytest.raises(ValueError, match="has no checksum"):
        eot.run_reasoning(lm, PROBLEMS, "zero-shot", SMALL, display=False, path=path)
    path.write_text(json.dumps(doc))                              # what its traces record: resumed (nothing left)
    assert eot.run_reasoning(lm, PROBLEMS, "zero-shot", SMALL, display=False, path=path).calls == 3


def test_a_truncated_or_edited_file_is_refused_with_a_sentence(lm, tmp_path):
    path, doc = _saved(lm, tmp_path)
    text = path.read_text()
    path.write_text(text[:len(text) // 2])
    with pytest.raises(ValueError, match="is not a whole JSON file"):
        eot.run_reasoning(lm, PROBLEMS, "zero-shot", SMALL, display=False, path=path)
    with pytest.raises(ValueError, match="is not a whole JSON file"):
        eot.ReasoningResult.load(path)
    doc.pop("checksum")
    for edit, match in [({"calls": "5"}, "field calls must be a whole number"), ({"traces": 5}, "field traces"),
                        ({"seconds": None}, "field seconds"), ({"extra": 1}, r"unknown \['extra'\]"),
                        ({"traces": [{"question": "q"}]}, "trace 0 has no valid answer")]:
        path.write_text(json.dumps({**doc, **edit}))
        with pytest.raises(ValueError, match=match):
            eot.run_reasoning(lm, PROBLEMS, "zero-shot", SMALL, display=False, path=path)
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a saved reasoning result"):
        eot.ReasoningResult.load(path)


def test_a_folder_as_path_is_refused_before_the_first_batch_and_no_temp_file_is_left(lm, tmp_path, monkeypatch):
    folder = tmp_path / "runs"
    folder.mkdir()
    monkeypatch.setattr(GenerativeLM, "complete", _never_called)
    with pytest.raises(ValueError, match="is a folder, not a file"):
        eot.run_eot(lm, PROBLEMS, SMALL, display=False, path=folder)
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ValueError, match="cannot be written"):                 # its folder is a file
        eot.run_eot(lm, PROBLEMS, SMALL, display=False, path=blocker / "run.json")
    assert list(folder.iterdir()) == []


def test_a_failed_save_leaves_no_temp_file(lm, tmp_path, monkeypatch):
    res = eot.run_reasoning(lm, PROBLEMS, "zero-shot", SMALL, display=False)

    def disk_full(*a):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError):
        res.save(tmp_path / "run.json")
    assert list(tmp_path.iterdir()) == []


def unruly(self, prompts, max_new_tokens=128, **kw):
    """A model whose every step writes what a step does not expect."""
    out = []
    for p in prompts:
        if p.startswith(("Cross over", "Mutate")):
            text = "<prompt>Use {foo} and {} and {mask}</prompt>"
        elif "Which of these instructions" in p:
            text = "9" * 5000
        elif p.startswith("Rewrite"):
            text = "the " * 400                                   # the next steps' prompts outgrow the model
        else:
            text = "1e99999 " + "9" * 400
        out.append(Completion(text, 5, "eos"))
    self.calls += len(prompts)
    return out


def test_untrusted_step_text_never_ends_a_run(lm, monkeypatch):
    monkeypatch.setattr(GenerativeLM, "complete", unruly)
    res = eot.run_eot(lm, PROBLEMS, SMALL, display=False)
    assert res.stop == "done" and res.n == 3
    for t in res.traces:
        assert not t["steps"][2]["parsed"] and t["instruction"] == "Use {foo} and {} and {mask}"
        assert [s["output"] for s in t["steps"][4:]] == ["", ""] and len(t["refused"]) == 2
        assert "reads at most 256" in t["refused"][0] and t["prediction"] is None
    assert res.calls == 4 * 3                                      # the two prompts that did not fit were not sent
    assert "NOT SENT" in eot.trace_text(res.traces[0])
    ans = eot.run_reasoning(lm, PROBLEMS, "zero-shot", SMALL, display=False)
    assert [t["prediction"] for t in ans.traces] == ["9" * 400] * 3


def test_seeds_must_be_a_tuple_of_two_strings():
    with pytest.raises(ValueError, match="EoTConfig: seeds must be a tuple .* one character at a time"):
        eot.EoTConfig(seeds="ab")
    with pytest.raises(ValueError, match=r"EoTConfig: seeds\[1\] must be a string"):
        eot.EoTConfig(seeds=("a", 2))
    with pytest.raises(ValueError, match="exactly two seed"):
        eot.EoTConfig(seeds=("a", " "))
    assert eot.EoTConfig(seeds=["a", "b"]).seeds == ("a", "b")


_COUNTS = ("evolve_tokens", "select_tokens", "rewrite_tokens", "reason_tokens", "extract_tokens", "batch")
_BAD = {**{n: st.integers(max_value=0) | st.floats() | st.sampled_from(["8", None, True]) for n in _COUNTS},
        "temperature": st.floats(max_value=-1e-9) | st.sampled_from([float("nan"), float("-inf"), "0", None, False]),
        "seed": st.integers(max_value=-1) | st.sampled_from([0.5, "0", None, True]),
        "seeds": st.text(max_size=6) | st.lists(st.text(min_size=1), max_size=4).filter(lambda s: len(s) != 2)
        | st.sampled_from([("a", 1), ("", "b"), None, 5])}


@settings(max_examples=150, deadline=None)
@given(data=st.data(), name=st.sampled_from(sorted(_BAD)))
def test_any_wrong_field_is_a_value_error_that_names_it(data, name):
    value = data.draw(_BAD[name])
    with pytest.raises(ValueError, match=rf"EoTConfig: .*\b{name}\b"):
        eot.EoTConfig(**{name: value})


@pytest.mark.parametrize("budget", [0, -3, 2.5, "13", True])
def test_a_bad_budget_is_refused_with_a_sentence(lm, budget):
    with pytest.raises(ValueError, match="budget must be a whole number of API calls"):
        eot.run_eot(lm, PROBLEMS, SMALL, display=False, budget=budget)
