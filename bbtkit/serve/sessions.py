"""Sessions: a student's examples, sent once and prepared once, as a server-side ``BlackBoxLM``.

A session is named by the SHA-256 of what defines it (the task, the texts, the options), so students
who tune on the same split share one session (and its cached context), and their requests can be
packed into one forward pass. Sessions live in memory, at most ``limit`` of them (the least recently
used goes first); a client whose session is gone (evicted, or the server restarted) sends it again.
Labels never come: label-word logits do not need them. Replicas of one server (``serve.on_ray``) share
what defines each session (``shared``: ``put(sid, payload)``, ``get(sid)``), so a replica that has not seen a
session registers it from there instead of answering 404.
"""
from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict

from ..api import wire
from ..api.blackbox import BlackBoxLM
from ..api.published import token_counts

OPTIONS = {"position": str, "padding_side": str, "use_cache": bool, "max_length": int, "layer_cache": bool,
           "bucket": bool}
MAX_LENGTH = 1024


def check_options(options) -> dict:
    """The BlackBoxLM options a session may set, type-checked."""
    if not isinstance(options, dict):
        raise wire.WireError("options must be a JSON object.")
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise wire.WireError(f"Unknown session options {unknown}; known: {sorted(OPTIONS)}.")
    for name, value in options.items():
        if not isinstance(value, OPTIONS[name]) or (OPTIONS[name] is int and isinstance(value, bool)):
            raise wire.WireError(f"Session option {name!r} must be {OPTIONS[name].__name__}, not {value!r}.")
    if not 1 <= options.get("max_length", 1) <= MAX_LENGTH:
        raise wire.WireError(f"max_length must be 1..{MAX_LENGTH} tokens.")
    return options


class Sessions:
    """The server's sessions over one model, least recently used evicted beyond ``limit``."""

    def __init__(self, model, limit: int = 64, shared=None):
        self.model, self.limit, self.shared = model, int(limit), shared
        self._apis: OrderedDict[str, BlackBoxLM] = OrderedDict()
        self._lock = threading.Lock()

    def register(self, payload: dict, share: bool = True) -> tuple[str, list[int]]:
        """(session id, tokens cut per example) for {"task", "examples", "options"}; ValueError if bad."""
        if not isinstance(payload, dict) or not {"task", "examples"} <= set(payload):
            raise wire.WireError("A session is a JSON object with task, examples and options.")
        task = wire.task_from_json(payload["task"])
        examples = wire.examples_from_json(payload["examples"])
        options = check_options(payload.get("options", {}))
        sid = hashlib.sha256(json.dumps([wire.task_to_json(task), wire.examples_to_json(examples), options],
                                        sort_keys=True).encode()).hexdigest()[:32]
        with self._lock:
            if sid in self._apis:
                self._apis.move_to_end(sid)
                api = self._apis[sid]
            else:
                api = None
        if api is None:
            api = BlackBoxLM(self.model, task, examples, **options)  # checks the task against the tokenizer
            with self._lock:
                self._apis[sid] = api
                while len(self._apis) > self.limit:
                    self._apis.popitem(last=False)
            if share and self.shared is not None:
                self.shared.put(sid, payload)
        cut = [c for _, c in token_counts(self.model, task, examples, api._opts["max_length"])]
        return sid, cut

    def get(self, sid: str) -> BlackBoxLM | None:
        with self._lock:
            api = self._apis.get(sid)
            if api is not None:
                self._apis.move_to_end(sid)
            return api

    def recover(self, sid: str) -> BlackBoxLM | None:
        """The session another replica registered (from ``shared``), registered here too; None if unknown."""
        payload = self.shared.get(sid) if self.shared is not None else None
        if payload is None:
            return None
        self.register(payload, share=False)
        return self.get(sid)

    def __len__(self) -> int:
        return len(self._apis)
