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


def test_zero_shot_sst2_reaches_70_percent_on_fixed_200_examples(embedded):
    split = bk.load_split("sst2", seed=42, test_size=200)
    acc = bk.evaluate(embedded, "sst2", split.test)
    assert acc >= 0.70, f"zero-shot accuracy {acc:.3f} with the default causal template"


def test_multi_token_label_word_names_its_pieces(embedded):
    task = bk.Task("dbp", ("Athlete", "Company"), {"causal": "{text_a} {mask}"})
    with pytest.raises(bk.LabelWordError, match=r"'Athlete'.*2 tokens.*Ath"):
        task.label_ids(embedded)


def test_every_benchmark_task_has_single_token_words_for_the_embedded_model(embedded):
    for task in bk.TASKS.values():
        assert len(set(task.label_ids(embedded).tolist())) == task.num_classes


def test_cached_context_equals_full_forward_on_the_embedded_model(embedded):
    ex = bk.load_split("sst2", seed=13).train[:6]
    torch.manual_seed(0)
    prompts = 0.02 * torch.randn(2, 4, embedded.hidden_size)
    a = bk.BlackBoxLM(embedded, "sst2", ex, use_cache=True)(prompts).logits
    b = bk.BlackBoxLM(embedded, "sst2", ex, use_cache=False)(prompts).logits
    tol = 1e-3 if embedded.dtype == torch.float32 else 0.1
    torch.testing.assert_close(a, b, atol=tol, rtol=0)
