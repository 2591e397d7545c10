"""Widgets build on tiny models and respond to their controls."""
import matplotlib

import bbtkit as bk

matplotlib.use("Agg")


def test_the_label_word_explorer_carries_each_templates_own_label_words():
    lm = bk.tiny_model("llama")
    templates = {"plain": "{text_a} It was {mask}",
                 "summary": ("{text_a} In summary, it was {mask}", ("terrible", "great"))}
    ui = bk.widgets.label_word_explorer(lm, "sst2", templates)
    text, tpl, words, out = ui.children
    assert words.value == ", ".join(bk.get_task("sst2").words(lm.family))  # a bare template: the task's words
    tpl.value = "summary"
    assert words.value == "terrible, great"
    tpl.value = "plain"
    assert words.value == ", ".join(bk.get_task("sst2").words(lm.family))
    words.value = "bad, great"  # still editable by hand
    assert tpl.value == "plain" and words.value == "bad, great"
