"""Fixed examples, ready to run with any number of candidates: what ``BlackBoxLM`` does per call.

Two caches, both speed-ups that change no result: the *context cache* (causal LMs, prompt after
the input: the input's keys and values computed once and reused by every candidate) and the *layer
cache* (BBTv2's layer by layer: the hidden states entering layer l, computed once while nothing
below l changes, so that a candidate runs only layers l..L-1).
"""
from __future__ import annotations

from contextlib import nullcontext

import torch

from .. import guards
from . import inject
from .adapter_set import AdapterSet  # noqa: F401  (api and spaces import it from here)
from .templates import encode_example, pad_batch


class Forward:
    """Fixed examples, ready to be run with any number of candidate prompts of n tokens."""

    def __init__(self, lm, task, examples, n_prompt: int, position: str, padding_side: str = "right",
                 use_cache: bool = True, max_length: int = 256):
        self.lm, self.n = lm, n_prompt
        self.label_ids = task.label_ids(lm).to(lm.device)
        enc = [encode_example(lm, task, ex, n_prompt, position, max_length) for ex in examples]
        self.cut = [e.cut for e in enc]  # tokens cut per example to fit max_length
        # A cached context needs at least one token (an empty input at the very start has none).
        self.context_cached = position == "after" and use_cache and max(e.context for e in enc) > 0
        self.prefix = 0  # tokens shared by every example before the input (see below)
        if self.context_cached:
            tails = {tuple(e.ids[e.context:]) for e in enc}
            if len(tails) != 1:  # the shared tail is what makes one cached context serve every candidate
                raise ValueError("With position='after', the template after the last input field must tokenise "
                                 "the same for every example; use position='before' for this template.")
            self.tail = torch.tensor(next(iter(tails)), device=lm.device)  # (tail,)
            ctx, self.ctx_mask, self.context_kv = context_cache(lm, enc)  # mask (batch, ctx); kv per layer
            full = torch.cat([self.ctx_mask, torch.ones(len(enc), len(self.tail), dtype=torch.long,
                                                        device=lm.device)], 1)
            self.tail_pos = lm.position_ids(full)[:, ctx.ids.shape[1]:]  # (batch, tail)
            tail_prompt = torch.tensor(enc[0].prompt, device=lm.device) - enc[0].context  # same for every example
            self.prompt_pos = tail_prompt.expand(len(enc), n_prompt)
            self.width = ctx.ids.shape[1] + len(self.tail)
            guards.fits_positions(lm, self.width, n_prompt)
        else:
            b = pad_batch(enc, lm.pad_id, padding_side)
            self.ids, self.mask, self.answer = b.ids.to(lm.device), b.mask.to(lm.device), b.answer.to(lm.device)
            guards.fits_positions(lm, b.ids.shape[1], n_prompt)
            self.prompt_pos, self.pos = b.prompt.to(lm.device), lm.position_ids(b.mask).to(lm.device)
            with torch.no_grad():
                self.base_embeds = inject.embed(lm, self.ids)  # (batch, seq, H), shared by all candidates
            self.width = self.ids.shape[1]
            # prompt before the input of a causal LM: the tokens up to the input are the same for every
            # example, so each candidate's prefix is run once and its keys and values serve every example
            self.prefix = _shared_prefix(enc) if lm.family == "causal" and use_cache and padding_side == "right" else 0
            if self.prefix and (n_prompt and max(enc[0].prompt) >= self.prefix or self.prefix < 2):
                self.prefix = 0
        self.batch = len(enc)
        self.layer_cache = None  # (layer, prompts below it, adapters below it, hidden states entering it)

    @torch.no_grad()
    def run(self, shallow, deep, pop: int, return_hidden: bool = False, max_batch_tokens: int = 16384,
            adapters: AdapterSet | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Logits (pop, batch, classes) and hidden (pop, batch, H) for pop candidates.

        shallow: (pop, n, H), or (pop, batch, n, H) for one prompt per candidate and example.

        Deep prompts that agree below the cached layer (see ``cache_layers_below``) start from the
        cached hidden states there and run only the layers above.
        """
        if shallow is None and deep is not None:
            shallow = deep[:, 0]  # layer 0's deep prompt goes into the word embeddings
        if adapters is not None and self.context_cached:
            raise ValueError("Adapters change the input's keys, so the context cache cannot serve them; "
                             "run them on a Forward built with use_cache=False.")
        start, start_hidden = self._cached_start(deep, adapters)
        step = max(1, max_batch_tokens // (self.batch * self.width))
        logits, hidden = [], []
        for s in range(0, pop, step):
            sh = None if shallow is None else shallow[s:s + step]
            dp = None if deep is None else deep[s:s + step]
            p = min(step, pop - s)
            ad = None if adapters is None else adapters.take(s, s + p)
            h = self._answer_hidden(sh, dp, p, start, start_hidden, adapters=ad)  # (p * batch, H)
            logits.append(self.lm.label_logits(h, self.label_ids).float().view(p, self.batch, -1))
            if return_hidden:
                hidden.append(h.float().view(p, self.batch, -1))
        return torch.cat(logits).cpu(), (torch.cat(hidden).cpu() if return_hidden else None)

    # --- the layer cache (BBTv2): prompts below a layer are fixed while that layer is tuned -------
    @torch.no_grad()
    def cache_layers_below(self, layer: int, deep: torch.Tensor | None, adapters: AdapterSet | None = None) -> None:
        """Cache the hidden states entering ``layer`` under the deep prompt (layers, n, H) and the
        adapters (one candidate's) below it.

        Later candidates that agree with them below ``layer`` run only layers ``layer``..L-1. Moving
        up one layer from a cached state runs one layer, not all below.
        """
        if layer <= 0:
            self.layer_cache = None
            return
        below = None if deep is None else deep[:layer].to(self.lm.device, self.lm.dtype).clone()  # (layer, n, H)
        low = None if adapters is None else adapters.below(layer)
        start, hidden = 0, None
        if self.layer_cache is not None:
            l0, below0, low0, h0 = self.layer_cache
            same = (below0 is None) == (below is None) and (below is None or torch.equal(below0, below[:l0]))
            if l0 <= layer and same and (low is None and low0 is None or low is not None and low.agrees_below(low0, l0)):
                if l0 == layer:
                    return
                start, hidden = l0, h0
        with inject.capture_inputs(self.lm, [layer]) as seen:
            self._answer_hidden(None if start or below is None else below[None, 0], None if below is None else below[None],
                                1, start, hidden, stop=layer, adapters=low)
        self.layer_cache = (layer, below, low, seen[layer])  # hidden: (batch, seq, H), before layer's own prompt

    def _cached_start(self, deep, adapters=None) -> tuple[int, torch.Tensor | None]:
        if self.layer_cache is None or (deep is None and adapters is None):
            return 0, None
        layer, below, low, hidden = self.layer_cache
        if (below is None) != (deep is None) or (below is not None and not torch.equal(
                deep[:, :layer], below.expand(len(deep), -1, -1, -1))):
            return 0, None
        if not (low is None and (adapters is None or adapters.below(layer) is None)
                or adapters is not None and adapters.agrees_below(low, layer)):
            return 0, None
        return layer, hidden

    def _answer_hidden(self, shallow, deep, p: int, start: int = 0, start_hidden=None,
                       stop: int | None = None, adapters: AdapterSet | None = None) -> torch.Tensor:
        """Hidden state at the answer position, (p * batch, H); layers outside start..stop-1 are skipped."""
        lm, B = self.lm, self.batch
        rows_pos = self.prompt_pos.repeat(p, 1)  # (p * batch, n), candidate-major rows
        sh = None if start else shallow  # (p, n, H): add_at shares each candidate's prompt across its batch
        if sh is not None and sh.ndim == 4 and torch.equal(sh, sh[:, :1].expand_as(sh)):
            sh = sh[:, 0]  # the same prompt for every example is a shared prompt (and runs as one)
        if sh is not None and sh.ndim == 4:  # (p, batch, n, H): one prompt per candidate and example (IPL)
            sh = sh.flatten(0, 1)
        window = (inject.layer_window(lm, start, stop, None if start_hidden is None else start_hidden.repeat(p, 1, 1))
                  if start or stop is not None else nullcontext())
        if self.context_cached:
            embeds = lm.embeddings(self.tail)[None].expand(p * B, -1, -1)  # (p * batch, tail, H)
            embeds = inject.add_at(embeds, rows_pos, sh) if sh is not None else embeds
            # layers below start never read their keys and values: pass them unrepeated (no copy)
            past = _new_cache(lm, [(k.repeat(p, 1, 1, 1), v.repeat(p, 1, 1, 1)) if l >= start else (k, v)
                                   for l, (k, v) in enumerate(self.context_kv)])
            mask = torch.cat([self.ctx_mask.repeat(p, 1),
                              torch.ones(p * B, len(self.tail), dtype=torch.long, device=lm.device)], 1)
            with window, inject.deep_prompt_hooks(lm, deep, rows_pos, first_layer=max(1, start)):
                h, _ = inject.run_layers(lm, embeds, mask, self.tail_pos.repeat(p, 1), past=past)
            return h[:, -1]
        if self.prefix and not (start or stop is not None or adapters is not None or (sh is not None and sh.ndim == 3
                                                                                       and len(sh) != p)):
            return self._prefixed_hidden(sh, deep, p)
        embeds = self.base_embeds.repeat(p, 1, 1)
        embeds = inject.add_at(embeds, rows_pos, sh) if sh is not None else embeds
        adapted = (inject.candidate_adapters(lm, adapters.weights, adapters.scale) if adapters is not None
                   else nullcontext())
        with window, adapted, inject.deep_prompt_hooks(lm, deep, rows_pos, first_layer=max(1, start)):
            h, _ = inject.run_layers(lm, embeds, self.mask.repeat(p, 1), self.pos.repeat(p, 1))
        return h[torch.arange(p * B, device=h.device), self.answer.repeat(p)]

    def _prefixed_hidden(self, shallow, deep, p: int) -> torch.Tensor:
        """As ``_answer_hidden``, with the shared prefix run once per candidate: (p * batch, H)."""
        lm, B, P = self.lm, self.batch, self.prefix
        pos = self.prompt_pos[:1].expand(p, -1)  # (p, n): the prompt's positions, inside the prefix
        embeds = self.base_embeds[:1, :P].expand(p, -1, -1)
        embeds = inject.add_at(embeds, pos, shallow) if shallow is not None else embeds
        ones = torch.ones(p, P, dtype=torch.long, device=lm.device)
        with inject.deep_prompt_hooks(lm, deep, pos):
            _, cache = inject.run_layers(lm, embeds, ones, lm.position_ids(ones), past=_new_cache(lm))
        past = _new_cache(lm, [(layer.keys.repeat_interleave(B, 0), layer.values.repeat_interleave(B, 0))
                               for layer in cache.layers])  # candidate-major rows, as everywhere
        mask = torch.cat([torch.ones(p * B, P, dtype=torch.long, device=lm.device), self.mask[:, P:].repeat(p, 1)], 1)
        h, _ = inject.run_layers(lm, self.base_embeds[:, P:].repeat(p, 1, 1), mask, self.pos[:, P:].repeat(p, 1), past=past)
        return h[torch.arange(p * B, device=h.device), (self.answer - P).repeat(p)]


@torch.no_grad()
def context_cache(lm, enc):
    """The inputs' keys and values, computed once (the context cache): the encoded examples' tokens up to
    their context end, left-padded. Returns (the padded batch, its mask, [(keys, values)] per layer, each
    (batch, heads, ctx, d))."""
    ctx = pad_batch([type(e)(e.ids[:e.context], 0, [], e.context) for e in enc], lm.pad_id, "left")
    _, cache = inject.run_layers(lm, inject.embed(lm, ctx.ids), ctx.mask, lm.position_ids(ctx.mask), past=_new_cache(lm))
    return ctx, ctx.mask.to(lm.device), [(layer.keys, layer.values) for layer in cache.layers]


def _shared_prefix(enc) -> int:
    """Tokens at the start that every example shares, leaving each at least its answer token."""
    first, k = enc[0].ids, 0
    limit = min(min(len(e.ids) for e in enc) - 1, min(e.answer for e in enc))
    while k < limit and all(e.ids[k] == first[k] for e in enc):
        k += 1
    return k


def _new_cache(lm, kv=None):
    from transformers import DynamicCache
    return DynamicCache(ddp_cache_data=kv) if kv is not None else DynamicCache(config=lm.config)


def length_buckets(lengths, overhead: float) -> list[list[int]]:
    """Example indices grouped so that padding each group to its own longest costs least: the sum over
    groups of (size x longest) + ``overhead`` tokens per group (one more forward), minimised exactly by
    dynamic programming over the examples sorted by length (groups of at most 256). Shortest first."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    ls = [lengths[i] for i in order]
    best, cut = [0.0] + [float("inf")] * len(ls), [0] * (len(ls) + 1)
    for j in range(1, len(ls) + 1):  # best[j]: the cheapest grouping of the j shortest
        for i in range(max(0, j - 256), j):  # a group holds at most 256: O(n) for large sets
            cost = best[i] + (j - i) * ls[j - 1] + overhead
            if cost < best[j]:
                best[j], cut[j] = cost, i
    groups, j = [], len(ls)
    while j:
        groups.append(order[cut[j]:j])
        j = cut[j]
    return groups[::-1]


class Bucketed:
    """Forwards over groups of examples of similar length: each group is padded to its own longest example,
    not to the longest of all (prompt before the input, where nothing is shared between candidates and
    every padded position costs a full forward). The same interface as ``Forward``; logits come back in
    the examples' order and agree with one padded batch to rounding (tested)."""

    def __init__(self, lm, task, examples, n_prompt: int, position: str, overhead: float | None = None, **kw):
        lengths = [len(encode_example(lm, task, ex, n_prompt, position, kw.get("max_length", 256)).ids) for ex in examples]
        overhead = 2 * sum(lengths) / len(lengths) if overhead is None else overhead  # a group: about two examples more
        self.groups = [torch.tensor(g) for g in length_buckets(lengths, overhead)]
        self.parts = [Forward(lm, task, [examples[int(i)] for i in g], n_prompt, position, **kw) for g in self.groups]
        self.batch, self.context_cached = len(examples), False
        self.cut = [0] * len(examples)
        for g, fw in zip(self.groups, self.parts):
            for i, c in zip(g.tolist(), fw.cut):
                self.cut[i] = c
        self.width = max(fw.width for fw in self.parts)
        self.padded_tokens = sum(len(g) * fw.width for g, fw in zip(self.groups, self.parts))  # what runs per candidate

    @torch.no_grad()
    def run(self, shallow, deep, pop: int, return_hidden: bool = False, max_batch_tokens: int = 16384,
            adapters: AdapterSet | None = None):
        logits, hidden = None, None
        for g, fw in zip(self.groups, self.parts):
            sh = shallow[:, g.to(shallow.device)] if shallow is not None and shallow.ndim == 4 else shallow  # per example
            lg, h = fw.run(sh, deep, pop, return_hidden, max_batch_tokens, adapters)
            if logits is None:
                logits = lg.new_empty(pop, self.batch, lg.shape[-1])
                hidden = h.new_empty(pop, self.batch, h.shape[-1]) if return_hidden else None
            logits[:, g] = lg
            if return_hidden:
                hidden[:, g] = h
        return logits, hidden

    @property
    def layer_cache(self):
        """The groups' layer cache (each group caches the same layer under the same prompts and adapters)."""
        return self.parts[0].layer_cache

    def cache_layers_below(self, layer: int, deep, adapters: AdapterSet | None = None) -> None:
        for fw in self.parts:
            fw.cache_layers_below(layer, deep, adapters)

    def _cached_start(self, deep, adapters=None) -> tuple[int, None]:
        """The layer every group's cached forward would start from (0 unless all of them can use their cache)."""
        starts = {fw._cached_start(deep, adapters)[0] for fw in self.parts}
        return (starts.pop() if len(starts) == 1 else 0), None
