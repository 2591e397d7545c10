"""What a provider can turn on against someone who copies its model through the API (chapter 12), and what
each costs an honest tuner.

* ``Answers`` (``api.answers``): how much of the label-word logits a response shows;
* ``RateLimit``: a token bucket per key (``rate`` requests per second, bursts of ``burst``); a request
  over it gets 429 with ``Retry-After``, is not charged, and the client waits and sends it again.
* Budgets are the ledger's.
"""
from __future__ import annotations

import threading
import time

from ..api.answers import ANSWERS, Answers  # noqa: F401  (the server's defenses, in one place)


class RateLimit:
    """A token bucket per key: ``rate`` requests per second on average, ``burst`` at once (rate 0: none)."""

    def __init__(self, rate: float = 0.0, burst: int | None = None):
        if rate < 0:
            raise ValueError(f"rate must be at least 0 requests per second (0: no limit), not {rate!r}.")
        self.rate, self.burst = float(rate), float(burst or max(1.0, rate))
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def wait_for(self, key_id: str) -> float:
        """0 if the key may send a request now (and it is counted), else the seconds until it may."""
        if not self.rate:
            return 0.0
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key_id, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key_id] = (tokens - 1, now)
                return 0.0
            self._buckets[key_id] = (tokens, now)
            return (1 - tokens) / self.rate
