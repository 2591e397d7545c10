"""From an example to token ids: fill the template, and mark the prompt and answer positions.

Each piece of a template is tokenised on its own, so every path (full forward, cached forward,
evaluation) sees exactly the same ids. Prompt positions are where a continuous prompt is *added*
to the embeddings:

* ``"before"``: n placeholder tokens inserted before the text (BBT: the initial prompt p0 is the
  embedding of n vocabulary tokens, and the tuned prompt is p0 + A z).
* ``"after"`` (causal LMs): the last n template tokens after the input, ending at the answer
  position (fillers are inserted right after the input if the template has fewer). A zero prompt is then exactly the manual prompt, and everything up
  to the end of the input is a fixed *context* whose keys and values are computed once.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch

POSITIONS = ("before", "after")
_FIELD = re.compile(r"\{(text_a|text_b|mask)\}")


def parse_template(template: str) -> list[tuple[str, str]]:
    """Split a template into ``(kind, text)`` pieces; kind is literal, text_a, text_b or mask."""
    pieces, last = [], 0
    for m in _FIELD.finditer(template):
        if m.start() > last:
            pieces.append(("literal", template[last:m.start()]))
        pieces.append((m.group(1), ""))
        last = m.end()
    if last < len(template):
        pieces.append(("literal", template[last:]))
    return pieces


def resolve_position(lm, position: str) -> str:
    """``"auto"`` is ``"after"`` for causal LMs (fast: cached context) and ``"before"`` for MLMs."""
    if position == "auto":
        return "after" if lm.family == "causal" else "before"
    if position not in POSITIONS:
        raise ValueError(f"position must be 'auto', 'before' or 'after', not {position!r}.")
    if position == "after" and lm.family != "causal":
        raise ValueError("Prompts after the input need a causal LM; masked LMs take position='before'.")
    return position


def placeholder_ids(lm, n: int) -> list[int]:
    """BBT's initial prompt tokens: n consecutive vocabulary ids from 1000 (or mid-vocabulary)."""
    vocab = lm.embeddings.num_embeddings
    start = 1000 if vocab > 1000 + n + 10 else max(10, vocab // 2 - n)
    return list(range(start, start + n))


def filler_id(lm) -> int:
    """Token inserted after the input when the template has fewer than n tokens there."""
    ids = lm.encode(" ")
    return ids[0] if len(ids) == 1 else lm.pad_id


@dataclass
class Encoded:
    """One formatted example. ids: token ids; answer: index of the answer position;
    prompt: indices of the n prompt positions; context: tokens before the template tail."""

    ids: list[int]
    answer: int
    prompt: list[int]
    context: int
    cut: int = 0  # tokens cut from the text fields to fit max_length


def encode_example(lm, task, example, n_prompt: int = 0, position: str = "before",
                   max_length: int = 256) -> Encoded:
    """Token ids of ``example`` in ``task``'s template for ``lm``'s family, with prompt positions."""
    family = lm.family
    pieces = parse_template(task.template(family))
    if family == "causal":  # the answer is the next token: drop the mask and anything after it
        pieces = pieces[:[k for k, _ in pieces].index("mask")]
    pieces = _move_spaces(pieces)
    texts = {"text_a": example.text_a, "text_b": example.text_b or ""}
    if "text_b" in {k for k, _ in pieces} and example.text_b is None:
        raise ValueError(f"Task {task.name!r} pairs two texts, but an example has no text_b.")
    fixed = {i: ([lm.tokenizer.mask_token_id] if k == "mask" else lm.encode(t)) for i, (k, t) in enumerate(pieces)
             if k in ("literal", "mask")}
    field_ids = {i: lm.encode(_spaced(t, texts[k])) for i, (k, t) in enumerate(pieces) if k in texts}
    before, after = lm.special_ids()
    n_before = n_prompt if position == "before" else 0
    # the prompt's positions (placeholders, or at most n fillers) count once against max_length
    budget = max_length - len(before) - len(after) - sum(map(len, fixed.values())) - n_prompt
    whole = sum(map(len, field_ids.values()))
    _truncate(field_ids, max(budget, 8))
    cut = whole - sum(map(len, field_ids.values()))

    last_field = max(field_ids)
    ids = list(before) + (placeholder_ids(lm, n_prompt) if n_before else [])
    prompt = list(range(len(before), len(ids)))
    context = answer = None
    for i, (kind, _) in enumerate(pieces):
        if kind == "mask":
            answer = len(ids)  # tracked here: an input may itself contain the mask token's text
        ids += fixed.get(i, field_ids.get(i, []))
        if i == last_field:
            context = len(ids)  # everything so far is the same whatever the prompt, when it comes after
    if position == "after":
        tail = len(ids) - context
        if tail == 0:
            raise ValueError(f"Task {task.name!r}'s causal template has no tokens after the input; "
                             f"position='after' needs some (e.g. '... Answer: {{mask}}').")
        if n_prompt > tail:  # too few template tokens after the input: insert fillers
            ids[context:context] = [filler_id(lm)] * (n_prompt - tail)
        prompt = list(range(len(ids) - n_prompt, len(ids)))  # the n tokens ending at the answer position
    if family == "causal":
        answer = len(ids) - 1
    ids += list(after)
    return Encoded(ids, answer, prompt, context, cut)


def _spaced(lead: str, text: str) -> str:
    return lead + " ".join(text.split())


def _move_spaces(pieces: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Move a literal's trailing spaces onto the field that follows it ("Review: {text_a}").

    BPE tokenisers mark a word's leading space in the word's own token; a lone trailing space would
    become a token of its own. Before the answer the space is dropped: label words carry their own.
    A field's entry holds its leading text (" " or "").
    """
    out = [(kind, "" if kind != "literal" else text) for kind, text in pieces]
    for k, (kind, text) in enumerate(out):
        nxt = out[k + 1][0] if k + 1 < len(out) else None
        if kind == "literal" and nxt != "literal" and text != text.rstrip(" "):
            out[k] = (kind, text.rstrip(" "))
            if nxt in ("text_a", "text_b") and out[k][1]:
                out[k + 1] = (nxt, " ")
    return [(k, t) for k, t in out if not (k == "literal" and t == "")]


def _truncate(fields: dict[int, list[int]], budget: int) -> None:
    """Cut the longest text field first until all fields fit in ``budget`` tokens."""
    while sum(map(len, fields.values())) > budget:
        longest = max(fields, key=lambda i: len(fields[i]))
        fields[longest] = fields[longest][:-1]


@dataclass
class Batch:
    """Padded token ids of several examples. Shapes: ids, mask (batch, seq); answer (batch,); prompt (batch, n)."""

    ids: torch.Tensor
    mask: torch.Tensor
    answer: torch.Tensor
    prompt: torch.Tensor


def pad_batch(encoded: list[Encoded], pad_id: int, side: str = "right") -> Batch:
    """Pad to the longest example on the left or the right; indices are shifted accordingly."""
    if side not in ("left", "right"):
        raise ValueError(f"padding side must be 'left' or 'right', not {side!r}")
    width = max(len(e.ids) for e in encoded)
    ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(encoded), width), dtype=torch.long)
    shift = []
    for r, e in enumerate(encoded):
        s = width - len(e.ids) if side == "left" else 0
        ids[r, s:s + len(e.ids)] = torch.tensor(e.ids)
        mask[r, s:s + len(e.ids)] = 1
        shift.append(s)
    shift = torch.tensor(shift)
    answer = torch.tensor([e.answer for e in encoded]) + shift
    prompt = torch.tensor([e.prompt for e in encoded], dtype=torch.long).reshape(len(encoded), -1) + shift[:, None]
    return Batch(ids, mask, answer, prompt)
