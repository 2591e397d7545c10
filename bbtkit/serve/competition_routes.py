"""The competition's routes: ``POST /v1/submissions/{task}`` (a saved result, scored on the held-back test
split; JSON {submission, task, score, metric, submissions_left}), ``GET /v1/leaderboard`` (JSON) and
``GET /leaderboard`` (the page, HTML without JavaScript). No response holds a prediction or a label."""
from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from . import competition as comp
from .requests import authenticate, read_json, run_on_model
from .ledger import BudgetExhausted

router = APIRouter()


def _competition(request: Request) -> comp.Competition:
    found = request.app.state.competition
    if found is None:
        raise HTTPException(404, "This server runs no competition (start it with --competition TASK ...).")
    return found


@router.post("/v1/submissions/{task}")
async def post_submission(task: str, request: Request):
    key = await authenticate(request)
    competition, app = _competition(request), request.app
    body = await read_json(request)
    try:
        res = await run_in_threadpool(comp.result_from_upload, body)
        comp.check_submission(res, task, competition, app.state.model)
    except LookupError as err:
        raise HTTPException(404, str(err)) from None
    except ValueError as err:  # a damaged folder (ResultFileError) too
        raise HTTPException(400, f"Refused: {err}") from None
    ledger = app.state.ledger
    try:
        left = await run_in_threadpool(ledger.take_submission, key)
    except BudgetExhausted as err:
        raise HTTPException(429, str(err)) from None
    try:
        score = await run_on_model(app, comp.test_score, app.state.model, res, competition.tests[task])
    except BaseException:
        await run_in_threadpool(ledger.give_back_submission, key)
        raise
    metric = (res.task_definition.metric if res.task_definition is not None else "metric")
    sid = await run_in_threadpool(ledger.record_submission, key, task, res.method, score, metric, res.api_calls)
    return {"submission": sid, "task": task, "score": float(score), "metric": metric, "submissions_left": left}


@router.get("/v1/leaderboard")
async def get_leaderboard(request: Request):
    return await run_in_threadpool(comp.leaderboard, request.app.state.ledger, _competition(request))


@router.get("/leaderboard", response_class=HTMLResponse)
async def get_page(request: Request):
    competition, ledger = _competition(request), request.app.state.ledger
    board = await run_in_threadpool(comp.leaderboard, ledger, competition)
    subs = await run_in_threadpool(ledger.submissions)
    return HTMLResponse(await run_in_threadpool(comp.page, board, subs, request.app.state.model.name))
