"""Dynamic batching: the one thread that runs the model, packing concurrent requests into shared passes.

Requests wait in a queue. The worker takes the first, waits at most ``max_wait`` seconds for more (up to
``max_candidates`` candidates in all), and packs those that ask the same API the same kind of question
(the same examples and options, prompts of the same shape, hidden states or not, no adapters) into one
population, so that a class that tunes on the same split shares forward passes. Everything else that
touches the model (scales, embeddings) runs on the same thread as a plain job: hooks that inject
prompts live on the shared model, so two forward passes must never overlap.

``max_wait=0`` or ``enabled=False`` gives a server that runs one request at a time (the baseline the
load benchmark compares with). A packed population that fails (e.g. one candidate's logits are not finite)
is run again request by request, so one student's bad candidate fails only that student's request.
"""
from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import torch


@dataclass
class Job:
    """One request's candidates on one API (a server-side ``BlackBoxLM``)."""

    api: object
    prompts: torch.Tensor | None
    pop: int
    per_example: bool = False
    hidden: bool = False
    adapters: object = None
    future: Future = field(default_factory=Future)

    def group(self):
        """Jobs with equal groups can be run as one population."""
        if self.prompts is None or self.adapters is not None:
            return id(self)
        return id(self.api), tuple(self.prompts.shape[1:]), self.per_example, self.hidden


@dataclass
class Answer:
    logits: torch.Tensor
    hidden: torch.Tensor | None
    seconds: float  # this job's share of the pass's wall time
    tokens: int  # padded tokens run for this job's candidates
    packed: int  # requests in the pass this job ran in


class Batcher:
    """The model's one worker thread; ``submit`` a Job (or ``call`` a function) and wait on the future."""

    def __init__(self, max_wait: float = 0.002, max_candidates: int = 512, enabled: bool = True):
        self.max_wait, self.max_candidates, self.enabled = float(max_wait), int(max_candidates), bool(enabled)
        self._queue: queue.Queue = queue.Queue()
        self.passes = 0  # forward passes run (a packed population counts once)
        self.requests = 0
        self._thread = threading.Thread(target=self._loop, name="bbtkit-batcher", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> Future:
        self._queue.put(job)
        return job.future

    def call(self, fn, *args) -> Future:
        """Run fn(*args) on the model's thread."""
        fut: Future = Future()
        self._queue.put((fn, args, fut))
        return fut

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, tuple):
                fn, args, fut = item
                _settle(fut, fn, *args)
                continue
            jobs = [item]
            deadline = time.monotonic() + self.max_wait
            while self.enabled and sum(j.pop for j in jobs) < self.max_candidates:
                try:
                    nxt = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if nxt is None or isinstance(nxt, tuple):  # shutdown or a plain job: run what is packed first
                    self._queue.put(nxt)
                    break
                jobs.append(nxt)
            groups: dict = {}
            for j in jobs:
                groups.setdefault(j.group(), []).append(j)
            for group in groups.values():
                self._run(group)

    def _run(self, jobs: list[Job]) -> None:
        self.passes += 1
        self.requests += len(jobs)
        api, first = jobs[0].api, jobs[0]
        t0 = time.perf_counter()
        try:
            prompts = first.prompts if len(jobs) == 1 else torch.cat([j.prompts for j in jobs])
            out = api(prompts, return_hidden=first.hidden, adapters=first.adapters, per_example=first.per_example)
        except Exception as err:  # noqa: BLE001  (each request gets its own answer or error)
            if len(jobs) == 1:
                first.future.set_exception(err)
            else:
                for j in jobs:
                    self._run([j])
            return
        total, seconds, s = sum(j.pop for j in jobs), time.perf_counter() - t0, 0
        fw = api.forward_for(0 if first.prompts is None else first.prompts.shape[-2], context=first.adapters is None)
        width = getattr(fw, "padded_tokens", None) or fw.batch * fw.width  # tokens run per candidate (the one used)
        for j in jobs:
            h = None if out.hidden is None else out.hidden[s:s + j.pop]
            j.future.set_result(Answer(out.logits[s:s + j.pop], h, seconds * j.pop / total, width * j.pop, len(jobs)))
            s += j.pop


def _settle(fut: Future, fn, *args) -> None:
    try:
        fut.set_result(fn(*args))
    except Exception as err:  # noqa: BLE001
        fut.set_exception(err)
