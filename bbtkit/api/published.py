"""What a service tells beside its counted label-word calls: the scale a prompt is added to (published once),
how many tokens an input takes in a template (a token counter), and the most likely next tokens over the whole
vocabulary (a completions endpoint's ``top_logprobs``). The course's widgets and checks use these, so that
nothing above the API layer opens the model."""
from __future__ import annotations

import torch

from ..data.tasks import get_task
from ..model.scales import embedding_scale
from ..model.templates import encode_example


def value_scale(model) -> float:
    """The word embeddings' std: the scale a shallow prompt is added to (``BlackBoxLM.value_scales``)."""
    return embedding_scale(model)


def token_counts(model, task, examples, max_length: int = 256) -> list[tuple[int, int]]:
    """(tokens, tokens cut) per example, each in the task's template for the model's family, cut at max_length."""
    task = get_task(task)
    enc = [encode_example(model, task, e, 0, "before", max_length) for e in examples]
    return [(len(e.ids), e.cut) for e in enc]


@torch.no_grad()
def top_tokens(model, task, example, k: int = 10) -> list[tuple[str, float]]:
    """The k most likely tokens at the answer position over the whole vocabulary (no prompt).

    For teaching: this is what a language model predicts before a verbalizer narrows it down
    to the label words.
    """
    enc = encode_example(model, get_task(task), example)
    logits = model.model(input_ids=torch.tensor([enc.ids], device=model.device)).logits[0, enc.answer]
    top = torch.softmax(logits.float(), -1).topk(k)
    return [(model.tokenizer.decode([int(i)]), float(v)) for v, i in zip(top.values, top.indices)]
