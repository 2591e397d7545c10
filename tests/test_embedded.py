"""Integration: the embedded SmolLM2-135M, offline, on real SST-2 data."""
import os
import subprocess
import sys

import pytest
import torch

import bbtkit as bk

pytestmark = pytest.mark.slow


def test_embedded_model_loads_offline():
    code = "import bbtkit as bk; lm = bk.load_model(); print(lm.family, lm.num_layers, round(lm.load_seconds, 2))"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    family, layers, seconds = out.stdout.split()[-3:]
    assert (family, layers) == ("causal", "30")
    assert 0 < float(seconds) < 120, f"load_seconds {seconds} is not a plausible wall time"


def test_zero_shot_sst2_reaches_70_percent_on_fixed_200_examples(embedded):
    split = bk.load_split("sst2", seed=42, test_size=200)
    acc = bk.evaluate(embedded, "sst2", split.test)
    assert acc >= 0.70, f"zero-shot accuracy {acc:.3f} with the default causal template"


def test_multi_token_label_word_names_its_pieces(embedded):
    task = bk.Task("dbp", ("Athlete", "Company"), {"causal": "{text_a} {mask}"})
    with pytest.raises(bk.LabelWordError, match=r"'Athlete'.*2 tokens.*Ath"):
        task.label_ids(embedded)


def test_label_words_that_are_one_token_for_smollm2_are_refused(embedded):
    """("positive", " positive") were both id 2731: one class could never be predicted."""
    task = bk.Task("mine", ("positive", " positive"), {"causal": "Review: {text_a}\nSentiment: {mask}"})
    with pytest.raises(bk.LabelWordError, match=r"'positive' and ' positive'.*same token.*id 2731"):
        task.label_ids(embedded)


def test_every_benchmark_task_has_single_token_words_for_the_embedded_model(embedded):
    for task in bk.TASKS.values():
        assert len(set(task.label_ids(embedded).tolist())) == task.num_classes


def _cached_and_plain(lm):
    ex = bk.load_split("sst2", seed=13).train[:6]
    torch.manual_seed(0)
    prompts = 0.02 * torch.randn(2, 4, lm.hidden_size)
    a = bk.BlackBoxLM(lm, "sst2", ex, use_cache=True)(prompts).logits
    b = bk.BlackBoxLM(lm, "sst2", ex, use_cache=False)(prompts).logits
    return a, b


@pytest.fixture(scope="module")
def fp32_logits():
    return _cached_and_plain(bk.load_model(dtype="fp32"))


def test_cached_context_equals_full_forward_on_the_embedded_model_in_fp32(fp32_logits):
    a, b = fp32_logits
    torch.testing.assert_close(a, b, atol=1e-3, rtol=0)


def test_cached_context_adds_no_error_beyond_bf16_rounding(fp32_logits):
    """In bf16 the two paths round differently, so they cannot agree bit for bit. Where the gap comes
    from (measured on SmolLM2, SST-2): the residual stream grows to |h| ~ 380 by layer 27 and is
    stored in bf16 (unit roundoff 2^-9) after every layer, so the relative error of the answer's
    hidden state against fp32 grows from 0.15% at layer 0 to about 1.8% at the top. With logits
    near 20 that is 0.2-0.35 per logit for *either* path; the cached and plain paths then differ by
    up to 0.25-0.375. The bound tested is that both stay within 4% of the fp32 logits' scale
    (about ten unit roundoffs, twice the error measured): a cache bug (a wrong position or a stale
    key) moves logits by whole units and fails it. The head itself runs in fp32 (see LM.label_logits)."""
    ref = fp32_logits[0]
    a, b = _cached_and_plain(bk.load_model(dtype="bf16"))
    bound = 0.04 * ref.abs().max().item()
    assert (a - ref).abs().max() <= bound, f"cached path {(a - ref).abs().max():.3f} from fp32 (bound {bound:.3f})"
    assert (b - ref).abs().max() <= bound, f"plain path {(b - ref).abs().max():.3f} from fp32 (bound {bound:.3f})"
    # predictions agree with fp32 wherever fp32's margin is wider than both paths' error
    margin = (ref[..., 0] - ref[..., 1]).abs()
    sure = margin > 2 * bound
    assert sure.any()
    assert torch.equal(a.argmax(-1)[sure], ref.argmax(-1)[sure]) and torch.equal(b.argmax(-1)[sure], ref.argmax(-1)[sure])


def test_the_embedded_model_answers_through_its_chat_template_and_stops_at_a_stop_string(embedded):
    gen = bk.GenerativeLM(embedded, budget=4)
    assert gen.chat and gen.format("Hi").rstrip().endswith("assistant")
    q = "What is the capital of France? Answer in one sentence."
    a = gen.complete([q], max_new_tokens=24)[0]
    assert "Paris" in a.text and gen.complete([q], max_new_tokens=24)[0] == a  # greedy: the same every time
    cut = gen.complete([q], max_new_tokens=24, stop=["Paris"])[0]
    assert cut.finish == "stop" and a.text.startswith(cut.text) and "Paris" not in cut.text
    assert gen.calls == 3 and gen.remaining == 1
