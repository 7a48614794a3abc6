"""The request log: one SQLite row per request, written by the server, read by the notebook.

The file lives under the registry home (``monitoring/<deployment>.sqlite``, WAL
mode) so the kernel's monitor, ``%deploy status`` and the JupyterLab sidebar can
read it while the server writes. Writes go through one background thread in
batches: a request never waits on the disk. The texts of prompts and completions
are stored only when the deployment was started with ``log_text=True``, and then with
their personal data replaced by the writer thread (``redact``; off with ``redact_log=False``);
user ids are stored as a short salted digest, never as given.

A deployment started with ``request_log=False`` (``--no-request-log``) gets a ``NoRequestLog``
instead: the server writes nothing, not even the file. What reads the log (the monitor,
``%deploy ab``, feedback, ``%dataset from-log``, the status and the monitor panel) then
refuses or says so with ``no_log_message`` rather than showing an empty window as if no
traffic had come.

Feedback on an answer lives in the same file (table ``feedback``, keyed by the request id
the response carried): a score in [0, 1] (``up`` is 1, ``down`` is 0), an optional
corrected answer, when, and the rater's digest. A request may be rated several times; the
latest rating wins. The server writes it (``POST /v1/feedback``) and so does the kernel
when the server is not running (``serving/feedback.py``); ``read_requests(with_feedback=
True)`` joins the latest rating onto each row as ``feedback`` and ``correction``.
"""

from __future__ import annotations

import hashlib
import queue
import sqlite3
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import NotFoundError, ValidationError

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
    "outputs",
    "input_text",
    "output_text",
)
LABELS = {"up": 1.0, "down": 0.0}
_INTEGERS = ("prompt_tokens", "completion_tokens", "batch_size", "stream", "input_chars", "outputs")

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
    outputs INTEGER,
    input_text TEXT,
    output_text TEXT
);
CREATE INDEX IF NOT EXISTS requests_ts ON requests (ts);
CREATE INDEX IF NOT EXISTS requests_request_id ON requests (request_id);
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    request_id TEXT NOT NULL,
    score REAL NOT NULL,
    label TEXT,
    correction TEXT,
    user TEXT
);
CREATE INDEX IF NOT EXISTS feedback_request ON feedback (request_id);
"""


def monitor_path(home: str | Path, name: str) -> Path:
    return Path(home) / "monitoring" / f"{name}.sqlite"


def _columns(conn: sqlite3.Connection, table: str = "requests") -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def user_digest(salt: str, user: str | None) -> str | None:
    """A user id as stored: a short salted digest (the salt is the deployment's name)."""
    if not user:
        return None
    return hashlib.sha256(f"{salt}:{user}".encode(errors="surrogatepass")).hexdigest()[:16]


def _prepare(path: Path) -> None:
    """Create the tables, or add what a log written by an older version lacks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = _connect(path)
    try:
        conn.executescript(_SCHEMA)
        for column in set(COLUMNS) - _columns(conn):
            kind = "REAL" if column.endswith("_ms") else "INTEGER" if column in _INTEGERS else "TEXT"
            conn.execute(f"ALTER TABLE requests ADD COLUMN {column} {kind}")
    finally:
        conn.close()


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


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
        _prepare(self.path)
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
        conn = _connect(self.path)
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
        have = _columns(conn)
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
    if "request_id" not in _columns(conn, "feedback"):  # a log written before feedback existed
        return {}
    bound, args = ("WHERE ts < ?", [until]) if until is not None else ("", [])
    sql = (
        "SELECT request_id, score, correction FROM feedback "
        f"WHERE id IN (SELECT MAX(id) FROM feedback {bound} GROUP BY request_id)"
    )
    return {rid: (score, correction) for rid, score, correction in conn.execute(sql, args)}


# ---------------------------------------------------------------------- feedback


def _invalid(param: str, message: str) -> ValidationError:
    """A rejected feedback field; ``param`` names it for the server's 400 body."""
    err = ValidationError(message)
    err.param = param
    return err


def feedback_score(score: Any = None, label: Any = None) -> float:
    """The stored score of a rating: ``score`` in [0, 1], or ``label`` up (1) / down (0); exactly one."""
    if label is not None:
        if score is not None:
            raise _invalid("score", "feedback takes a score or a label, not both")
        if label not in LABELS:
            raise _invalid("label", f"label must be up or down, found {label!r}")
        return LABELS[label]
    if score is None:
        raise _invalid("score", "feedback needs a score (a number from 0 to 1) or a label (up or down), found neither")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0.0 <= score <= 1.0:
        raise _invalid("score", f"score must be a number from 0 to 1, found {score!r}")
    return float(score)


def _correction(correction: Any, log_text: bool) -> str | None:
    if correction is None:
        return None
    if not isinstance(correction, str):
        raise _invalid("correction", f"correction must be text, found {type(correction).__name__}")
    try:
        correction.encode()
    except UnicodeEncodeError:
        raise _invalid("correction", "correction holds text that is not valid Unicode (a lone surrogate)") from None
    if not correction.strip():
        return None
    if not log_text:
        raise _invalid(
            "correction",
            "this deployment logs no texts (log_text=False), so it keeps no corrections either; send a score or label",
        )
    return correction


def write_feedback(
    path: str | Path,
    request_id: str,
    *,
    score: Any = None,
    label: Any = None,
    correction: Any = None,
    user: str | None = None,
    log_text: bool = False,
    ts: float | None = None,
) -> dict[str, Any]:
    """Rate one logged request; returns the stored row. ``user`` is already a digest (``user_digest``).

    Everything is checked before anything is written: the score or label, the correction
    (kept only where the deployment keeps texts), and that the request is in the log
    (``NotFoundError`` otherwise). The caller must make sure the log's writer has flushed
    the request (the server does; the kernel writes here only when no server is running).
    """
    import time

    value = feedback_score(score, label)
    corrected = _correction(correction, log_text)
    if not isinstance(request_id, str) or not request_id.strip():
        raise _invalid("request_id", f"request_id must be the id a response carried, found {request_id!r}")
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"no request log at {path}: the deployment has not answered a request yet")
    conn = _connect(path)
    try:
        conn.executescript(_SCHEMA)
        if conn.execute("SELECT 1 FROM requests WHERE request_id = ? LIMIT 1", (request_id,)).fetchone() is None:
            raise NotFoundError(f"no request {request_id!r} in the request log {path.name}")
        row = {
            "ts": time.time() if ts is None else ts,
            "request_id": request_id,
            "score": value,
            "label": label if label is not None else None,
            "correction": corrected,
            "user": user,
        }
        conn.execute(
            f"INSERT INTO feedback ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values())
        )
    finally:
        conn.close()
    return row
