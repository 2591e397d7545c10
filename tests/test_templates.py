"""bbtkit.model.templates: from an example to token ids, with the prompt and answer positions where they belong."""
import pytest
import torch

import bbtkit as bk
from bbtkit.data.splits import Example
from bbtkit.model.templates import (Encoded, _move_spaces, pad_batch, parse_template, placeholder_ids,
                              encode_example, resolve_position)

TASK = bk.get_task("sst2")


def test_a_template_splits_into_literals_and_fields():
    assert parse_template("Review: {text_a} It was {mask}.") == [
        ("literal", "Review: "), ("text_a", ""), ("literal", " It was "), ("mask", ""), ("literal", ".")]
    assert parse_template("{text_a}{text_b}") == [("text_a", ""), ("text_b", "")]


def test_a_literals_trailing_space_moves_onto_the_field_and_is_dropped_before_the_answer():
    assert _move_spaces(parse_template("Review: {text_a} It was {mask}")) == [
        ("literal", "Review:"), ("text_a", " "), ("literal", " It was"), ("mask", "")]


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_a_prompt_after_the_input_ends_at_the_answer_and_leaves_the_context_alone(arch):
    lm = bk.tiny_model(arch)
    ex = Example("a fine film", None, 1)
    plain = encode_example(lm, TASK, ex, 0, "after")
    enc = encode_example(lm, TASK, ex, 3, "after")
    assert enc.prompt == [enc.answer - 2, enc.answer - 1, enc.answer] and enc.answer == len(enc.ids) - 1 - len(lm.special_ids()[1])
    assert enc.ids[:enc.context] == plain.ids[:plain.context]  # what comes before the prompt is the same
    tail = len(plain.ids) - plain.context
    many = encode_example(lm, TASK, ex, tail + 4, "after")  # longer than the template's tail: fillers after the input
    assert len(many.ids) == len(plain.ids) + 4 and many.prompt[-1] == many.answer


def test_a_prompt_before_the_input_is_n_placeholders_after_the_special_tokens():
    lm = bk.tiny_model("roberta")
    enc = encode_example(lm, TASK, Example("a fine film", None, 1), 4, "before")
    start = len(lm.special_ids()[0])
    assert enc.prompt == list(range(start, start + 4))
    assert enc.ids[start:start + 4] == placeholder_ids(lm, 4)
    assert enc.ids[enc.answer] == lm.tokenizer.mask_token_id


def test_long_inputs_are_cut_to_max_length_and_the_cut_is_counted():
    lm = bk.tiny_model("llama")
    short = encode_example(lm, TASK, Example("good", None, 1), 2, "after", max_length=40)
    long = encode_example(lm, TASK, Example("good " * 200, None, 1), 2, "after", max_length=40)
    assert len(long.ids) <= 40 and long.cut > 150 and short.cut == 0
    assert long.ids[long.context:] == short.ids[short.context:]  # the template's tail and the answer survive


def test_positions_and_padding_refuse_what_they_cannot_do():
    assert resolve_position(bk.tiny_model("bert"), "auto") == "before"
    assert resolve_position(bk.tiny_model("gpt2"), "auto") == "after"
    with pytest.raises(ValueError, match="need a causal LM"):
        resolve_position(bk.tiny_model("bert"), "after")
    with pytest.raises(ValueError, match="position must be"):
        resolve_position(bk.tiny_model("gpt2"), "middle")
    with pytest.raises(ValueError, match="padding side"):
        pad_batch([Encoded([1], 0, [], 0)], 0, "top")


@pytest.mark.parametrize("side", ["left", "right"])
def test_padding_shifts_the_answer_and_prompt_indices_with_the_tokens(side):
    encs = [Encoded([5, 6, 7, 8], 3, [1, 2], 1), Encoded([9, 10], 1, [0, 1], 0)]
    b = pad_batch(encs, pad_id=0, side=side)
    assert b.ids.shape == (2, 4) and b.mask.sum(1).tolist() == [4, 2]
    for r, e in enumerate(encs):
        assert b.ids[r, b.answer[r]] == e.ids[e.answer]
        assert b.ids[r, b.prompt[r]].tolist() == [e.ids[i] for i in e.prompt]
    assert b.ids[1].tolist() == ([0, 0, 9, 10] if side == "left" else [9, 10, 0, 0])
    assert torch.equal(b.mask[1], torch.tensor([0, 0, 1, 1] if side == "left" else [1, 1, 0, 0]))
