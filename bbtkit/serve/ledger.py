"""The class server's ledger: keys, budgets, one row per charged call, in an embedded SQLite database.

A key reads ``bbt_<id>_<secret>``. Only the SHA-256 of the secret is stored (the secret is 192 random
bits, so a slow password hash would add nothing), the row is found by its id, and the digests are
compared with ``hmac.compare_digest``, whose time does not depend on where they differ.

Charging happens in one ``BEGIN IMMEDIATE`` transaction *before* the forward pass: the key's ``used``
rises only where ``used + n <= budget``, so concurrent requests (threads or processes sharing the file)
can never overspend. A call's idempotency key is unique per key: a retried call finds its row and is not
charged again. A call that fails on the server is refunded in one transaction.
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import io
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (id TEXT PRIMARY KEY, name TEXT UNIQUE NOT NULL, digest TEXT NOT NULL,
    budget INTEGER NOT NULL, used INTEGER NOT NULL DEFAULT 0, revoked INTEGER NOT NULL DEFAULT 0,
    submissions_left INTEGER NOT NULL DEFAULT 5, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS calls (id INTEGER PRIMARY KEY, key_id TEXT NOT NULL REFERENCES keys(id),
    idem TEXT, route TEXT NOT NULL, calls INTEGER NOT NULL, tokens INTEGER NOT NULL DEFAULT 0,
    seconds REAL NOT NULL DEFAULT 0, at REAL NOT NULL, UNIQUE (key_id, idem));
CREATE TABLE IF NOT EXISTS submissions (id INTEGER PRIMARY KEY, key_id TEXT NOT NULL REFERENCES keys(id),
    task TEXT NOT NULL, method TEXT NOT NULL, score REAL NOT NULL, metric TEXT NOT NULL,
    calls_reported INTEGER NOT NULL, calls_charged INTEGER NOT NULL, at REAL NOT NULL);
"""


class KeyError401(PermissionError):
    """Unknown, malformed or revoked key."""


class BudgetExhausted(RuntimeError):
    """The key's budget does not cover the call."""


@dataclass(frozen=True)
class Key:
    id: str
    name: str
    budget: int
    used: int


def sqlite_path(url) -> str:
    """The file of a ``sqlite:///path`` URL (a plain path is taken as it is)."""
    url = str(url)
    if "://" not in url:
        return url
    scheme, _, rest = url.partition("://")
    if scheme != "sqlite":
        raise ValueError(f"The ledger takes sqlite:///PATH URLs; {scheme!r} is not supported here.")
    return rest[1:] if rest.startswith("/") else rest


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class Ledger:
    """Keys, budgets and charged calls in one SQLite file (``url``: a path or ``sqlite:///path``)."""

    def __init__(self, url="sqlite:///bbtkit-server.db"):
        self.path = sqlite_path(url)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._lock = threading.Lock()  # one connection, shared by the server's threads
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=30000")
            self._db.executescript(SCHEMA)

    def _tx(self, fn):
        """Run fn(db) in one immediate transaction (the write lock is taken at its start)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                out = fn(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return out

    def _read(self, sql: str, args=()) -> list:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # --- the teacher's side -------------------------------------------------------------------
    def create_key(self, name: str, budget: int, submissions: int = 5) -> str:
        """A new key for ``name`` (shown once: only its digest is stored)."""
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise ValueError(f"A key needs a name (the student's, 1-100 characters), not {name!r}.")
        if not isinstance(budget, int) or budget < 0:
            raise ValueError(f"budget must be a whole number of API calls, at least 0, not {budget!r}.")
        kid, secret = secrets.token_hex(6), secrets.token_urlsafe(24)
        try:
            self._tx(lambda db: db.execute("INSERT INTO keys (id, name, digest, budget, submissions_left, created) "
                                           "VALUES (?, ?, ?, ?, ?, ?)", (kid, name.strip(), _digest(secret), budget,
                                                                         submissions, time.time())))
        except sqlite3.IntegrityError:
            raise ValueError(f"There is already a key for {name!r}; revoke it or pick another name.") from None
        return f"bbt_{kid}_{secret}"

    def _named(self, db, name: str) -> str:
        row = db.execute("SELECT id FROM keys WHERE name = ?", (name,)).fetchone()
        if row is None:
            raise ValueError(f"No key is named {name!r}; `python -m bbtkit keys list` shows them.")
        return row[0]

    def set_budget(self, name: str, budget: int) -> None:
        if not isinstance(budget, int) or budget < 0:
            raise ValueError(f"budget must be a whole number of API calls, at least 0, not {budget!r}.")
        self._tx(lambda db: db.execute("UPDATE keys SET budget = ? WHERE id = ?", (budget, self._named(db, name))))

    def revoke(self, name: str) -> None:
        self._tx(lambda db: db.execute("UPDATE keys SET revoked = 1 WHERE id = ?", (self._named(db, name),)))

    def keys(self) -> list[dict]:
        rows = self._read("SELECT name, budget, used, revoked, submissions_left FROM keys ORDER BY name")
        return [dict(zip(("name", "budget", "used", "revoked", "submissions_left"), r)) for r in rows]

    def usage_csv(self) -> str:
        """One line per key: name, budget, calls used, charged requests, tokens, seconds, revoked."""
        rows = self._read("SELECT k.name, k.budget, k.used, COUNT(c.id), COALESCE(SUM(c.tokens), 0), "
                          "COALESCE(SUM(c.seconds), 0), k.revoked FROM keys k LEFT JOIN calls c ON c.key_id = k.id "
                          "GROUP BY k.id ORDER BY k.name")
        out = io.StringIO()
        w = csv.writer(out)
        w.writerow(["name", "budget", "calls", "requests", "tokens", "seconds", "revoked"])
        w.writerows([[n, b, u, r, t, round(s, 3), bool(v)] for n, b, u, r, t, s, v in rows])
        return out.getvalue()

    # --- the server's side --------------------------------------------------------------------
    def authenticate(self, token: str | None) -> Key:
        """The key behind a bearer token, or KeyError401."""
        parts = (token or "").split("_", 2)
        ok = len(parts) == 3 and parts[0] == "bbt"
        rows = self._read("SELECT id, name, digest, budget, used, revoked FROM keys WHERE id = ?",
                          (parts[1] if ok else "",))
        given = _digest(parts[2] if ok else "")  # hashed whether or not the id exists
        if not rows or not hmac.compare_digest(rows[0][2], given):
            raise KeyError401("Unknown key.")
        kid, name, _, budget, used, revoked = rows[0]
        if revoked:
            raise KeyError401("This key was revoked.")
        return Key(kid, name, budget, used)

    def charge(self, key: Key, calls: int, route: str, idem: str | None = None) -> tuple[int, bool]:
        """(call row id, newly charged) for ``calls`` API calls, before they run; BudgetExhausted if over."""
        def tx(db):
            if idem:
                row = db.execute("SELECT id FROM calls WHERE key_id = ? AND idem = ?", (key.id, idem)).fetchone()
                if row:
                    return row[0], False
            cur = db.execute("UPDATE keys SET used = used + ? WHERE id = ? AND revoked = 0 AND used + ? <= budget",
                             (calls, key.id, calls))
            if cur.rowcount != 1:
                budget, used = db.execute("SELECT budget, used FROM keys WHERE id = ?", (key.id,)).fetchone()
                raise BudgetExhausted(f"{calls} more API calls would exceed this key's budget of {budget} "
                                      f"({used} used, {budget - used} left).")
            cur = db.execute("INSERT INTO calls (key_id, idem, route, calls, at) VALUES (?, ?, ?, ?, ?)",
                             (key.id, idem, route, calls, time.time()))
            return cur.lastrowid, True
        return self._tx(tx)

    def finish(self, call_id: int, tokens: int, seconds: float) -> None:
        self._tx(lambda db: db.execute("UPDATE calls SET tokens = tokens + ?, seconds = seconds + ? WHERE id = ?",
                                       (int(tokens), float(seconds), call_id)))

    def refund(self, call_id: int) -> None:
        """Undo a charge whose call failed on the server."""
        def tx(db):
            row = db.execute("SELECT key_id, calls FROM calls WHERE id = ?", (call_id,)).fetchone()
            if row:
                db.execute("UPDATE keys SET used = used - ? WHERE id = ?", (row[1], row[0]))
                db.execute("DELETE FROM calls WHERE id = ?", (call_id,))
        self._tx(tx)

    def usage(self, key: Key) -> dict:
        (budget, used), = self._read("SELECT budget, used FROM keys WHERE id = ?", (key.id,))
        (n, tokens, seconds), = self._read("SELECT COUNT(*), COALESCE(SUM(tokens), 0), COALESCE(SUM(seconds), 0) "
                                           "FROM calls WHERE key_id = ?", (key.id,))
        return {"name": key.name, "calls": used, "requests": n, "tokens": tokens, "seconds": round(seconds, 3),
                "budget": budget, "left": budget - used}

    # --- the competition ----------------------------------------------------------------------
    def take_submission(self, key: Key) -> int:
        """Use one of the key's submissions (atomically); returns how many are left, or BudgetExhausted."""
        def tx(db):
            cur = db.execute("UPDATE keys SET submissions_left = submissions_left - 1 WHERE id = ? "
                             "AND submissions_left > 0", (key.id,))
            if cur.rowcount != 1:
                raise BudgetExhausted("This key has no submissions left; your teacher can grant more.")
            return db.execute("SELECT submissions_left FROM keys WHERE id = ?", (key.id,)).fetchone()[0]
        return self._tx(tx)

    def give_back_submission(self, key: Key) -> None:
        """A submission that could not be scored does not count."""
        self._tx(lambda db: db.execute("UPDATE keys SET submissions_left = submissions_left + 1 WHERE id = ?", (key.id,)))

    def record_submission(self, key: Key, task: str, method: str, score: float, metric: str, calls: int) -> int:
        def tx(db):
            used = db.execute("SELECT used FROM keys WHERE id = ?", (key.id,)).fetchone()[0]
            return db.execute("INSERT INTO submissions (key_id, task, method, score, metric, calls_reported, "
                              "calls_charged, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                              (key.id, task, method, float(score), metric, int(calls), used, time.time())).lastrowid
        return self._tx(tx)

    def submissions(self, task: str | None = None) -> list[dict]:
        """Every scored submission (of one task), oldest first, with the student's name."""
        rows = self._read("SELECT k.name, s.task, s.method, s.score, s.metric, s.calls_reported, s.calls_charged, s.at "
                          "FROM submissions s JOIN keys k ON k.id = s.key_id" + (" WHERE s.task = ?" if task else "")
                          + " ORDER BY s.at", (task,) if task else ())
        cols = ("name", "task", "method", "score", "metric", "calls_reported", "calls_charged", "at")
        return [dict(zip(cols, r)) for r in rows]

    def set_submissions(self, name: str, n: int) -> None:
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"submissions must be a whole number, at least 0, not {n!r}.")
        self._tx(lambda db: db.execute("UPDATE keys SET submissions_left = ? WHERE id = ?", (n, self._named(db, name))))

    def calls(self, name: str, last: int = 5) -> list[dict]:
        """A key's last charged calls, as stored: all the ledger keeps of a request (no text, no tensor)."""
        rows = self._read("SELECT c.route, c.calls, c.tokens, c.seconds, c.at FROM calls c JOIN keys k ON k.id = c.key_id "
                          "WHERE k.name = ? ORDER BY c.id DESC LIMIT ?", (name, int(last)))
        return [dict(zip(("route", "calls", "tokens", "seconds", "at"), r)) for r in rows]

    def total_charged(self) -> int:
        """Calls charged over every key, counted from the call rows (the race test's witness)."""
        return self._read("SELECT COALESCE(SUM(calls), 0) FROM calls")[0][0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
