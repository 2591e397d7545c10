"""The client of a class server: ``bk.connect(url, key)`` returns a model handle that ``BlackBoxLM``,
``evaluate``, ``label_logits`` and every method accept in place of a local model.

The handle carries what a service publishes (name, family, sizes, the adapters' shapes) and nothing that
cannot cross a wire: no weights, no hooks. Each call goes over HTTP to ``python -m bbtkit serve``:
the examples once per connection (a *session*, encoded once on the server), then one request per
population, tensors as safetensors bytes (``api.wire``). Every charged request carries an idempotency
key, and a request that fails on the way is retried with the same key, so the server charges it once.
"""
from __future__ import annotations

import base64
import hashlib
import http.client
import json
import tempfile
import threading
import time
import urllib.parse
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from . import wire
from .blackbox import BudgetExceededError


class ServerUnavailableError(ConnectionError):
    """The server did not answer (down, unreachable, or too slow) after every retry."""


class AuthenticationError(PermissionError):
    """The server refused the key (unknown, mistyped or revoked): HTTP 401."""


class NotAllowedError(PermissionError):
    """The server does not offer what was asked (e.g. hidden states): HTTP 403."""


class KeyBudgetExceededError(BudgetExceededError):
    """The key's budget on the server is spent: HTTP 402. Your teacher can raise it."""


class RemoteRequestError(ValueError):
    """The server found the request malformed (HTTP 4xx); the message says what to change."""


def connect(url: str, key: str, *, timeout: float = 120.0, retries: int = 4) -> "Remote":
    """A handle on the model served at ``url`` (e.g. ``"http://127.0.0.1:8000"``), used with ``key``.

    The key is checked at once (a wrong key fails here, not mid-run). timeout: seconds one request may
    take; retries: how often a request that got no answer is sent again (same idempotency key, so it is
    charged once), waiting 0.5, 1, 2, ... s between tries.
    """
    remote = Remote(url, key, timeout=timeout, retries=retries)
    remote.usage()
    return remote


class Remote:
    """A served model, as the black box sees it. See :func:`connect`."""

    remote = True

    def __init__(self, url: str, key: str, *, timeout: float = 120.0, retries: int = 4):
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"url must look like http://HOST:PORT (the address your teacher gave), not {url!r}.")
        if not isinstance(key, str) or not key.startswith("bbt_"):
            raise AuthenticationError("A class-server key starts with 'bbt_'; copy the whole key your teacher gave you.")
        self.url, self._key, self.timeout, self.retries = url.rstrip("/"), key, float(timeout), int(retries)
        self._parts = parts
        self._local = threading.local()  # one keep-alive connection per thread
        self._sessions: dict[str, tuple[str, list[int]]] = {}  # content digest -> (session id, cut per example)
        info = self.request("GET", "/v1/info")
        self.info = info
        self.name, self.family = info["name"], info["family"]
        self.hidden_size, self.num_layers, self.max_length = info["hidden_size"], info["num_layers"], info["max_length"]
        self.dtype = getattr(torch, info["dtype"])
        self.device = torch.device("cpu")  # where the answers land
        self.tokenizer = SimpleNamespace(mask_token=info.get("mask_token"), chat_template=info.get("chat_template"))

    def __repr__(self) -> str:
        return f"Remote({self.name} at {self.url})"

    # --- HTTP --------------------------------------------------------------------------------
    def _connection(self, fresh: bool = False) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            cls = http.client.HTTPSConnection if self._parts.scheme == "https" else http.client.HTTPConnection
            conn = self._local.conn = cls(self._parts.hostname, self._parts.port, timeout=self.timeout)
        return conn

    def request(self, method: str, path: str, body=None, *, idempotency: str | None = None):
        """Send one request (retried on no answer) and return its JSON, or (arrays, meta) for safetensors."""
        headers = {"Authorization": f"Bearer {self._key}"}
        if idempotency:
            headers["Idempotency-Key"] = idempotency
        if isinstance(body, (dict, list)):
            body, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        elif body is not None:
            headers["Content-Type"] = "application/octet-stream"
        why, attempt, waited = None, 0, 0.0
        while attempt <= self.retries:
            if attempt:
                time.sleep(min(0.5 * 2 ** (attempt - 1), 8.0))
            attempt += 1
            try:
                conn = self._connection(fresh=attempt > 0)
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                data, status, kind = resp.read(), resp.status, resp.getheader("Content-Type", "")
            except (OSError, http.client.HTTPException) as err:
                why = (f"did not answer within {self.timeout:g} s" if isinstance(err, TimeoutError)
                       else f"could not be reached ({type(err).__name__}: {err})")
                continue
            if status == 503:  # starting or shutting down: worth another try
                why = "is not ready (503)"
                continue
            wait = _seconds(resp.getheader("Retry-After")) if status == 429 else None
            if wait is not None and waited < self.timeout:  # rate-limited, not charged: wait, send it again
                time.sleep(wait)
                waited, attempt = waited + wait, attempt - 1
                continue
            if status >= 400:
                raise _error(status, data, self.url)
            return wire.unpack(data, limit=2 ** 40) if kind.startswith("application/octet-stream") else json.loads(data)
        raise ServerUnavailableError(
            f"The server at {self.url} {why}, {self.retries + 1} tries over about "
            f"{sum(min(0.5 * 2 ** k, 8.0) for k in range(self.retries)):.0f} s. Is it running? Ask whoever runs it, "
            "or start one with `python -m bbtkit serve`. A tuning run stops here and keeps its best: run it again "
            "with the same checkpoint to resume.")

    # --- what the API layer asks --------------------------------------------------------------
    def usage(self) -> dict:
        """This key's usage: calls, tokens, seconds, budget and what is left."""
        return self.request("GET", "/v1/usage")

    @staticmethod
    def payload(task, examples, options: dict) -> tuple[dict, str]:
        """(what a session sends, its digest): the task, the texts and the options, built once per API."""
        payload = {"task": wire.task_to_json(task), "examples": wire.examples_to_json(examples), "options": options}
        return payload, hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def session(self, task, examples, options: dict) -> tuple[str, list[int]]:
        """(session id, tokens cut per example) for these examples, sent once per connection."""
        return self._session(*self.payload(task, examples, options))

    def _session(self, payload: dict, digest: str) -> tuple[str, list[int]]:
        if digest not in self._sessions:
            out = self.request("POST", "/v1/sessions", payload)
            self._sessions[digest] = (out["session"], out["cut"])
        return self._sessions[digest]

    def _forget(self, session: str) -> None:
        self._sessions = {d: s for d, s in self._sessions.items() if s[0] != session}

    def call(self, payload: dict, digest: str, route: str, tensors: dict, meta: dict):
        """One charged request on a session (``payload``); a server that lost the session (a restart) gets it again."""
        key = uuid.uuid4().hex
        for _ in range(2):
            sid, _cut = self._session(payload, digest)
            try:
                return self.request("POST", f"/v1/sessions/{sid}/{route}", wire.pack(tensors, meta), idempotency=key)
            except RemoteRequestError as err:
                if "unknown session" not in str(err):
                    raise
                self._forget(sid)
        raise RemoteRequestError("The server forgot this session twice in a row; try again later.")

    def forward(self, task, examples, options: dict) -> "RemoteForward":
        return RemoteForward(self, task, examples, options)

    def mean_embeddings(self, examples, max_length: int | None = None) -> torch.Tensor:
        arrays, _ = self.request("POST", "/v1/embeddings", {"examples": wire.examples_to_json(examples),
                                                             "max_length": max_length})
        return torch.from_numpy(arrays["embeddings"])

    def value_scales(self, task, examples, options: dict, n_prompt: int, deep: bool) -> np.ndarray:
        sid, _ = self.session(task, examples, options)
        out = self.request("POST", f"/v1/sessions/{sid}/scales", {"n_prompt": int(n_prompt), "deep": bool(deep)})
        return np.asarray(out["scales"], dtype=np.float64)

    def token_lengths(self, prompts: list[str], chat: bool, system: str | None) -> list[int]:
        """Tokens of each prompt as the served model reads it (chat template or not). Not charged."""
        return self.request("POST", "/v1/tokens", {"prompts": prompts, "chat": chat, "system": system})["lengths"]

    def generate(self, request: dict) -> dict:
        """{"completions": [[text, tokens, finish], ...], "prompt_tokens": n}; one charged call per prompt."""
        return self.request("POST", "/v1/generate", request, idempotency=uuid.uuid4().hex)

    def submit(self, res, task: str | None = None) -> dict:
        """Send a result (``Result``, saved or not) to the server's competition, to be scored on its held-back
        test split; returns {submission, task, score, metric, submissions_left}. Uses one submission."""
        return self.request("POST", f"/v1/submissions/{urllib.parse.quote(task or res.task, safe='')}",
                            result_upload(res), idempotency=uuid.uuid4().hex)

    def leaderboard(self) -> dict:
        """{task: [each student's best submission, best first]} (the page is at ``url + "/leaderboard"``)."""
        return self.request("GET", "/v1/leaderboard")

    def adapter_shapes(self, targets=("q", "k")) -> dict[str, tuple[int, int]]:
        shapes = self.info["adapter_shapes"]
        missing = [t for t in targets if t not in shapes]
        if missing:
            raise ValueError(f"The server adapts only {sorted(shapes)}; {missing} are not offered.")
        return {t: tuple(shapes[t]) for t in targets}


def result_upload(res) -> dict:
    """A result as the server's competition reads it: the folder ``res.save`` writes, as JSON (result.json's
    text, z's numbers, AJO's classifier as base64 safetensors), so the server checks it as ``load_result`` does."""
    with tempfile.TemporaryDirectory(prefix="bbtkit-submit-") as tmp:
        folder = res.save(Path(tmp) / "result")
        clf = folder / "classifier.safetensors"
        z = np.load(folder / "z.npz", allow_pickle=False)["z"]
        return {"result_json": (folder / "result.json").read_text(encoding="utf-8"), "z": z.ravel().tolist(),
                "z_shape": list(z.shape),
                "classifier": base64.b64encode(clf.read_bytes()).decode() if clf.exists() else None}


class RemoteForward:
    """What ``BlackBoxLM`` runs per call, on the server: the same ``run`` as a local ``Forward``."""

    def __init__(self, remote: Remote, task, examples, options: dict):
        self.remote, self.batch, self.context_cached = remote, len(examples), False
        self.payload, self.digest = remote.payload(task, examples, options)  # once, not per call
        _, self.cut = remote._session(self.payload, self.digest)

    def run(self, shallow, deep, pop: int, return_hidden: bool = False, max_batch_tokens: int = 16384, adapters=None):
        prompts = deep if deep is not None else shallow
        tensors, meta = wire.adapters_to_tensors(adapters)
        meta.update(pop=int(pop), return_hidden=bool(return_hidden),
                    per_example=prompts is not None and deep is None and prompts.ndim == 4)
        if prompts is not None:
            tensors["prompts"] = prompts
        arrays, _ = self.remote.call(self.payload, self.digest, "logits", tensors, meta)
        hidden = arrays.get("hidden")
        return torch.from_numpy(arrays["logits"]), None if hidden is None else torch.from_numpy(hidden)

    def cache_layers_below(self, layer: int, deep=None, adapters=None) -> None:
        """Nothing to send: the server's own API fills its layer cache (``layer_cache`` in the options)."""


def _seconds(header: str | None) -> float | None:
    """A Retry-After header's seconds (decimals allowed), at most a minute; None if absent or not a number."""
    try:
        return None if header is None else min(max(float(header), 0.0), 60.0)
    except ValueError:
        return None


def _error(status: int, data: bytes, url: str) -> Exception:
    try:
        message = json.loads(data).get("detail", "")
    except ValueError:
        message = data[:300].decode("utf-8", "replace")
    if status == 401:
        return AuthenticationError(f"The server at {url} refused the key: {message} Check that you copied the whole "
                                   "key, or ask for a new one if it was revoked.")
    if status == 402:
        return KeyBudgetExceededError(f"{message} (server at {url}). Ask whoever runs the server to raise your budget.")
    if status == 403:
        return NotAllowedError(f"{message} (server at {url}).")
    if 400 <= status < 500:
        return RemoteRequestError(f"The server at {url} refused the request ({status}): {message}")
    return RuntimeError(f"The server at {url} failed on the request ({status}): {message} Tell whoever runs it.")
