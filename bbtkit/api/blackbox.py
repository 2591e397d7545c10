"""The black box: candidate prompts in, label-word logits out, one API call per candidate.

``BlackBoxLM`` is all a gradient-free tuner sees of the model. It evaluates a whole population in
as few forward passes as memory allows, computes the LM head only at the answer position and only
for the label words, and for causal LMs with the prompt after the input it computes the input's
keys and values once and reuses them for every candidate.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from .. import guards
from ..data.splits import Examples
from ..model.forward import AdapterSet, Bucketed, Forward
from ..model.templates import resolve_position
from ..data.tasks import get_task
from .published import adapter_shapes, check_adapters, mean_embeddings  # noqa: F401  (imported from here too)


class BudgetExceededError(RuntimeError):
    """More API calls were requested than the budget allows."""


@dataclass
class APIOutput:
    """logits: (pop, batch, classes) label-word logits; hidden: (pop, batch, hidden) final hidden
    state at the answer position, when asked for; labels: (batch,) gold labels."""

    logits: torch.Tensor
    labels: torch.Tensor
    hidden: torch.Tensor | None = None


def as_prompts(prompts, lm, batch: int | None = None, per_example: bool = False):
    """Normalise candidate prompts to (pop, shallow | None, deep (pop, L, n, H) | None).

    Accepts None (no prompt, one candidate), (n, H), (pop, n, H), (pop, layers, n, H) (deep), or, with
    per_example=True, (pop, batch, n, H): one prompt per candidate and example (instance-aware prompts,
    IPL), returned as the shallow part. A 4-D shape is a deep prompt unless per_example says otherwise.
    """
    if prompts is None:
        return 1, None, None
    p = torch.as_tensor(np.asarray(prompts) if not torch.is_tensor(prompts) else prompts)
    if p.ndim == 2:
        p = p[None]
    H = lm.hidden_size
    if p.ndim not in (3, 4) or p.shape[-1] != H:
        raise ValueError(f"Prompts must have shape (pop, tokens, {H}), (pop, layers, tokens, {H}) or, one per "
                         f"example with per_example=True, (pop, examples, tokens, {H}); got {tuple(p.shape)}.")
    if p.ndim == 4 and per_example and (batch is None or p.shape[1] != batch):
        raise ValueError(f"Per-example prompts need one prompt per example ({batch}), got {p.shape[1]}.")
    if p.ndim == 4 and not per_example and p.shape[1] != lm.num_layers:
        raise ValueError(f"A deep prompt needs one entry per layer ({lm.num_layers}), got {p.shape[1]}"
                         + (f"; for one prompt per example ({batch}), pass per_example=True." if batch else "."))
    guards.finite_prompts(p)
    p = p.to(device=lm.device, dtype=lm.dtype)
    return (p.shape[0], p, None) if p.ndim == 3 or per_example else (p.shape[0], None, p)


class BlackBoxLM:
    """The inference API of a language model on a fixed set of examples.

    ``api(prompts)`` with prompts of shape (pop, tokens, hidden) or (pop, layers, tokens, hidden)
    returns an :class:`APIOutput`; each candidate counts as one API call against ``budget``.
    position: ``"auto"`` (after the input for causal LMs, before it for MLMs), ``"before"`` or
    ``"after"``. Wall time is recorded per call in ``call_seconds``. Two caches, both speed-ups that
    change no result: ``use_cache``, the *context cache* (the input's keys and values, computed once,
    prompt after the input); ``layer_cache``, the *layer cache* (``cache_below``), here filled by
    itself below the lowest layer where a population's deep prompts differ (BBTv2's layer by layer).
    """

    def __init__(self, model, task, examples: Examples, budget: int | None = None, *, position: str = "auto",
                 padding_side: str = "right", use_cache: bool = True, max_length: int | None = None,
                 max_batch_tokens: int | None = None, layer_cache: bool = False, bucket: bool = True):
        task = get_task(task)
        if len(examples) == 0:
            raise ValueError("BlackBoxLM needs at least one example; the split given is empty.")
        if budget is not None and (not isinstance(budget, (int, np.integer)) or budget < 1):
            raise ValueError(f"budget must be a positive number of API calls (or None for unlimited), not {budget!r}.")
        self.model, self.task, self.examples, self.budget = model, task, examples, budget
        self.position = resolve_position(model, position)
        self.labels = torch.as_tensor(np.asarray([ex.label for ex in examples]))
        guards.labels_in_range(self.labels.numpy(), task)
        self.remote = getattr(model, "remote", False)  # a class server's handle (bk.connect): it checks the words
        if not self.remote:
            task.label_ids(model)  # fail early on a bad label word
        self._opts = dict(padding_side=padding_side, use_cache=use_cache, max_length=max_length or model.max_length)
        self.bucket = bucket  # without the context cache, pad groups of similar length (False: one padded batch)
        self.max_batch_tokens = max_batch_tokens or (65536 if model.device.type == "cuda" else 16384)
        self._forwards: dict[int, Forward] = {}
        self.layer_cache = layer_cache  # cache below the lowest layer where a population's deep prompts differ
        self.calls = 0
        self.call_seconds: list[float] = []  # wall seconds of each API call (a batch's time split evenly)
        self.cache_seconds = 0.0  # wall seconds spent filling the layer cache (not API calls)

    @property
    def remaining(self) -> float:
        return float("inf") if self.budget is None else self.budget - self.calls

    @property
    def seconds_per_call(self) -> float:
        return float(np.mean(self.call_seconds)) if self.call_seconds else float("nan")

    def forward_for(self, n_prompt: int, context: bool = True) -> Forward:
        """The prepared examples for prompts of n tokens (built once, then reused); context=False: without
        the context cache (adapters change the input's own keys)."""
        key = (n_prompt, context and self._opts["use_cache"])
        if key not in self._forwards and self.remote:  # the server prepares the examples, once per session
            self._forwards[key] = self.model.forward(self.task, self.examples, self.session_options)
        if key not in self._forwards:
            opts = {**self._opts, "use_cache": key[1]}
            fw = Forward(self.model, self.task, self.examples, n_prompt, self.position, **opts)
            if not fw.context_cached and len(self.examples) > 1 and self.bucket:  # nothing shared: pad groups of similar length
                fw = Bucketed(self.model, self.task, self.examples, n_prompt, self.position, **opts)
            self._forwards[key] = fw
            if len(self._forwards) == 1:  # one warning per API, from its first formatting of the examples
                guards.warn_cut(self._forwards[key].cut, self._opts["max_length"], f"examples of {self.examples.name}")
        return self._forwards[key]

    @property
    def session_options(self) -> dict:
        """What a server needs to build the same API on its side (``bk.connect``)."""
        return {"position": self.position, **self._opts, "layer_cache": self.layer_cache, "bucket": self.bucket}

    def cache_below(self, layer: int, deep_prompt=None, adapters: AdapterSet | None = None) -> None:
        """The layer cache, a server-side speed-up that changes no result.

        deep_prompt: (layers, n, H), and adapters (the first candidate's are used), fixed below ``layer``
        while that layer is tuned. Calls that agree with them below ``layer`` then run only the layers
        from ``layer`` up; others still get the full forward. Not an API call.
        """
        t0 = time.perf_counter()
        check_adapters(self.model, adapters)
        p = None
        if deep_prompt is not None:
            p = torch.as_tensor(np.asarray(deep_prompt) if not torch.is_tensor(deep_prompt) else deep_prompt)
            if p.ndim != 3 or p.shape[0] != self.model.num_layers or p.shape[-1] != self.model.hidden_size:
                raise ValueError(f"cache_below needs one deep prompt of shape ({self.model.num_layers}, tokens, "
                                 f"{self.model.hidden_size}); got {tuple(p.shape)}.")
        fw = self.forward_for(0 if p is None else p.shape[1], context=adapters is None)
        fw.cache_layers_below(int(layer), p, adapters)
        self.cache_seconds += time.perf_counter() - t0

    def __call__(self, prompts=None, return_hidden: bool = False, adapters: AdapterSet | None = None,
                 per_example: bool = False) -> APIOutput:
        """Label-word logits of each candidate: a prompt (one for all examples, or one per example:
        (pop, examples, tokens, H), see ``as_prompts``), adapters the service applies for the call
        (``AdapterSet``, one set per candidate), or both (the same number of each). One call per candidate."""
        pop, shallow, deep = as_prompts(prompts, self.model, len(self.examples), per_example)
        check_adapters(self.model, adapters)
        if adapters is not None:
            if prompts is not None and pop != adapters.pop:
                raise ValueError(f"{pop} prompts but {adapters.pop} adapter sets: send one of each per candidate.")
            pop = adapters.pop
        if self.budget is not None and self.calls + pop > self.budget:
            raise BudgetExceededError(
                f"{pop} more API calls would exceed the budget of {self.budget} ({self.calls} used, "
                f"{self.budget - self.calls} left). Raise the budget or evaluate fewer candidates.")
        if self.layer_cache and pop > 1 and (deep is not None or adapters is not None):
            lowest = [] if deep is None else (deep != deep[:1]).flatten(2).any(-1).any(0).nonzero()[:, 0].tolist()
            lowest += [] if adapters is None or adapters.lowest_difference() is None else [adapters.lowest_difference()]
            if lowest:  # the lowest layer where the candidates differ
                self.cache_below(min(lowest), None if deep is None else deep[0], adapters)
        t0 = time.perf_counter()
        n = 0 if prompts is None else (shallow if shallow is not None else deep).shape[-2]
        fw = self.forward_for(n, context=adapters is None)
        logits, hidden = fw.run(shallow, deep, pop, return_hidden, self.max_batch_tokens, adapters)
        guards.finite_logits(logits)  # before the calls are charged
        elapsed = time.perf_counter() - t0
        self.calls += pop
        self.call_seconds += [elapsed / pop] * pop
        return APIOutput(logits, self.labels, hidden)

    def adapter_shapes(self, targets=("q", "k")) -> dict[str, tuple[int, int]]:
        """{target: (in, out)} of the projections the service adapts (the same in every layer): what
        a service that applies adapters publishes, as it publishes ``value_scales``. No API call."""
        return adapter_shapes(self.model, targets)

    def input_embeddings(self) -> torch.Tensor:
        """(examples, H): each input's mean word embedding (``mean_embeddings``), what an embeddings
        endpoint would return; instance-aware prompts (IPL) are built from it. No API call."""
        if getattr(self, "_input_embeddings", None) is None:
            self._input_embeddings = mean_embeddings(self.model, self.examples, self._opts["max_length"])
        return self._input_embeddings

    def value_scales(self, n_prompt: int, deep: bool = False) -> np.ndarray:
        """The scale of what a prompt is added to: the one thing a method may know of the model beyond
        its outputs (model-scaled projections need it), and the only way it learns it. (1,): the word
        embeddings' std; deep=True, (layers,): then for each layer l >= 1 the clipped std of the hidden
        states entering it (``layer_scales``). A service would publish these once; no API call."""
        from ..model.scales import layer_scales
        from .published import value_scale

        if self.remote:
            return self.model.value_scales(self.task, self.examples, self.session_options, n_prompt, deep)
        if not deep:
            return np.array([value_scale(self.model)])
        return layer_scales(self.model, self.task, self.examples, n_prompt, self.position)

    def __repr__(self) -> str:
        return (f"BlackBoxLM({self.model.name}, task={self.task.name}, examples={len(self.examples)}, "
                f"position={self.position}, calls={self.calls}/{self.budget})")


@torch.no_grad()
def label_logits(model, task, examples: Examples, prompt=None, *, position: str = "auto", batch_size: int = 64,
                 return_hidden: bool = False, max_length: int | None = None, adapters: AdapterSet | None = None,
                 per_example: bool = False):
    """Label-word logits (n, classes) of one prompt (or none) on any number of examples.

    prompt: None, a shallow prompt (tokens, hidden), a deep prompt (layers, tokens, hidden), with
    per_example=True one prompt per example (n, tokens, hidden), or an instance-aware prompt (an
    object with ``for_examples(model, examples)``, IPL's ``res.prompt``). Examples are grouped by
    length, so that little time goes into padding.
    """
    task = get_task(task)
    max_length = max_length or model.max_length
    if len(examples) == 0:
        raise ValueError("Cannot evaluate on an empty split.")
    position = resolve_position(model, position)
    check_adapters(model, adapters, one=True)
    if prompt is not None and hasattr(prompt, "for_examples"):
        prompt, per_example = prompt.for_examples(model, examples), True
    if prompt is not None:
        prompt = torch.as_tensor(np.asarray(prompt) if not torch.is_tensor(prompt) else prompt)
        if per_example and (prompt.ndim != 3 or len(prompt) != len(examples)):
            raise ValueError(f"Per-example prompts need shape ({len(examples)}, tokens, {model.hidden_size}), one "
                             f"per example; got {tuple(prompt.shape)}.")
        _, shallow, deep = as_prompts(prompt if per_example else prompt[None], model)  # per example: (n, tokens, H)
    else:
        shallow = deep = None
    n = 0 if prompt is None else prompt.shape[-2]
    order = np.argsort([len(ex.text_a) + len(ex.text_b or "") for ex in examples], kind="stable")
    logits = torch.empty(len(examples), task.num_classes)
    hidden = torch.empty(len(examples), model.hidden_size) if return_hidden else None
    cut = []
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        part = [examples[int(i)] for i in idx]
        options = dict(position=position, max_length=max_length, use_cache=adapters is None)
        fw = (model.forward(task, part, {**options, "bucket": False}) if getattr(model, "remote", False)
              else Forward(model, task, part, n, **options))
        cut += fw.cut
        sh = shallow[torch.as_tensor(idx, device=shallow.device)][None] if per_example else shallow  # (1, batch, n, H)
        lg, h = fw.run(sh, deep, 1, return_hidden, adapters=adapters)
        logits[idx] = lg[0]
        if return_hidden:
            hidden[idx] = h[0]
    guards.finite_logits(logits[None])  # a NaN would score as class 0
    guards.warn_cut(cut, max_length, f"examples of {getattr(examples, 'name', 'the examples')}")
    return (logits, hidden) if return_hidden else logits


def evaluate(model, task, examples: Examples, prompt=None, *, position: str = "auto", batch_size: int = 64,
             return_predictions: bool = False, calibration=None, adapters: AdapterSet | None = None,
             per_example: bool = False, max_length: int | None = None):
    """The task's metric (accuracy, F1 or macro-F1) of a prompt, or of the bare template, on examples.

    calibration: a fitted :class:`~bbtkit.tuning.calibration.Calibration` applied to the logits first;
    adapters: one candidate's ``AdapterSet`` (DFO-LoRA's ``res.adapters``), applied for the evaluation (a set of
    several candidates is refused: ``adapters.take(c, c + 1)`` picks one);
    per_example: the prompt is one per example (see ``label_logits``; IPL's ``res.prompt`` needs no flag);
    max_length: tokens of one formatted input (default ``model.max_length``, 256), longer ones are cut.
    """
    task = get_task(task)
    guards.labels_in_range([ex.label for ex in examples], task)
    logits = label_logits(model, task, examples, prompt, position=position, batch_size=batch_size, adapters=adapters,
                          per_example=per_example, max_length=max_length)
    if calibration is not None:
        logits = calibration.apply(logits)
    preds = logits.argmax(-1).numpy()
    metric = task.score(preds, [ex.label for ex in examples])
    return (metric, preds) if return_predictions else metric
