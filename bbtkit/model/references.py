"""Teacher-forced log-probabilities of reference outputs under candidate prompts: the forward behind the
generation scoring call (``bbtkit.api.reference.ReferenceScorer``).

For each example the model reads the template with the input (and the candidate's prompt added to its
prompt tokens, as for classification), then the reference output one token at a time; the log-probability
of each reference token given everything before it is read off the full LM head. With the prompt after the
input (causal LMs), the input's keys and values are computed once and serve every candidate (the context
cache of ``forward.Forward``); each candidate then runs only the template's tail and the reference.
"""
from __future__ import annotations

import torch

from . import inject
from .forward import _new_cache, context_cache
from .templates import encode_example


class ReferenceForward:
    """Fixed (input, reference) pairs, ready to score any number of candidate prompts of n tokens."""

    def __init__(self, lm, task, examples, references, n_prompt: int, position: str, use_cache: bool = True,
                 max_length: int = 256):
        if lm.family != "causal":
            raise ValueError(f"Scoring reference outputs needs a causal LM (one that continues text); {lm.name} is a "
                             "masked LM.")
        if len(references) != len(examples) or not len(examples):
            raise ValueError(f"Give one reference output per example: {len(examples)} examples, {len(references)} "
                             "references.")
        self.lm, self.n, self.batch = lm, n_prompt, len(examples)
        enc = [encode_example(lm, task, ex, n_prompt, position, max_length) for ex in examples]
        refs = [lm.encode(" " + str(r).strip()) for r in references]  # after the template, as a label word is
        if any(not r for r in refs):
            raise ValueError("A reference output is empty; every example needs the text it should be answered with.")
        T = max(map(len, refs))
        self.valid = torch.tensor([[k < len(r) for k in range(T)] for r in refs], device=lm.device)  # (batch, T)
        self.targets = torch.tensor([r + [0] * (T - len(r)) for r in refs], device=lm.device)      # (batch, T)
        tails = {tuple(e.ids[e.context:]) for e in enc}
        self.context_cached = (position == "after" and use_cache and min(e.context for e in enc) > 0
                               and len(tails) == 1)
        if self.context_cached:  # the input's keys and values once; each candidate runs tail + reference
            _, self.ctx_mask, self.context_kv = context_cache(lm, enc)
            tail = list(next(iter(tails)))
            seqs = [tail + r[:-1] for r in refs]
            self.prompt_pos = (torch.tensor(enc[0].prompt) - enc[0].context).expand(self.batch, n_prompt)
            self.read = len(tail) - 1 + torch.arange(T)                      # hidden states that predict the reference
        else:
            seqs = [e.ids + r[:-1] for e, r in zip(enc, refs)]
            self.prompt_pos = torch.tensor([e.prompt for e in enc], dtype=torch.long).reshape(self.batch, n_prompt)
            self.read = torch.tensor([e.answer for e in enc])[:, None] + torch.arange(T)   # (batch, T)
        width = max(map(len, seqs))
        self.ids = torch.tensor([s + [lm.pad_id] * (width - len(s)) for s in seqs], device=lm.device)
        self.mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs], device=lm.device)
        if self.context_cached:
            full = torch.cat([self.ctx_mask, self.mask], 1)
            self.pos = lm.position_ids(full)[:, self.ctx_mask.shape[1]:]
        else:
            self.pos = lm.position_ids(self.mask)
        self.read = self.read.expand(self.batch, T).clamp(max=width - 1).to(lm.device)
        self.prompt_pos = self.prompt_pos.to(lm.device)
        self.width = width + (self.ctx_mask.shape[1] if self.context_cached else 0)

    @torch.no_grad()
    def run(self, shallow, pop: int, max_batch_tokens: int = 16384) -> torch.Tensor:
        """(pop, batch, T) log-probabilities of each reference token (NaN past a reference's end).
        shallow: (pop, n, H) prompts added at the prompt positions, or None (the template as it is)."""
        step = max(1, max_batch_tokens // (self.batch * self.width))
        out = []
        for s in range(0, pop, step):
            p = min(step, pop - s)
            h = self._hidden(None if shallow is None else shallow[s:s + p], p)        # (p * batch, seq, H)
            rows = torch.arange(p * self.batch, device=h.device)[:, None]
            out.append(self._logprobs(h[rows, self.read.repeat(p, 1)]).view(p, self.batch, -1))
        return torch.cat(out).cpu()

    def _hidden(self, shallow, p: int) -> torch.Tensor:
        lm = self.lm
        embeds = inject.embed(lm, self.ids).repeat(p, 1, 1)
        if shallow is not None:
            embeds = inject.add_at(embeds, self.prompt_pos.repeat(p, 1), shallow)
        if not self.context_cached:
            return inject.run_layers(lm, embeds, self.mask.repeat(p, 1), self.pos.repeat(p, 1))[0]
        past = _new_cache(lm, [(k.repeat(p, 1, 1, 1), v.repeat(p, 1, 1, 1)) for k, v in self.context_kv])
        mask = torch.cat([self.ctx_mask, self.mask], 1).repeat(p, 1)
        return inject.run_layers(lm, embeds, mask, self.pos.repeat(p, 1), past=past)[0]

    def _logprobs(self, h: torch.Tensor) -> torch.Tensor:
        """(rows, T, H) hidden states -> (rows, T) log-probabilities of the targets, NaN where there is none."""
        rows, T = h.shape[:2]
        valid = self.valid.repeat(rows // self.batch, 1)
        targets = self.targets.repeat(rows // self.batch, 1)[valid]
        flat = h[valid]                                                         # (tokens, H)
        head = self.lm.model.get_output_embeddings()
        vocab = head.weight.shape[0]
        chunk = max(1, 2 ** 26 // vocab)  # at most 64M logits at once
        scores = torch.cat([torch.log_softmax(head(flat[i:i + chunk]).float(), -1)
                            .gather(-1, targets[i:i + chunk, None])[:, 0] for i in range(0, len(flat), chunk)])
        out = torch.full((rows, T), float("nan"), device=h.device)
        out[valid] = scores
        return out
