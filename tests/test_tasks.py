"""Tasks, templates and metrics."""
import dataclasses

import numpy as np
import pytest

import bbtkit as bk
from bbtkit.data.splits import Example
from bbtkit.data.examples import Examples
from bbtkit.data.tasks import score
from bbtkit.model.templates import encode_example, parse_template


def test_all_benchmark_tasks_exist_with_both_templates():
    assert set(bk.TASKS) == {"sst2", "yelp", "agnews", "dbpedia", "mrpc", "snli", "qnli", "qqp"}
    for task in bk.TASKS.values():
        assert set(task.templates) == {"mlm", "causal"}


def test_competition_metrics():
    assert bk.get_task("mrpc").metric == "f1"
    assert bk.get_task("snli").metric == "macro_f1" and bk.get_task("dbpedia").metric == "macro_f1"
    assert bk.get_task("sst2").metric == "accuracy"


def test_unknown_task_suggests_a_close_name():
    with pytest.raises(ValueError, match="Did you mean 'sst2'"):
        bk.get_task("sst")
    assert bk.get_task("SST-2") is bk.get_task("sst2")


@pytest.mark.parametrize("kwargs, message", [
    (dict(label_words=("yes",)), "at least two"),
    (dict(label_words=("a", "a")), "repeat"),
    (dict(templates={"causal": "{text_a} {mask} ."}), "ends with"),
    (dict(templates={"causal": "no fields"}), "must contain"),
    (dict(templates={"seq2seq": "{text_a} {mask}"}), "unknown"),
    (dict(metric="auc"), "metric"),
])
def test_task_validation_messages(kwargs, message):
    base = dict(name="t", label_words=("bad", "good"), templates={"causal": "{text_a} It was {mask}"})
    with pytest.raises(ValueError, match=message):
        bk.Task(**{**base, **kwargs})


def test_metrics_on_hand_computed_cases():
    y, p = [0, 0, 1, 1, 1], [0, 1, 1, 1, 0]
    assert score("accuracy", p, y, 2) == pytest.approx(0.6)
    assert score("f1", p, y, 2) == pytest.approx(2 * 2 / (2 * 2 + 1 + 1))  # tp 2, fp 1, fn 1
    assert score("macro_f1", p, y, 2) == pytest.approx((0.5 + 2 / 3) / 2)
    assert score("macro_f1", [0, 1, 2], [0, 1, 2], 3) == 1.0


def test_parse_template():
    assert parse_template("A {text_a} B {mask}") == [("literal", "A "), ("text_a", ""), ("literal", " B "), ("mask", "")]


def test_causal_encoding_marks_context_prompt_and_answer():
    lm = bk.tiny_model("llama")
    task = bk.Task("t", ("bad", "good"), {"causal": "review : {text_a} . it was {mask}"})
    enc = encode_example(lm, task, Example("a good movie", None, 1), n_prompt=2, position="after")
    words = lm.tokenizer.convert_ids_to_tokens(enc.ids)
    assert words == ["review", ":", "a", "good", "movie", ".", "it", "was"]
    assert enc.context == 5 and enc.prompt == [6, 7] and enc.answer == 7  # the last n tokens, answer included
    enc = encode_example(lm, task, Example("a good movie", None, 1), n_prompt=5, position="after")
    assert len(enc.ids) == 10 and enc.prompt == [5, 6, 7, 8, 9]  # two fillers inserted after the input


def test_mlm_encoding_puts_placeholders_after_the_start_token():
    lm = bk.tiny_model("roberta")
    enc = encode_example(lm, bk.get_task("sst2"), Example("a good movie", None, 1), n_prompt=3, position="before")
    assert enc.ids[0] == lm.tokenizer.bos_token_id and enc.ids[-1] == lm.tokenizer.eos_token_id
    assert enc.prompt == [1, 2, 3] and enc.ids[enc.answer] == lm.tokenizer.mask_token_id


def test_long_inputs_are_truncated_to_max_length():
    lm = bk.tiny_model("llama")
    enc = encode_example(lm, bk.get_task("sst2"), Example("good " * 500, None, 1), max_length=64)
    assert len(enc.ids) <= 64


def test_a_student_defined_task_works_end_to_end(toy):
    lm = bk.tiny_model("gpt2")
    task = bk.Task("opinion", ("bad", "good"), {"causal": "{text_a} . i think it was {mask}"})
    acc = bk.evaluate(lm, task, toy)
    one_by_one = [int(bk.label_logits(lm, task, Examples([ex])).argmax(-1)) for ex in toy]  # no padding, no batch
    assert acc == pytest.approx(np.mean([p == ex.label for p, ex in zip(one_by_one, toy)]))
    other = task.with_template("{text_a} so {mask}", "causal", ("awful", "fun"))
    assert other.words("causal") == ("awful", "fun") and dataclasses.asdict(other)["name"] == "opinion"


def test_labels_default_to_label_words():
    task = bk.Task("t", ("bad", "good"), {"causal": "{text_a} {mask}"})
    assert task.class_names == ("bad", "good")
    assert np.isclose(task.score([1, 1], [1, 0]), 0.5)


def test_mask_text_inside_an_input_does_not_move_the_answer():
    lm = bk.tiny_model("roberta")
    enc = encode_example(lm, bk.get_task("sst2"), Example("a <mask> movie", None, 1))
    assert enc.ids[enc.answer] == lm.tokenizer.mask_token_id
    assert enc.answer > enc.ids.index(lm.tokenizer.mask_token_id)  # the input's own <mask> comes first
