"""The generation API on tiny models: the same tokens as a plain greedy loop, seeded sampling, the budget,
stop strings, the chat template, and clear errors."""
import pytest
import torch

import bbtkit as bk
from bbtkit.api.blackbox import BudgetExceededError
from bbtkit.api.generate import GenerativeLM

PROMPTS = ["the movie was", "a dog and a cat went to the city because the"]


def greedy_by_hand(lm, prompt: str, n: int) -> list[int]:
    """n tokens by argmax over full forwards, no cache, no batching: the reference."""
    ids = lm.tokenizer(prompt)["input_ids"]
    out = []
    with torch.no_grad():
        for _ in range(n):
            nxt = int(lm.model(input_ids=torch.tensor([ids + out])).logits[0, -1].argmax())
            out.append(nxt)
    return out


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_greedy_generation_in_a_batch_is_the_plain_greedy_loop(arch):
    lm = bk.tiny_model(arch)
    gen = GenerativeLM(lm)
    batched = gen.complete(PROMPTS, max_new_tokens=6)
    for prompt, c in zip(PROMPTS, batched):
        ref = greedy_by_hand(lm, prompt, 6)
        assert c.text == lm.tokenizer.decode(ref, skip_special_tokens=True)
        assert c.tokens == 6 and c.finish == "length"
        assert gen.complete([prompt], max_new_tokens=6)[0] == c  # alone, or beside a longer prompt: the same
    assert gen.calls == 4 and gen.prompt_tokens > 0 and gen.completion_tokens == 24


def test_sampling_is_seeded():
    gen = GenerativeLM(bk.tiny_model("llama"))
    a = gen(PROMPTS, max_new_tokens=8, temperature=1.0, seed=1)
    assert gen(PROMPTS, max_new_tokens=8, temperature=1.0, seed=1) == a
    assert gen(PROMPTS, max_new_tokens=8, temperature=1.0, seed=2) != a
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    gen(PROMPTS, max_new_tokens=4, temperature=1.0, seed=5)
    assert torch.equal(torch.rand(1), before)  # the user's global random state is left alone


def test_the_budget_is_enforced_before_anything_is_generated():
    gen = GenerativeLM(bk.tiny_model("gpt2"), budget=3)
    gen(PROMPTS, max_new_tokens=2)
    with pytest.raises(BudgetExceededError, match="1 left"):
        gen(PROMPTS, max_new_tokens=2)
    assert gen.calls == 2 and gen.remaining == 1
    gen(PROMPTS[:1], max_new_tokens=2)
    assert gen.remaining == 0


def test_stop_strings_cut_the_output():
    lm = bk.tiny_model("gpt2")
    gen = GenerativeLM(lm)
    full = gen.complete(PROMPTS[:1], max_new_tokens=8)[0].text  # "was was was ..."
    word = full.split()[1]
    cut = gen.complete(PROMPTS[:1], max_new_tokens=8, stop=[word])[0]
    assert cut.finish == "stop" and word not in cut.text and full.startswith(cut.text) and cut.tokens < 8
    both = gen.complete(PROMPTS, max_new_tokens=8, stop=word)  # one row stops early, the other runs on
    assert both[0] == cut and both[1] == gen.complete(PROMPTS[1:], max_new_tokens=8, stop=word)[0]


def test_the_chat_template_wraps_each_prompt():
    lm = bk.tiny_model("llama")
    assert GenerativeLM(lm).chat is False  # the tiny tokenizer has no template
    with pytest.raises(ValueError, match="no chat template"):
        GenerativeLM(lm, chat=True)
    lm.tokenizer.chat_template = ("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }} {% endfor %}"
                                  "{% if add_generation_prompt %}[assistant]{% endif %}")
    try:
        gen = GenerativeLM(lm, system="be brief")
        assert gen.chat and gen.format("hi") == "[system] be brief [user] hi [assistant]"
        assert len(gen(["the movie was"], max_new_tokens=3)) == 1
    finally:
        lm.tokenizer.chat_template = None


def test_bad_input_gets_a_clear_error():
    gen = GenerativeLM(bk.tiny_model("gpt2"), budget=5)
    with pytest.raises(ValueError, match="Prompt 1 is empty"):
        gen(["fine", "  "])
    with pytest.raises(ValueError, match="No prompts"):
        gen([])
    with pytest.raises(ValueError, match="stop string must be non-empty"):
        gen(["fine"], stop=[""])
    with pytest.raises(ValueError, match="masked LM"):
        GenerativeLM(bk.tiny_model("roberta"))
    with pytest.raises(ValueError, match="budget must be a positive"):
        GenerativeLM(bk.tiny_model("gpt2"), budget=0)
    assert gen.calls == 0


# --- issue 29: every bad argument is a sentence, checked before anything is generated or charged ---

@pytest.mark.parametrize("kwargs, match", [
    (dict(batch_size=-1), "batch_size must be a whole number"),
    (dict(batch_size=0), "batch_size must be a whole number"),
    (dict(batch_size=2.5), "batch_size must be a whole number"),
    (dict(budget=True), "budget must be a positive"),
    (dict(budget=2.5), "budget must be a positive"),
    (dict(chat="yes"), "chat must be True, False or 'auto'"),
])
def test_bad_constructor_arguments_are_refused_with_a_sentence(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GenerativeLM(bk.tiny_model("gpt2"), **kwargs)


@pytest.mark.parametrize("prompts, kwargs, match", [
    (["fine"], dict(temperature=float("nan")), "temperature must be a finite number"),
    (["fine"], dict(temperature=-1.0), "temperature must be a finite number"),
    (["fine"], dict(top_p=float("inf")), "top_p must be a finite number"),
    ({"fine": 1, "ok": 2}, {}, "a dict would generate for its keys"),
    (None, {}, "prompts must be a string or a list of strings, not NoneType"),
    (["fine"], dict(max_new_tokens=2.5), "max_new_tokens must be a whole number"),
    (["fine"], dict(max_new_tokens="5"), "max_new_tokens must be a whole number"),
    (["fine"], dict(max_new_tokens=None), "max_new_tokens must be a whole number"),
    (["fine"], dict(max_new_tokens=True), "max_new_tokens must be a whole number"),
    (["fine"], dict(stop=[5]), "stop must be a string or a list of strings"),
    (["fine"], dict(seed=1.5), "seed must be a whole number"),
    (["fine"], dict(max_new_tokens=300), r"with max_new_tokens=300 .* reads at most 256"),
    (["the " * 5000], {}, r"Prompt 0 is 5000 tokens.* reads at most 256"),
    (["fine", "the " * 250], dict(max_new_tokens=8), r"Prompt 1 is 250 tokens; with max_new_tokens=8"),
])
@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_bad_requests_are_refused_before_anything_is_generated_or_charged(arch, prompts, kwargs, match):
    gen = GenerativeLM(bk.tiny_model(arch), budget=5)
    with pytest.raises(ValueError, match=match):
        gen.complete(prompts, **kwargs)
    assert gen.calls == gen.prompt_tokens == gen.completion_tokens == 0
    assert gen.refusal("fine", 8) is None and "reads at most 256" in gen.refusal("the " * 300, 8)
