"""Reasoning sets load, and answers are read out of free text as the extraction step needs."""
import pytest

import bbtkit as bk
from bbtkit.reasoning import KINDS, extract_answer, is_correct


@pytest.mark.parametrize("text, first, last", [
    ("Therefore, the answer is 39.", "39", "39"),
    ("The answer is -7 degrees.", "-7", "-7"),
    ("It costs $1,234.50 in total.", "1234.5", "1234.5"),
    ("She has 3 apples, then 12 more: 15 apples.", "3", "15"),
    ("The temperature fell to −4 °C from 2.0", "-4", "2"),
    ("There are five cats and 2 dogs.", "5", "2"),
    ("1,000,000 people, or 12,5 liters", "1000000", "5"),  # 12,5 is not a thousands separator
    ("version2 has 10 km", "10", "10"),                    # a digit inside a word is not a number
    ("No number here.", None, None),
])
def test_numbers_with_negatives_commas_and_units(text, first, last):
    assert extract_answer(text, "number") == first
    assert extract_answer(text, "number", which="last") == last


def test_yes_no_letters_and_choices():
    assert extract_answer("Yes, the coin is still heads up.", "yes_no") == "yes"
    assert extract_answer("The coin is not heads up, so no.", "yes_no") == "no"
    assert extract_answer("I know nothing", "yes_no") is None      # "know" and "nothing" are not "no"
    assert extract_answer('"yajo".', "letters") == "yajo"
    assert extract_answer("Among A through E, the answer is (C).", "choice") == "A"
    assert extract_answer("Among A through E, the answer is (C).", "choice", which="last") == "C"
    assert extract_answer("I think", "choice") is None
    with pytest.raises(ValueError, match="Unknown answer kind"):
        extract_answer("1", "integer")


def test_is_correct_compares_numbers_as_numbers():
    assert is_correct("39", "39", "number") and is_correct("39.0", "39", "number") and is_correct("1234", "1,234", "number")
    assert not is_correct(None, "39", "number") and not is_correct("40", "39", "number")
    assert is_correct("Yes", "yes", "yes_no") and not is_correct("yajc", "yajo", "letters")


def test_every_set_loads_with_answers_of_its_kind():
    for name, kind in KINDS.items():
        problems = bk.load_reasoning(name)
        assert len(problems) > 300 and problems.kind == kind
        golds = [p.answer for p in problems]
        assert all(extract_answer(g, kind) is not None for g in golds), name
        assert all(is_correct(extract_answer(g, kind), g, kind) for g in golds), name
    few = bk.load_reasoning("multiarith", n=5, seed=1)
    assert len(few) == 5 and few.problems == bk.load_reasoning("multiarith", n=5, seed=1).problems
    with pytest.raises(ValueError, match="the sets are multiarith"):
        bk.load_reasoning("aqua")
