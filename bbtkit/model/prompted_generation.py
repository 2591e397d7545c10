"""Greedy generation with a continuous prompt: the template with the input, the prompt added to its prompt
tokens (as ``BlackBoxLM`` adds it), then the model's most likely next token, again and again. It answers
what a prompt tuned on reference likelihoods (``api.reference.ReferenceScorer``) actually makes the model
write; ``GenerativeLM`` serves text prompts, this serves the same model under a tuned continuous one.
"""
from __future__ import annotations

import torch

from . import inject
from .templates import encode_example


@torch.no_grad()
def greedy_with_prompt(lm, task, examples, prompt=None, *, position: str = "after", max_new_tokens: int = 8,
                       stop=("\n",), batch_size: int = 16) -> list[str]:
    """The greedy continuation of each example's template under ``prompt`` ((n, H), or None: the template
    alone), cut before the first ``stop`` string or the end-of-sequence token; one string per example."""
    n = 0 if prompt is None else int(prompt.shape[0])
    p = None if prompt is None else torch.as_tensor(prompt).to(lm.device, lm.dtype)
    head, eos = lm.model.get_output_embeddings(), lm.tokenizer.eos_token_id
    out = []
    for s in range(0, len(examples), batch_size):
        enc = [encode_example(lm, task, examples[i], n, position) for i in range(s, min(s + batch_size, len(examples)))]
        new = [[] for _ in enc]
        done = [False] * len(enc)
        for _ in range(max_new_tokens):
            seqs = [e.ids + g for e, g in zip(enc, new)]
            width = max(map(len, seqs))
            pad = [width - len(q) for q in seqs]                       # left padding: every row ends at the last column
            ids = torch.tensor([[lm.pad_id] * k + q for k, q in zip(pad, seqs)], device=lm.device)
            mask = torch.tensor([[0] * k + [1] * len(q) for k, q in zip(pad, seqs)], device=lm.device)
            embeds = inject.embed(lm, ids)
            if p is not None:
                pos = torch.tensor([[k + i for i in e.prompt] for k, e in zip(pad, enc)], device=lm.device)
                embeds = inject.add_at(embeds, pos, p[None].expand(len(enc), -1, -1))
            h, _ = inject.run_layers(lm, embeds, mask, lm.position_ids(mask))
            nxt = head(h[:, -1]).float().argmax(-1).tolist()
            for i, t in enumerate(nxt):
                if done[i]:
                    continue
                new[i].append(t)
                text = lm.tokenizer.decode(new[i], skip_special_tokens=True)
                done[i] = t == eos or any(x in text for x in stop)
            if all(done):
                break
        for g in new:
            text = lm.tokenizer.decode([t for t in g if t != eos], skip_special_tokens=True)
            for x in stop:
                text = text.split(x)[0]
            out.append(text.strip())
    return out
