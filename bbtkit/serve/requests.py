"""What every route of the class server does with a request: read a bounded body, find its key, and run
work on the model's one thread."""
from __future__ import annotations

import asyncio
import json

from fastapi import HTTPException, Request
from starlette.concurrency import run_in_threadpool

from .ledger import KeyError401


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it passes ``limit`` bytes (whatever Content-Length says)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"The body is {declared} bytes, over the server's limit of {limit}; "
                                 "send fewer candidates per call.")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"The body passes the server's limit of {limit} bytes; send fewer candidates.")
        chunks.append(chunk)
    return b"".join(chunks)


async def authenticate(request: Request):
    """The request's key (``Authorization: Bearer bbt_...``), or 401."""
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    try:
        return await run_in_threadpool(request.app.state.ledger.authenticate, token)
    except KeyError401 as err:
        raise HTTPException(401, f"{err} Send the key as 'Authorization: Bearer bbt_...'.") from None


async def read_json(request: Request) -> dict:
    try:
        return json.loads(await read_body(request, request.app.state.max_body))
    except ValueError:
        raise HTTPException(400, "The body must be JSON.") from None


async def run_on_model(app, fn, *args):
    """fn(*args) on the model's one thread; a ValueError is the client's (400)."""
    try:
        return await asyncio.wrap_future(app.state.batcher.call(fn, *args))
    except ValueError as err:
        raise HTTPException(400, str(err)) from None


def throttle(request: Request, key) -> None:
    """429 with Retry-After (seconds, a decimal) when the key is over the server's rate limit; nothing charged."""
    wait = request.app.state.rate_limit.wait_for(key.id)
    if wait > 0:
        raise HTTPException(429, f"Rate limit: {request.app.state.rate_limit.rate:g} requests per second per key.",
                            headers={"Retry-After": f"{wait:.3f}"})
