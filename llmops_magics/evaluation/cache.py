"""The generation cache: a re-run of the same eval is instant and needs no model.

Keyed by sha256 of (model digest, adapter digest, the prompt as sent, generation
parameters), so any change to weights, tokenizer files, prompt or parameters misses.
Sampling (temperature > 0) is cached only with an explicit seed, since otherwise the
same key would stand for different draws. Endpoints are not cached here: what sits
behind a URL can change without the URL changing.

One SQLite file (WAL) under the registry home, ``cache/generations.sqlite``, shared by
every process of the project; entries are JSON values, so perplexity scores and judge
verdicts live here too under their own key prefixes.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["GenerationCache", "cache_key", "cacheable"]

_SCHEMA = "CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, value TEXT NOT NULL, created_at REAL NOT NULL)"


def cacheable(temperature: float, seed: int | None) -> bool:
    return not temperature or temperature <= 0 or seed is not None


def cache_key(kind: str, identity: Mapping[str, Any], prompt: Any, params: Mapping[str, Any]) -> str:
    """The sha256 of everything that decides the answer, canonical JSON so dict order cannot matter."""
    blob = json.dumps(
        {"kind": kind, "model": dict(identity), "prompt": prompt, "params": dict(params)},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


class GenerationCache:
    """A small thread-safe key → JSON store; ``enabled=False`` makes every lookup miss and every put a no-op."""

    def __init__(self, path: str | Path, enabled: bool = True) -> None:
        self.path = Path(path)
        self.enabled = enabled
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
            self._conn = conn
        return self._conn

    def get_many(self, keys: Iterable[str]) -> dict[str, Any]:
        keys = list(dict.fromkeys(keys))
        if not self.enabled or not keys:
            return {}
        out: dict[str, Any] = {}
        with self._lock:
            db = self._db()
            for i in range(0, len(keys), 500):
                chunk = keys[i : i + 500]
                rows = db.execute(
                    f"SELECT key, value FROM entries WHERE key IN ({','.join('?' * len(chunk))})", chunk
                ).fetchall()
                out.update((k, json.loads(v)) for k, v in rows)
        return out

    def put_many(self, items: Mapping[str, Any]) -> None:
        if not self.enabled or not items:
            return
        now = time.time()
        with self._lock:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(
                    "INSERT OR REPLACE INTO entries (key, value, created_at) VALUES (?, ?, ?)",
                    [(k, json.dumps(v), now) for k, v in items.items()],
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def __len__(self) -> int:
        with self._lock:
            return int(self._db().execute("SELECT COUNT(*) FROM entries").fetchone()[0])

    def clear(self) -> None:
        with self._lock:
            self._db().execute("DELETE FROM entries")

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
