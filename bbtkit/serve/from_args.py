"""The app that ``python -m bbtkit serve``'s arguments describe: the model loaded, the batcher, the held-back
competition splits and the defenses, around a ledger. One process builds it once; each Ray Serve replica
(``serve.on_ray``) builds its own around the one shared ledger."""
from __future__ import annotations

from .app import create_app
from .batching import Batcher
from .competition import Competition
from .defenses import Answers, RateLimit


def build_app(args, ledger, shared_sessions=None):
    """The FastAPI app for the parsed ``serve`` arguments, charging through ``ledger``."""
    import torch

    from ..model.load import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    model = load_model(args.model, dtype=args.dtype)
    batcher = Batcher(max_wait=args.max_wait_ms / 1000, enabled=not args.no_batching)
    competition = Competition(args.competition, args.test_size) if args.competition else None
    return create_app(model, ledger, allow_hidden=args.allow_hidden, batcher=batcher, sessions=args.sessions,
                      max_body=int(args.max_body_mb * 2 ** 20), competition=competition,
                      answers=Answers(args.answers, args.decimals), rate_limit=RateLimit(args.rate_limit),
                      shared_sessions=shared_sessions)
