"""The generation API: text in, text out, one counted API call per prompt.

``GenerativeLM`` is what a chat or completion service offers: a list of prompts in, one completion each
out. It is all that the text-search methods (EvoPrompt, EoT) see of the model. Prompts are generated in
batches with the model's KV cache; the model's chat template wraps each prompt where it has one.

Counting is per request: one prompt's completion is one API call, whatever its length, as one candidate
prompt is one call of ``BlackBoxLM``; so methods that tune numbers and methods that tune text compare at
equal calls. The tokens read and written are counted beside (``prompt_tokens``, ``completion_tokens``),
for services that bill by the token.
"""
from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass

import numpy as np
import torch

from .blackbox import BudgetExceededError


@dataclass(frozen=True)
class Completion:
    """One completion: the text (cut before the first stop string), how many tokens it took, and why it
    ended: "stop" (a stop string), "eos" (the model's end of turn) or "length" (max_new_tokens)."""

    text: str
    tokens: int
    finish: str


class GenerativeLM:
    """The generation API of a causal language model, with a budget of API calls.

    ``gen(prompts, max_new_tokens=128)`` returns one string per prompt (``gen.complete`` returns
    :class:`Completion` records). Greedy by default; ``temperature > 0`` samples (with ``top_p``), and the
    same ``seed`` gives the same text. chat: wrap each prompt in the model's chat template ("auto": where
    the tokenizer has one); system: the system message then (None: the template's own default).
    """

    def __init__(self, model, budget: int | None = None, *, chat: bool | str = "auto", system: str | None = None,
                 batch_size: int = 8):
        if model.family != "causal":
            raise ValueError(f"GenerativeLM needs a causal LM, one that continues text; {model.name} is a masked LM, "
                             "whose head fills a blank but does not write. Load a causal model, e.g. bk.load_model().")
        if budget is not None and not _whole(budget, 1):
            raise ValueError(f"budget must be a positive number of API calls (or None for unlimited), not {budget!r}.")
        if not _whole(batch_size, 1):
            raise ValueError(f"batch_size must be a whole number of prompts generated together, at least 1, not {batch_size!r}.")
        if not (chat is True or chat is False or chat == "auto"):
            raise ValueError(f"chat must be True, False or 'auto', not {chat!r}.")
        if system is not None and not isinstance(system, str):
            raise ValueError(f"system must be a string (the system message) or None, not {system!r}.")
        self.remote = getattr(model, "remote", False)  # a class server's handle (bk.connect): it generates there
        has_template = bool(getattr(model.tokenizer, "chat_template", None))
        if chat is True and not has_template:
            raise ValueError(f"{model.name}'s tokenizer has no chat template; use chat=False (plain completion).")
        self.model, self.budget, self.system, self.batch_size = model, budget, system, int(batch_size)
        self.chat = has_template if chat == "auto" else bool(chat)
        self.calls = 0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.call_seconds: list[float] = []

    @property
    def positions(self) -> int | None:
        """The most tokens the model reads, prompt and completion together (None: no limit known)."""
        if self.remote:
            return self.model.info.get("positions")
        cfg = self.model.model.config
        return getattr(cfg, "n_positions", None) or getattr(cfg, "max_position_embeddings", None)

    def refusal(self, prompt: str, max_new_tokens: int) -> str | None:
        """Why one prompt cannot be generated from (too long for the model), or None if it can."""
        return self._too_long("The prompt", self._lengths([prompt])[0], max_new_tokens)

    def _lengths(self, prompts: list[str]) -> list[int]:
        """Tokens of each prompt as the model reads it (a server counts them for a remote model; no call)."""
        if self.remote:
            return self.model.token_lengths(prompts, self.chat, self.system)
        return [len(self._ids(p)) for p in prompts]

    def _ids(self, prompt: str) -> list[int]:
        return self.model.tokenizer(self.format(prompt), add_special_tokens=not self.chat)["input_ids"]

    def _too_long(self, which: str, n: int, max_new_tokens: int) -> str | None:
        limit = self.positions
        if limit is None or n + max_new_tokens <= limit:
            return None
        return (f"{which} is {n} tokens; with max_new_tokens={max_new_tokens} that is {n + max_new_tokens} positions, "
                f"but {self.model.name} reads at most {limit}. Shorten the prompt or lower max_new_tokens.")

    @property
    def remaining(self) -> float:
        return float("inf") if self.budget is None else self.budget - self.calls

    def format(self, prompt: str) -> str:
        """What the model reads for one prompt: the prompt in the chat template, or the prompt itself."""
        if not self.chat:
            return prompt
        messages = ([{"role": "system", "content": self.system}] if self.system is not None else []) + \
            [{"role": "user", "content": prompt}]
        return self.model.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def __call__(self, prompts, max_new_tokens: int = 128, **kw) -> list[str]:
        return [c.text for c in self.complete(prompts, max_new_tokens, **kw)]

    def complete(self, prompts, max_new_tokens: int = 128, *, temperature: float = 0.0, top_p: float = 1.0,
                 stop=None, seed: int = 0) -> list[Completion]:
        """One :class:`Completion` per prompt; each prompt is one API call. Every argument is checked, and
        every prompt measured against the model's positions, before anything is generated or charged."""
        prompts, stop = _check_request(prompts, max_new_tokens, temperature, top_p, stop, seed)
        ids = prompts if self.remote else [self._ids(p) for p in prompts]
        lengths = self._lengths(prompts) if self.remote else list(map(len, ids))
        too_long = next(filter(None, (self._too_long(f"Prompt {k}", n, max_new_tokens) for k, n in enumerate(lengths))), None)
        if too_long:
            raise ValueError(too_long)
        if self.budget is not None and self.calls + len(prompts) > self.budget:
            raise BudgetExceededError(
                f"{len(prompts)} more generations would exceed the budget of {self.budget} API calls ({self.calls} used, "
                f"{self.budget - self.calls} left). Raise the budget or send fewer prompts.")
        out: list[Completion] = []
        for s in range(0, len(prompts), self.batch_size):
            t0 = time.perf_counter()
            batch = ids[s:s + self.batch_size]
            args = (batch, max_new_tokens, temperature, top_p, stop, seed + s)
            out += self._remote_batch(*args) if self.remote else self._batch(*args)
            self.calls += len(batch)
            self.call_seconds += [(time.perf_counter() - t0) / len(batch)] * len(batch)
        return out

    @torch.no_grad()
    def _batch(self, ids, max_new_tokens, temperature, top_p, stop, seed) -> list[Completion]:
        from transformers import GenerationConfig

        lm, tok = self.model, self.model.tokenizer
        width = max(map(len, ids))
        pad = lm.pad_id
        input_ids = torch.tensor([[pad] * (width - len(i)) + i for i in ids], device=lm.device)  # left padding
        mask = torch.tensor([[0] * (width - len(i)) + [1] * len(i) for i in ids], device=lm.device)
        eos = tok.eos_token_id if tok.eos_token_id is not None else lm.model.generation_config.eos_token_id
        sample = temperature > 0
        cfg = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=sample, temperature=temperature if sample else None,
                               top_p=top_p if sample else None, top_k=None, pad_token_id=pad, eos_token_id=eos)
        criteria = [_StopStrings(tok, stop, width)] if stop else None
        with torch.random.fork_rng(devices=[lm.device] if lm.device.type == "cuda" else []):
            torch.manual_seed(seed)
            rows = lm.model.generate(input_ids=input_ids, attention_mask=mask, generation_config=cfg,
                                     stopping_criteria=criteria)[:, width:]
        self.prompt_tokens += sum(map(len, ids))
        out = []
        for row in rows.tolist():
            # a row ends at its end of turn, or where padding fills it after a stop string ended it early
            end = next((k for k, t in enumerate(row) if t in (eos, pad)), len(row))
            n = end + (end < len(row) and row[end] == eos)  # the end-of-turn token is generated, and counts
            text = tok.decode(row[:end], skip_special_tokens=True)
            cut = min((text.find(s) for s in stop if s in text), default=-1)
            finish = "stop" if cut >= 0 else "eos" if end < len(row) else "length"
            self.completion_tokens += n
            out.append(Completion(text[:cut] if cut >= 0 else text, n, finish))
        return out

    def _remote_batch(self, prompts, max_new_tokens, temperature, top_p, stop, seed) -> list[Completion]:
        """One batch generated by the server (one request, one call per prompt, charged there too)."""
        out = self.model.generate({"prompts": prompts, "max_new_tokens": max_new_tokens, "temperature": temperature,
                                   "top_p": top_p, "stop": stop, "seed": seed, "chat": self.chat, "system": self.system})
        self.prompt_tokens += out["prompt_tokens"]
        done = [Completion(*c) for c in out["completions"]]
        self.completion_tokens += sum(c.tokens for c in done)
        return done

    def __repr__(self) -> str:
        return f"GenerativeLM({self.model.name}, chat={self.chat}, calls={self.calls}/{self.budget})"


def _whole(value, low: int) -> bool:
    """value is a whole number (not a bool) of at least low."""
    return not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Integral) and value >= low


def _check_request(prompts, max_new_tokens, temperature, top_p, stop, seed) -> tuple[list[str], list[str]]:
    """(prompts, stop strings) as lists, or a ValueError that names the argument and says what it takes."""
    if isinstance(prompts, str):
        prompts = [prompts]
    if not isinstance(prompts, (list, tuple)):
        raise ValueError(f"prompts must be a string or a list of strings, not {type(prompts).__name__} {prompts!r:.80}"
                         + (" (a dict would generate for its keys)." if isinstance(prompts, dict) else "."))
    if not prompts:
        raise ValueError("No prompts given; pass a list of strings.")
    bad = [i for i, p in enumerate(prompts) if not isinstance(p, str) or not p.strip()]
    if bad:
        raise ValueError(f"Prompt {bad[0]} is empty (or not a string): {prompts[bad[0]]!r}. Every prompt needs text.")
    stop = [stop] if isinstance(stop, str) else [] if stop is None else stop
    if not isinstance(stop, (list, tuple)) or not all(isinstance(s, str) for s in stop):
        raise ValueError(f"stop must be a string or a list of strings, not {stop!r}.")
    if any(not s for s in stop):
        raise ValueError("A stop string must be non-empty.")
    if not _whole(max_new_tokens, 1):
        raise ValueError(f"max_new_tokens must be a whole number of tokens, at least 1, not {max_new_tokens!r}.")
    for name, value, ok, what in (("temperature", temperature, lambda v: v >= 0, "at least 0 (0: greedy)"),
                                  ("top_p", top_p, lambda v: 0 < v <= 1, "in (0, 1]")):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
                or not ok(value):
            raise ValueError(f"{name} must be a finite number {what}, not {value!r}.")
    if not _whole(seed, 0):
        raise ValueError(f"seed must be a whole number, at least 0, not {seed!r}.")
    return list(prompts), list(stop)


class _StopStrings:
    """Ends a row once its generated text contains a stop string (by the decoded text, so a string split
    across tokens is found too; transformers' own stop strings need a BPE vocabulary)."""

    def __init__(self, tokenizer, stop: list[str], start: int):
        self.tokenizer, self.stop, self.start = tokenizer, stop, start

    def __call__(self, input_ids: torch.Tensor, scores, **kw) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.start:], skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stop) for t in texts], device=input_ids.device)
