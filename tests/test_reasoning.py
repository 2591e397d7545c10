"""Reasoning sets load, and answers are read out of free text as the extraction step needs."""
import pytest

import bbtkit as bk
from bbtkit.data.reasoning import KINDS, extract_answer, is_correct


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


# --- issue 29: numbers read whole and exactly, any text read without an exception, bad arguments refused ---

from decimal import Decimal

from hypothesis import given, settings, strategies as st


def test_number_words_in_a_compound_are_not_read_as_digits():
    assert extract_answer("twenty-one", "number") is None                      # not 20, not 1
    assert extract_answer("twenty-one apples and 3 pears", "number") == "3"
    assert extract_answer("one-third of them", "number", which="last") is None
    assert extract_answer("twenty apples", "number") == "20"                    # a word standing alone is read


def test_scientific_notation_is_read_whole_never_a_prefix():
    assert extract_answer("1.5e3", "number") == "1500"
    assert extract_answer("1e400", "number") == "1" + "0" * 400
    assert extract_answer("about 2.5E-3 m", "number") == "0.0025"
    assert extract_answer("1e99999 or 7", "number") == "7"                     # too large to spell: not read at all
    assert is_correct(extract_answer("1e400", "number"), "1" + "0" * 400, "number")


def test_an_unknown_which_or_a_text_that_is_not_a_string_is_a_value_error():
    with pytest.raises(ValueError, match="which must be 'first' or 'last', not 'middle'"):
        extract_answer("1 and 2", "number", which="middle")
    with pytest.raises(ValueError, match="text must be a string"):
        extract_answer(None, "number")


def test_a_long_number_is_read_exactly():
    assert extract_answer("9" * 400, "number") == "9" * 400
    assert extract_answer("12345678901234567890.25", "number") == "12345678901234567890.25"
    assert is_correct("9" * 400, "9" * 400, "number") and not is_correct("9" * 400, "8" * 400, "number")


@pytest.mark.parametrize("n", [-1, 0, 2.5, "3", True])
def test_load_reasoning_refuses_a_bad_n_with_a_sentence(n):
    with pytest.raises(ValueError, match=r"n must be a whole number of at least 1"):
        bk.load_reasoning("multiarith", n=n)


def test_sample_refuses_a_bad_seed():
    few = bk.data.reasoning.ReasoningSet("x", "number", [bk.data.reasoning.Problem("q", "1")] * 3)
    with pytest.raises(ValueError, match="seed must be a whole number of at least 0"):
        few.sample(2, seed=-1)


_WRITTEN = st.one_of(st.integers(min_value=-10 ** 600, max_value=10 ** 600).map(str),
                     st.decimals(min_value=-10 ** 30, max_value=10 ** 30, allow_nan=False, allow_infinity=False,
                                 places=12).map(lambda d: format(d, "f")))


@settings(max_examples=300, deadline=None)
@given(written=_WRITTEN, other=st.integers(-1000, 1000))
def test_any_integer_or_decimal_written_is_read_back_exactly(written, other):
    assert Decimal(extract_answer(f"The answer is {written}.", "number")) == Decimal(written)
    assert Decimal(extract_answer(f"First {other}, then: {written} in all", "number", "last")) == Decimal(written)
    assert Decimal(extract_answer(f"{written} apples, not {other}", "number")) == Decimal(written)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200) | st.from_regex(r"[-−$0-9.,eE+ a-z]{0,60}", fullmatch=True)
       | st.tuples(st.text(max_size=9), st.text(alphabet="0123456789", min_size=300, max_size=500),
                   st.from_regex(r"(\.[0-9]+)?([eE][-+]?[0-9]{1,6})?", fullmatch=True), st.text(max_size=9)).map("".join),
       kind=st.sampled_from(["number", "yes_no", "choice", "letters"]), which=st.sampled_from(["first", "last"]))
def test_any_text_is_read_without_an_exception(text, kind, which):
    got = extract_answer(text, kind, which)
    assert got is None or isinstance(got, str)
    if kind == "number" and got is not None:
        Decimal(got)  # a plain number
        is_correct(got, got, kind)


@settings(max_examples=100, deadline=None)
@given(which=st.text(max_size=8).filter(lambda w: w not in ("first", "last")) | st.sampled_from([None, 1, "Last"]))
def test_a_bad_which_names_the_choices(which):
    with pytest.raises(ValueError, match="which must be 'first' or 'last'"):
        extract_answer("1", "number", which)
