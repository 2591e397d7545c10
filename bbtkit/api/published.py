"""What a service tells beside its counted label-word calls: the scale a prompt is added to (published once),
how many tokens an input takes in a template (a token counter), and the most likely next tokens over the whole
vocabulary (a completions endpoint's ``top_logprobs``), the shapes adapters must have, and inputs as mean word
embeddings (an embeddings endpoint). The course's widgets and checks use these, so that
nothing above the API layer opens the model."""
from __future__ import annotations

import torch

from .. import guards
from ..data.splits import Examples
from ..data.tasks import get_task
from ..model import inject
from ..model.adapter_set import AdapterSet
from ..model.scales import embedding_scale
from ..model.templates import encode_example


def value_scale(model) -> float:
    """The word embeddings' std: the scale a shallow prompt is added to (``BlackBoxLM.value_scales``)."""
    return embedding_scale(model)


def adapter_shapes(model, targets=("q", "k")) -> dict[str, tuple[int, int]]:
    """{target: (in, out)} of the projections adapters change (the same in every layer)."""
    if getattr(model, "remote", False):
        return model.adapter_shapes(targets)
    found = inject.attention_projections(model, 0, tuple(targets))
    return {t: (model.hidden_size, part.stop - part.start if part is not None else mod.out_features)
            for t, (mod, part) in found.items()}


def check_adapters(model, adapters: AdapterSet | None, one: bool = False) -> None:
    """Adapters must fit the model (its layers, its projections' sizes); one=True: a single candidate."""
    if adapters is None:
        return
    if not isinstance(adapters, AdapterSet):
        raise ValueError(f"adapters must be a bk.AdapterSet (DFO-LoRA's res.adapters), not "
                         f"{type(adapters).__name__}.")
    if one and adapters.pop != 1:
        raise ValueError(f"evaluate scores one candidate, but the adapters hold {adapters.pop}: pass "
                         "adapters.take(c, c + 1) for candidate c, or score them all at once with "
                         "BlackBoxLM(model, task, examples)(adapters=adapters).")
    targets = sorted({t for per in adapters.weights.values() for t in per})
    guards.adapters_fit(adapters, adapter_shapes(model, targets), model.num_layers, model.name)


def mean_embeddings(model, examples: Examples, max_length: int | None = None) -> torch.Tensor:
    """(n, H): each example's input (its text fields, without the template) as the mean of its word
    embeddings: what an embeddings endpoint that pools the input layer returns. IPL's relevance
    scores need nothing more of the input (the mean of q . k_j over tokens j is q . mean_j k_j)."""
    if getattr(model, "remote", False):
        return model.mean_embeddings(examples, max_length)
    out = torch.zeros(len(examples), model.hidden_size)
    max_length = max_length or model.max_length
    with torch.no_grad():
        for i, ex in enumerate(examples):
            ids = (model.encode(ex.text_a) + (model.encode(" " + ex.text_b) if ex.text_b else []))[:max_length]
            if ids:
                out[i] = inject.embed(model, torch.tensor(ids)[None])[0].float().mean(0).cpu()
    return out


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
