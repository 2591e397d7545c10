"""The class server: one model behind an HTTP API (FastAPI), keys and budgets in a ledger, and one
worker thread that packs concurrent requests (``serve.batching``). ``python -m bbtkit serve`` runs it.

Routes (every one but ``/v1/info`` needs ``Authorization: Bearer <key>``):

* ``GET /v1/info``: what the service publishes (model name, family, sizes, adapter shapes, dtype);
* ``GET /v1/usage``: this key's calls, tokens, seconds, budget and what is left;
* ``POST /v1/sessions``: JSON {task, examples (texts only), options} -> {session, cut}, sent once;
* ``POST /v1/sessions/{id}/logits``: safetensors {prompts?, adapter.*} + {return_hidden, per_example} ->
  safetensors {logits (pop, batch, classes), hidden?}; one API call per candidate, charged before the
  pass (and refunded if it fails), once per ``Idempotency-Key``;
* ``POST /v1/generate``: JSON {prompts, max_new_tokens, temperature, top_p, stop, seed, chat, system} ->
  {completions: [[text, tokens, finish]], prompt_tokens}; one call per prompt, charged as above;
* ``POST /v1/sessions/{id}/scales``, ``POST /v1/embeddings`` and ``POST /v1/tokens`` (prompt lengths):
  published values, not charged.
"""
from __future__ import annotations

import asyncio
import functools
import time

import torch
from fastapi import FastAPI, HTTPException, Request, Response
from starlette.concurrency import run_in_threadpool

from ..api import wire
from ..api.blackbox import as_prompts, check_adapters
from ..api.generate import GenerativeLM
from ..api.published import adapter_shapes, mean_embeddings
from .batching import Batcher, Job
from .competition_routes import router
from .defenses import Answers, RateLimit
from .requests import authenticate, read_body, read_json, run_on_model, throttle
from .ledger import BudgetExhausted, Ledger
from .sessions import Sessions

OCTET = "application/octet-stream"
MAX_PROMPTS, MAX_TEXT, MAX_NEW_TOKENS = 64, 20000, 1024  # one generation request


def model_info(model) -> dict:
    try:
        shapes = adapter_shapes(model)
    except (ValueError, KeyError):
        shapes = {}
    return {"name": model.name, "family": model.family, "hidden_size": model.hidden_size,
            "num_layers": model.num_layers, "max_length": model.max_length,
            "dtype": str(model.dtype).replace("torch.", ""), "adapter_shapes": shapes,
            "mask_token": getattr(model.tokenizer, "mask_token", None),
            "chat_template": bool(getattr(model.tokenizer, "chat_template", None)),
            "positions": getattr(model.config, "n_positions", None) or getattr(model.config, "max_position_embeddings", None)}


def create_app(model, ledger: Ledger, *, allow_hidden: bool = False, batcher: Batcher | None = None,
               sessions: int = 64, max_body: int = wire.MAX_BODY, competition=None, answers: Answers | None = None,
               rate_limit: RateLimit | None = None, shared_sessions=None) -> FastAPI:
    """The ASGI app serving ``model``; ``allow_hidden``: answer final hidden states (AJO needs them; not with
    ``answers`` other than full); ``competition``: a ``serve.competition.Competition`` (its routes:
    ``serve.competition_routes``); ``answers``, ``rate_limit``: the defenses of ``serve.defenses``;
    ``shared_sessions``: where replicas share sessions (``serve.on_ray``), so that any replica answers any."""
    app = FastAPI(title="bbtkit class server", docs_url=None, redoc_url=None)
    app.state.model, app.state.ledger, app.state.max_body, app.state.competition = model, ledger, max_body, competition
    app.include_router(router)
    app.state.answers, app.state.rate_limit = answers or Answers(), rate_limit or RateLimit()
    app.state.sessions, app.state.batcher = Sessions(model, sessions, shared_sessions), batcher or Batcher()
    info = {**model_info(model), "answers": repr(app.state.answers), "rate_limit": app.state.rate_limit.rate,
            "hidden_states": allow_hidden and app.state.answers.mode == "full"}

    async def on_model(fn, *args):
        return await run_on_model(app, fn, *args)

    @app.get("/v1/info")
    async def get_info():
        return info

    @app.get("/v1/usage")
    async def get_usage(request: Request):
        key = await authenticate(request)
        return await run_in_threadpool(ledger.usage, key)

    @app.post("/v1/sessions")
    async def post_session(request: Request):
        await authenticate(request)
        payload = await read_json(request)
        try:
            sid, cut = await run_in_threadpool(app.state.sessions.register, payload)
        except (ValueError, TypeError, KeyError) as err:
            raise HTTPException(400, f"Bad session: {err}") from None
        return {"session": sid, "cut": cut}

    async def session(sid: str):
        api = app.state.sessions.get(sid)
        if api is None and app.state.sessions.shared is not None:  # registered on another replica
            api = await run_in_threadpool(app.state.sessions.recover, sid)
        if api is None:
            raise HTTPException(404, "unknown session: send the examples again (POST /v1/sessions).")
        return api

    @app.post("/v1/sessions/{sid}/logits")
    async def post_logits(sid: str, request: Request):
        key = await authenticate(request)
        api = await session(sid)
        job = _job(api, await read_body(request, max_body), allow_hidden and app.state.answers.mode == "full")
        throttle(request, key)
        try:
            call_id, new = await run_in_threadpool(ledger.charge, key, job.pop, "logits",
                                                   request.headers.get("idempotency-key"))
        except BudgetExhausted as err:
            raise HTTPException(402, str(err)) from None
        try:
            ans = await asyncio.wrap_future(app.state.batcher.submit(job))
        except Exception as err:
            if new:
                await run_in_threadpool(ledger.refund, call_id)
            raise HTTPException(400 if isinstance(err, ValueError) else 500, f"{type(err).__name__}: {err}") from None
        if new:
            await run_in_threadpool(ledger.finish, call_id, ans.tokens, ans.seconds)
        return Response(wire.pack({"logits": app.state.answers(ans.logits), "hidden": ans.hidden}, {"packed": ans.packed}),
                        media_type=OCTET)

    @app.post("/v1/sessions/{sid}/scales")
    async def post_scales(sid: str, request: Request):
        await authenticate(request)
        api, body = await session(sid), await read_json(request)
        n, deep = body.get("n_prompt"), body.get("deep", False)
        if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= 4096 or not isinstance(deep, bool):
            raise HTTPException(400, "scales takes {n_prompt: whole number of prompt tokens, deep: true|false}.")
        return {"scales": (await on_model(api.value_scales, n, deep)).tolist()}

    @app.post("/v1/embeddings")
    async def post_embeddings(request: Request):
        await authenticate(request)
        body = await read_json(request)
        try:
            examples = wire.examples_from_json(body.get("examples"))
        except ValueError as err:
            raise HTTPException(400, str(err)) from None
        ml = body.get("max_length")
        ml = ml if isinstance(ml, int) and 1 <= ml <= 1024 else None
        return Response(wire.pack({"embeddings": await on_model(mean_embeddings, model, examples, ml)}), media_type=OCTET)

    def generator(body: dict) -> GenerativeLM:
        chat, system, prompts = body.get("chat", False), body.get("system"), body.get("prompts")
        if not isinstance(chat, bool) or not (system is None or isinstance(system, str) and len(system) <= MAX_TEXT):
            raise HTTPException(400, "chat must be true or false, and system a string (or null).")
        if not isinstance(prompts, list) or not 1 <= len(prompts) <= MAX_PROMPTS or \
                any(not isinstance(p, str) or len(p) > MAX_TEXT for p in prompts):
            raise HTTPException(400, f"prompts must be a list of 1..{MAX_PROMPTS} strings of at most {MAX_TEXT} characters.")
        try:
            return GenerativeLM(model, chat=chat, system=system, batch_size=len(prompts))
        except ValueError as err:
            raise HTTPException(400, str(err)) from None

    @app.post("/v1/tokens")
    async def post_tokens(request: Request):
        await authenticate(request)
        body = await read_json(request)
        gen = generator(body)
        return {"lengths": [len(gen._ids(p)) for p in body["prompts"]]}

    @app.post("/v1/generate")
    async def post_generate(request: Request):
        key = await authenticate(request)
        throttle(request, key)
        body = await read_json(request)
        gen, args = generator(body), {k: body.get(k) for k in ("max_new_tokens", "temperature", "top_p", "stop", "seed")}
        if not isinstance(args["max_new_tokens"], int) or not 1 <= args["max_new_tokens"] <= MAX_NEW_TOKENS:
            raise HTTPException(400, f"max_new_tokens must be a whole number 1..{MAX_NEW_TOKENS}.")
        try:
            call_id, new = await run_in_threadpool(ledger.charge, key, len(body["prompts"]), "generate",
                                                   request.headers.get("idempotency-key"))
        except BudgetExhausted as err:
            raise HTTPException(402, str(err)) from None
        t0 = time.perf_counter()
        try:
            done = await on_model(functools.partial(gen.complete, body["prompts"], **args))
        except BaseException:
            if new:
                await run_in_threadpool(ledger.refund, call_id)
            raise
        if new:
            await run_in_threadpool(ledger.finish, call_id, gen.prompt_tokens + gen.completion_tokens,
                                    time.perf_counter() - t0)
        return {"completions": [[c.text, c.tokens, c.finish] for c in done], "prompt_tokens": gen.prompt_tokens}

    return app


def _job(api, body: bytes, allow_hidden: bool) -> Job:
    """The request's candidates, checked in full before anything is charged (400/403/413 if not)."""
    try:
        arrays, meta = wire.unpack(body, limit=len(body))
        hidden, per_example = meta.get("return_hidden", False), meta.get("per_example", False)
        if not isinstance(hidden, bool) or not isinstance(per_example, bool):
            raise wire.WireError("return_hidden and per_example must be true or false.")
        adapters = wire.adapters_from_tensors(arrays, meta)
        prompts = None if "prompts" not in arrays else torch.from_numpy(arrays["prompts"])
        pop, _, _ = as_prompts(prompts, api.model, len(api.examples), per_example)
        check_adapters(api.model, adapters)
    except ValueError as err:
        raise HTTPException(400, str(err)) from None
    if hidden and not allow_hidden:
        raise HTTPException(403, "This server does not return hidden states (its owner did not allow them).")
    if adapters is not None and prompts is not None and adapters.pop != pop:
        raise HTTPException(400, f"{pop} prompts but {adapters.pop} adapter sets: send one of each per candidate.")
    pop = adapters.pop if adapters is not None else pop
    return Job(api, prompts, pop, per_example, hidden, adapters)
