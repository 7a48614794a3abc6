"""The request log: one SQLite row per request, written by the server, read by the notebook.

The file lives under the registry home (``monitoring/<deployment>.sqlite``, WAL
mode) so the kernel's monitor, ``%deploy status`` and the JupyterLab sidebar can
read it while the server writes. Writes go through one background thread in
batches: a request never waits on the disk. The texts of prompts and completions
are stored only when the deployment was started with ``log_text=True``; user ids
are stored as a short salted digest, never as given.
"""

from __future__ import annotations

import hashlib
import queue
import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["RequestLog", "read_requests", "monitor_path", "COLUMNS"]

COLUMNS = (
    "ts",
    "request_id",
    "endpoint",
    "arm",
    "version",
    "user",
    "status",
    "error",
    "latency_ms",
    "ttft_ms",
    "queue_ms",
    "tpot_ms",
    "prompt_tokens",
    "completion_tokens",
    "batch_size",
    "stream",
    "input_chars",
    "input_text",
    "output_text",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    request_id TEXT,
    endpoint TEXT,
    arm TEXT,
    version TEXT,
    user TEXT,
    status INTEGER NOT NULL,
    error TEXT,
    latency_ms REAL,
    ttft_ms REAL,
    queue_ms REAL,
    tpot_ms REAL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    batch_size INTEGER,
    stream INTEGER,
    input_chars INTEGER,
    input_text TEXT,
    output_text TEXT
);
CREATE INDEX IF NOT EXISTS requests_ts ON requests (ts);
"""


def monitor_path(home: str | Path, name: str) -> Path:
    return Path(home) / "monitoring" / f"{name}.sqlite"


def _columns(conn: sqlite3.Connection) -> set[str]:
    return {row[1] for row in conn.execute("PRAGMA table_info(requests)")}


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


class RequestLog:
    """Queue records with ``record``; a daemon thread inserts them every ``interval`` seconds."""

    def __init__(self, path: str | Path, *, log_text: bool = False, salt: str = "", interval: float = 0.25) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.log_text = log_text
        self._salt = salt
        self._interval = interval
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        conn = _connect(self.path)
        conn.executescript(_SCHEMA)
        for column in set(COLUMNS) - _columns(conn):  # a log written by an older version: add what is new
            kind = "REAL" if column.endswith("_ms") else "INTEGER" if column.endswith(("_tokens", "_size")) else "TEXT"
            conn.execute(f"ALTER TABLE requests ADD COLUMN {column} {kind}")
        conn.close()
        self._thread = threading.Thread(target=self._run, name="llmops-request-log", daemon=True)
        self._thread.start()

    def user_digest(self, user: str | None) -> str | None:
        if not user:
            return None
        return hashlib.sha256(f"{self._salt}:{user}".encode(errors="surrogatepass")).hexdigest()[:16]

    def record(self, row: Mapping[str, Any]) -> None:
        out = {c: row.get(c) for c in COLUMNS}
        out["user"] = self.user_digest(row.get("user"))
        if not self.log_text:
            out["input_text"] = out["output_text"] = None
        self._queue.put(out)

    def _run(self) -> None:
        conn = _connect(self.path)
        sql = f"INSERT INTO requests ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
        done = False
        while not done:
            batch: list[dict[str, Any]] = []
            try:
                item = self._queue.get(timeout=self._interval)
                while True:
                    if item is None:
                        done = True
                        break
                    batch.append(item)
                    item = self._queue.get_nowait()
            except queue.Empty:
                pass
            if batch:
                try:
                    conn.executemany(sql, [tuple(r[c] for c in COLUMNS) for r in batch])
                except sqlite3.Error as exc:  # a full disk must not take the server down
                    print(f"llmops: request log write failed: {exc}", flush=True)
        conn.close()

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the writer."""
        self._queue.put(None)
        self._thread.join(timeout)


def read_requests(
    path: str | Path,
    *,
    since: float | None = None,
    limit: int | None = None,
    with_text: bool = False,
    until: float | None = None,
) -> list[dict[str, Any]]:
    """Rows newest last; ``since <= ts < until`` (Unix times), ``limit`` keeps the newest rows."""
    path = Path(path)
    if not path.is_file():
        return []
    wanted = [c for c in COLUMNS if with_text or c not in ("input_text", "output_text")]
    bounds = [(cond, value) for cond, value in (("ts >= ?", since), ("ts < ?", until)) if value is not None]
    where = ("WHERE " + " AND ".join(c for c, _ in bounds)) if bounds else ""
    args: list[Any] = [v for _, v in bounds]
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        have = _columns(conn)
        cols = [c for c in wanted if c in have]  # an older log lacks the newer columns: they read as None
        sql = f"SELECT {', '.join(cols)} FROM requests {where} ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        rows = conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()
    missing = dict.fromkeys(c for c in wanted if c not in cols)
    return [{**missing, **dict(zip(cols, r, strict=True))} for r in reversed(rows)]
