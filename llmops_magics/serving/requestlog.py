"""The request log: one SQLite row per request, written by the server, read by the notebook.

Writes go through one background thread in batches: a request never waits on the disk.
The texts of prompts and completions are stored only when the deployment was started with
``log_text=True``, and then with their personal data replaced by the writer thread
(``redact``; off with ``redact_log=False``); user ids are stored as a short salted digest,
never as given. Where the file lives, its tables and how an older log is upgraded are in
``requestlog_file.py``; ratings of answers (table ``feedback``) are checked and written by
``requestlog_feedback.py``, and ``read_requests(with_feedback=True)`` joins the latest rating
onto each row as ``feedback`` and ``correction``. Their public names stay importable from here.

A deployment started with ``request_log=False`` (``--no-request-log``) gets a ``NoRequestLog``
instead: the server writes nothing, not even the file. What reads the log (the monitor,
``%deploy ab``, feedback, ``%dataset from-log``, the status and the monitor panel) then
refuses or says so with ``no_log_message`` rather than showing an empty window as if no
traffic had come.
"""

from __future__ import annotations

import hashlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .requestlog_feedback import LABELS, feedback_score, write_feedback
from .requestlog_file import COLUMNS, connect, monitor_path, prepare, table_columns

__all__ = [
    "RequestLog",
    "NoRequestLog",
    "logs_requests",
    "no_log_message",
    "read_requests",
    "monitor_path",
    "COLUMNS",
    "LABELS",
    "feedback_score",
    "user_digest",
    "write_feedback",
]


def user_digest(salt: str, user: str | None) -> str | None:
    """A user id as stored: a short salted digest (the salt is the deployment's name)."""
    if not user:
        return None
    return hashlib.sha256(f"{salt}:{user}".encode(errors="surrogatepass")).hexdigest()[:16]


class RequestLog:
    """Queue records with ``record``; a daemon thread inserts them every ``interval`` seconds."""

    enabled = True

    def __init__(
        self,
        path: str | Path,
        *,
        log_text: bool = False,
        salt: str = "",
        interval: float = 0.25,
        redact: Callable[[list[str | None]], list[str | None]] | None = None,
    ) -> None:
        self.path = Path(path)
        self.log_text = log_text
        self._redact = redact  # applied to the texts by the writer thread, before they are stored
        self._salt = salt
        self._interval = interval
        self._queue: queue.Queue[dict[str, Any] | threading.Event | None] = queue.Queue()
        prepare(self.path)
        self._thread = threading.Thread(target=self._run, name="llmops-request-log", daemon=True)
        self._thread.start()

    def user_digest(self, user: str | None) -> str | None:
        return user_digest(self._salt, user)

    def record(self, row: Mapping[str, Any]) -> None:
        out = {c: row.get(c) for c in COLUMNS}
        out["user"] = self.user_digest(row.get("user"))
        if not self.log_text:
            out["input_text"] = out["output_text"] = None
        self._queue.put(out)

    def _run(self) -> None:
        conn = connect(self.path)
        sql = f"INSERT INTO requests ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
        done = False
        while not done:
            batch: list[dict[str, Any]] = []
            flushed: list[threading.Event] = []
            try:
                item = self._queue.get(timeout=self._interval)
                while True:
                    if item is None:
                        done = True
                        break
                    if isinstance(item, threading.Event):
                        flushed.append(item)
                    else:
                        batch.append(item)
                    item = self._queue.get_nowait()
            except queue.Empty:
                pass
            if batch and self._redact is not None and self.log_text:
                self._redact_texts(batch)
            if batch:
                try:
                    conn.executemany(sql, [tuple(r[c] for c in COLUMNS) for r in batch])
                except sqlite3.Error as exc:  # a full disk must not take the server down
                    print(f"llmops: request log write failed: {exc}", flush=True)
            for event in flushed:
                event.set()
        conn.close()

    def _redact_texts(self, batch: list[dict[str, Any]]) -> None:
        """Personal data replaced in place; when redaction fails the texts are not stored at all."""
        for column in ("input_text", "output_text"):
            try:
                texts = self._redact([r[column] for r in batch])
            except Exception as exc:
                print(f"llmops: request log texts not stored, redaction failed: {exc}", flush=True)
                texts = [None] * len(batch)
            for row, text in zip(batch, texts, strict=True):
                row[column] = text

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every row queued so far is written (feedback on a request just answered needs its row)."""
        if not self._thread.is_alive():
            return True
        event = threading.Event()
        self._queue.put(event)
        return event.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop the writer."""
        self._queue.put(None)
        self._thread.join(timeout)


class NoRequestLog:
    """The log of a deployment that keeps none (``request_log=False``): every call is a no-op.

    Same face as ``RequestLog`` (``path``, ``log_text``, ``user_digest``, ``record``, ``flush``,
    ``close``) so the server has one code path; ``enabled`` is what the feedback route asks.
    """

    enabled = False
    log_text = False

    def __init__(self, path: str | Path, *, salt: str = "") -> None:
        self.path = Path(path)
        self._salt = salt

    def user_digest(self, user: str | None) -> str | None:
        return user_digest(self._salt, user)

    def record(self, row: Mapping[str, Any]) -> None:
        pass

    def flush(self, timeout: float = 10.0) -> bool:
        return True

    def close(self, timeout: float = 10.0) -> None:
        pass


def logs_requests(args: Mapping[str, Any] | None) -> bool:
    """Whether a stored deploy spec's ``args`` (or a state record) keep a request log (the default)."""
    return (args or {}).get("request_log", True) is not False


def no_log_message(name: str, purpose: str) -> str:
    """The one line every reader of the log gives for a deployment that keeps none."""
    return (
        f"deployment {name!r} keeps no request log (deployed with --no-request-log), so {purpose}; "
        f"redeploy it without --no-request-log to log requests"
    )


def read_requests(
    path: str | Path,
    *,
    since: float | None = None,
    limit: int | None = None,
    with_text: bool = False,
    until: float | None = None,
    with_feedback: bool = False,
) -> list[dict[str, Any]]:
    """Rows newest last; ``since <= ts < until`` (Unix times), ``limit`` keeps the newest rows.

    ``with_feedback`` adds ``feedback`` (the latest score, None when unrated) and ``correction``
    to each row; with ``until``, the feedback as it stood then (later ratings are left out, so
    the same window reads the same rows tomorrow).
    """
    path = Path(path)
    if not path.is_file():
        return []
    wanted = [c for c in COLUMNS if with_text or c not in ("input_text", "output_text")]
    bounds = [(cond, value) for cond, value in (("ts >= ?", since), ("ts < ?", until)) if value is not None]
    where = ("WHERE " + " AND ".join(c for c, _ in bounds)) if bounds else ""
    args: list[Any] = [v for _, v in bounds]
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        have = table_columns(conn)
        cols = [c for c in wanted if c in have]  # an older log lacks the newer columns: they read as None
        sql = f"SELECT {', '.join(cols)} FROM requests {where} ORDER BY id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(int(limit))
        rows = conn.execute(sql, args).fetchall()
        rated = _latest_feedback(conn, until) if with_feedback else {}
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()
    missing = dict.fromkeys(c for c in wanted if c not in cols)
    out = [{**missing, **dict(zip(cols, r, strict=True))} for r in reversed(rows)]
    if with_feedback:
        for row in out:
            row["feedback"], row["correction"] = rated.get(row.get("request_id"), (None, None))
    return out


def _latest_feedback(conn: sqlite3.Connection, until: float | None) -> dict[str, tuple[float, str | None]]:
    if "request_id" not in table_columns(conn, "feedback"):  # a log written before feedback existed
        return {}
    bound, args = ("WHERE ts < ?", [until]) if until is not None else ("", [])
    sql = (
        "SELECT request_id, score, correction FROM feedback "
        f"WHERE id IN (SELECT MAX(id) FROM feedback {bound} GROUP BY request_id)"
    )
    return {rid: (score, correction) for rid, score, correction in conn.execute(sql, args)}
