"""A task of one's own, from a folder in the homework's layout: load, check, tune, save, reload, re-evaluate."""
import dataclasses
import json
import warnings

import numpy as np
import pytest

import bbtkit as bk
from bbtkit.guards import InputsCutWarning
from bbtkit.tuning.result_builder import TaskMismatchWarning

PAIRS = [("the man went to the city", "a man is in the city", 0), ("a dog", "a cat", 1),
         ("the team won the game", "the team is good", 0), ("i love this film", "i hate this film", 1),
         ("the movie was fun", "the film was fun", 0), ("she saw a car", "she saw a house", 1),
         ("the market is good", "the price is good", 1), ("they went to the game", "they saw the game", 0)]
ENT = bk.Task("toyent", ("yes", "no"), {"causal": "Premise: {text_a}\nHypothesis: {text_b}\nTrue? {mask}",
                                        "mlm": "{text_a} ? {mask} , {text_b}"}, labels=("entailment", "not"))


def write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"text_a": a, "text_b": b, "label": y}) + "\n" for a, b, y in rows))


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """data/toyent/ laid out as the homework says, with $BBTKIT_DATA pointing at data/."""
    root = tmp_path / "data" / "toyent"
    write(root / "test.jsonl", PAIRS)
    for seed in (1, 2):
        write(root / "fewshot" / f"2-{seed}" / "train.jsonl", PAIRS[:2] + PAIRS[2:4])
        write(root / "fewshot" / f"2-{seed}" / "dev.jsonl", PAIRS[4:8])
    monkeypatch.setenv("BBTKIT_DATA", str(tmp_path / "data"))
    return root


def test_load_split_takes_the_task_its_name_and_its_folder(folder):
    by_task = bk.load_split(ENT, seed=1, k=2)
    by_path = bk.load_split(folder, seed=1, k=2)
    by_text = bk.load_split(str(folder), seed=1, k=2)
    by_name = bk.load_split("toyent", seed=1, k=2)
    for s in (by_path, by_text, by_name):
        assert s.task == "toyent" and list(s.test) == list(by_task.test) and list(s.train) == list(by_task.train)
    assert len(by_task.train) == 4 and by_task.test[1].text_b == "a cat"


def test_unknown_names_say_how_to_define_a_task_and_where_its_data_goes(folder):
    with pytest.raises(ValueError) as e:
        bk.load_split("rte")
    msg = str(e.value)
    assert "bk.Task('rte'" in msg and "fewshot/16-SEED/train.jsonl" in msg and "load_split('path/to/rte')" in msg
    with pytest.raises(ValueError, match="Did you mean 'sst2'") as e:
        bk.load_split("sst")
    rte = dataclasses.replace(ENT, name="rte")
    with pytest.raises(ValueError) as e:
        bk.load_split(rte)
    assert "Unknown task 'rte'" in str(e.value) and "templates=" in str(e.value) and "Task(name=" not in str(e.value)
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        bk.load_split(folder.parent / "nothing-here")


def test_labels_outside_the_tasks_classes_are_refused(folder):
    write(folder / "fewshot" / "2-1" / "dev.jsonl", PAIRS[4:7] + [("a", "b", 2)])
    with pytest.raises(ValueError, match="the task has 2 labels"):
        bk.load_split(ENT, seed=1, k=2)


def test_bbt_on_a_task_of_ones_own_saves_reloads_with_its_definition_and_re_evaluates(folder, tmp_path):
    lm = bk.tiny_model("gpt2")
    split = bk.load_split(ENT, seed=1, k=2)
    cfg = dataclasses.replace(bk.BBTConfig.cpu_quick(seed=3), n_prompt_tokens=2, intrinsic_dim=8, popsize=4,
                              budget=12, eval_every=4)
    res = bk.run_bbt(lm, ENT, split, cfg, display=False)
    loaded = bk.load_result(res.save(tmp_path / "run"), task=ENT)
    assert loaded.task == "toyent" and loaded.task_definition == ENT
    again = bk.evaluate(lm, loaded.task_definition, split.test, loaded.prompt, position=loaded.position)
    assert again == res.test_metric is not None
    other = ENT.with_template("Premise: {text_a}\nHypothesis: {text_b}\nSo? {mask}")
    with pytest.warns(TaskMismatchWarning, match="templates"):
        bk.load_result(tmp_path / "run", task=other)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bk.load_result(tmp_path / "run", task=ENT)  # the same definition: no warning


def test_task_definitions_round_trip_through_json():
    for task in [*bk.TASKS.values(), ENT]:
        again = bk.Task.from_dict(json.loads(json.dumps(task.to_dict())))
        assert again.to_dict() == task.to_dict() and again.differences(task) == []
    assert ENT.differences(dataclasses.replace(ENT, metric="f1")) == ["metric: 'accuracy' != 'f1'"]


def test_inputs_longer_than_max_length_give_one_warning_with_the_count():
    lm = bk.tiny_model("gpt2")
    long = " ".join(["the good movie"] * 30)  # 90 words
    ex = bk.Examples([bk.Example(long, "a dog", 0), bk.Example("a dog", "a cat", 1), bk.Example(long, "x", 1)], "mixed")
    with pytest.warns(InputsCutWarning, match=r"2 of 3 examples of mixed are longer than max_length=40") as rec:
        api = bk.BlackBoxLM(lm, ENT, ex, max_length=40)
        api(np.zeros((2, 3, lm.hidden_size)))
        api(np.zeros((2, 3, lm.hidden_size)))
    assert len([w for w in rec if w.category is InputsCutWarning]) == 1
    with pytest.warns(InputsCutWarning, match="2 of 3") as rec:
        bk.evaluate(lm, ENT, ex, max_length=40, batch_size=1)
    assert rec[0].filename == __file__  # the warning names the caller's line, not one inside bbtkit or torch
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bk.evaluate(lm, ENT, ex)  # 256 tokens hold them: no warning


def test_the_folder_checker_finds_what_is_wrong_and_what_to_beat(folder):
    report = bk.check_task_folder(folder, ENT, bk.tiny_model("gpt2"))
    assert report.ok, str(report)
    assert ("fewshot/2-1/train.jsonl", 4, [2, 2]) in report.rows and "chance 0.500" in str(report)
    (folder / "fewshot" / "2-2" / "dev.jsonl").unlink()
    write(folder / "test.jsonl", PAIRS[:3] + [("no second text", None, 1), ("a", "b", 5)])
    bad = bk.check_task_folder("toyent", ENT)
    text = str(bad)
    assert not bad.ok and "fewshot/2-2/dev.jsonl is missing" in text
    assert "labels [5] outside 0..1" in text and "1 examples have no text_b" in text
    nowhere = bk.check_task_folder(folder.parent / "absent", ENT)
    assert not nowhere.ok and "is not a folder" in str(nowhere)


def test_reference_scores_are_chance_and_the_majority_class():
    ex = bk.Examples([bk.Example("a", None, y) for y in [0, 0, 0, 1]])
    ref = bk.reference_scores("sst2", ex)
    assert ref == {"chance": 0.5, "majority": 0.75}
    f1 = bk.reference_scores(dataclasses.replace(ENT, metric="f1"), ex)
    assert f1["majority"] == 0.0  # always class 0: no true positive of class 1
    assert abs(f1["chance"] - 0.30625) < 0.03  # the mean F1 over all 16 equally likely guesses


# --- what the checker and the reference scores must not miss (issue 29, items 14, 15, 17, 26, 29) -------
def test_the_folder_checker_reports_class_count_copies_and_a_max_length_too_small(folder):
    lm = bk.tiny_model("gpt2")
    (folder / "labels.json").write_text('["entailment", "neutral", "contradiction"]')
    report = bk.check_task_folder(folder, ENT)
    assert "labels.json names 3 classes, but task 'toyent' has 2" in str(report)
    (folder / "labels.json").write_text('["entailment", "not"]')
    write(folder / "fewshot" / "2-1" / "dev.jsonl", PAIRS[:4])  # the same examples as its train.jsonl
    write(folder / "train.jsonl", PAIRS)                       # the same as test.jsonl
    text = str(bk.check_task_folder(folder, ENT))
    assert "fewshot/2-1/dev.jsonl holds the same examples as fewshot/2-1/train.jsonl" in text
    assert "test.jsonl holds the same examples as train.jsonl" in text
    assert "fewshot/2-2/dev.jsonl holds" not in text  # its own dev is other data
    (folder / "train.jsonl").unlink()
    write(folder / "fewshot" / "2-1" / "dev.jsonl", PAIRS[4:8])
    assert bk.check_task_folder(folder, ENT, lm).ok
    write(folder / "test.jsonl", [(" ".join([a] * 10), b, y) for a, b, y in PAIRS])  # every input over 24 tokens
    short = bk.check_task_folder(folder, ENT, lm, max_length=24)
    assert not short.ok and "test.jsonl: every input is longer than max_length=24" in str(short)
    tiny = bk.check_task_folder(folder, ENT, lm, max_length=2)
    assert "max_length=2 is too small for the template" in str(tiny)
    with pytest.raises(ValueError, match="max_length must be a whole number"):
        bk.check_task_folder(folder, ENT, max_length=0)


def test_a_negative_label_is_a_problem_in_the_report_not_a_numpy_error(folder):
    write(folder / "test.jsonl", PAIRS[:3] + [("a dog", "a cat", -1)])
    report = bk.check_task_folder(folder, ENT)
    assert not report.ok and "test.jsonl has labels [-1] outside 0..1" in str(report)
    assert "to beat on test" not in str(report)  # no reference scores from labels the task does not have


def test_reference_scores_refuse_no_draws_and_labels_of_another_task():
    ex = bk.Examples([bk.Example("a", None, y) for y in [0, 0, 1]])
    with pytest.raises(ValueError, match="draws must be a whole number >= 1, not 0"):
        bk.reference_scores(dataclasses.replace(ENT, metric="f1"), ex, draws=0)
    with pytest.raises(ValueError, match="draws"):
        bk.reference_scores("sst2", ex, draws=0)
    agnews_like = bk.Examples([bk.Example("a", None, y) for y in [0, 1, 2, 3]])
    with pytest.raises(ValueError, match=r"labels \[2, 3\] outside 0..1, the 2 classes of task 'sst2'"):
        bk.reference_scores("sst2", agnews_like)


def test_a_result_loaded_for_another_model_warns(tmp_path):
    from bbtkit.guards import ModelMismatchWarning
    from bbtkit.tuning.projection import Projection
    from bbtkit.tuning.results import Result

    res = Result(method="bbt", task="sst2", model="tiny-gpt2", config={}, z=np.zeros((1, 4)),
                 projections=[Projection(4, 2 * 32, 0)], n_tokens=2, hidden=32, layers=[0], num_layers=2,
                 position="after")
    path = res.save(tmp_path / "run")
    with pytest.warns(ModelMismatchWarning, match="tuned with model 'tiny-gpt2', not 'tiny-llama'") as rec:
        bk.load_result(path, model=bk.tiny_model("llama"))
    assert rec[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bk.load_result(path, task="sst2", model=bk.tiny_model("gpt2"))  # the same model: no warning


def test_download_without_datasets_prints_one_sentence_and_fails(tmp_path, monkeypatch, capsys):
    import sys
    from bbtkit.__main__ import main

    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets raises ImportError
    assert main(["download", "sst2", "--dest", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "needs the `datasets` package: pip install datasets" in err and "Traceback" not in err
