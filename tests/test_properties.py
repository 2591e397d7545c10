"""Property-based tests (Hypothesis): random malformed rows for the JSONL loader and random templates
and label words for ``Task``. Whatever comes in, the result is either data that is what it claims to
be, or a ValueError that names the file or the template: never a crash from deep inside, and never a
silent coercion (a label 1.7 read as 1, a null text read as "None")."""
import json
import os
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bbtkit as bk
from bbtkit.data import splits as data
from bbtkit.data.splits import Example
from bbtkit.model.templates import encode_example

SETTINGS = settings(max_examples=int(os.environ.get("BBTKIT_HYPOTHESIS_EXAMPLES", 150)), deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

scalars = st.none() | st.booleans() | st.integers(-3, 20) | st.floats(allow_nan=True) | st.text(max_size=12)
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)
field_values = scalars | st.lists(scalars, max_size=2) | st.dictionaries(st.text(max_size=3), scalars, max_size=2)
# near-valid rows (each field right or wrong), rows missing fields, any JSON, and any text
near = st.fixed_dictionaries({"text_a": st.text(max_size=8) | field_values, "label": st.integers(0, 3) | field_values},
                             optional={"text_b": st.none() | st.text(max_size=8) | field_values})
rows = st.fixed_dictionaries({}, optional={"text_a": field_values, "text_b": field_values, "label": field_values,
                                           "idx": st.integers()})
lines = (near.map(json.dumps) | rows.map(json.dumps) | json_values.map(json.dumps)
         | st.text(max_size=30).filter(lambda s: "\n" not in s and "\r" not in s))


@SETTINGS
@given(body=st.lists(lines | st.binary(max_size=20).map(lambda b: b.decode("latin-1")), min_size=1, max_size=3))
def test_the_loader_reads_valid_rows_exactly_or_names_the_file(tmp_path, body):
    path = tmp_path / "rows.jsonl"
    path.write_bytes("\n".join(body).encode("utf-8", "surrogatepass"))
    try:
        examples = data.load_examples(path)
    except ValueError as e:
        assert str(path) in str(e), str(e)
        return
    parsed = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(examples) == len(parsed)
    for ex, row in zip(examples, parsed):  # nothing coerced: what was read is what the file says
        assert ex.text_a == row["text_a"] and ex.text_b == row.get("text_b") and ex.label == row["label"]
        assert type(ex.text_a) is str and type(ex.label) is int


template_parts = st.sampled_from(["{text_a}", "{text_b}", "{mask}", "{text_c}", "{}", "{ mask }", " ", "\n",
                                  "Review:", "It was", "?", "{", "}", "{{text_a}}"])
pieces = st.lists(template_parts | st.text(max_size=6), max_size=4).map("".join)
templates = (st.builds(lambda a, b, c: a + "{text_a}" + b + "{mask}" + c, pieces, pieces, st.sampled_from(["", " .", "?"]))
             | st.lists(template_parts | st.text(max_size=6), max_size=8).map("".join))
words = st.lists(st.sampled_from(["good", "bad", "GOOD", "great", "zyzzyva", " good", "", "a b"]) | st.text(max_size=5),
                 min_size=0, max_size=4)


@SETTINGS
@given(tpl=templates, label_words=words, family=st.sampled_from(["causal", "mlm", "seq2seq"]))
def test_task_accepts_a_usable_template_or_names_it(tpl, label_words, family, tiny_llama, tiny_roberta):
    try:
        task = bk.Task("mine", tuple(label_words), {family: tpl})
    except ValueError as e:
        assert repr(tpl) in str(e) or "'mine'" in str(e) or repr(family) in str(e), str(e)
        return
    assert tpl.count("{mask}") == 1 and "{text_a}" in tpl
    assert set(re.findall(r"\{(\w*)\}", tpl)) <= {"text_a", "text_b", "mask"}  # no field silently kept as text
    lm = tiny_llama if family == "causal" else tiny_roberta
    try:
        ids = task.label_ids(lm)
    except bk.LabelWordError as e:
        assert "'mine'" in str(e)
        return
    assert len(set(ids.tolist())) == len(ids)  # every class can be predicted
    for example in (Example("a good film", "yes", 0), Example("", None, 1)):
        try:
            enc = encode_example(lm, task, example, n_prompt=3, position="before")
        except ValueError as e:
            assert "'mine'" in str(e), str(e)
            continue
        assert 0 <= enc.answer < len(enc.ids)


@pytest.fixture(scope="module")
def tiny_llama():
    return bk.tiny_model("llama")


@pytest.fixture(scope="module")
def tiny_roberta():
    return bk.tiny_model("roberta")
