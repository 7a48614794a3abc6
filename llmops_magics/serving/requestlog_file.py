"""The request log's SQLite file: where it lives, its two tables, and opening it.

The file lives under the registry home (``monitoring/<deployment>.sqlite``, WAL mode) so
the kernel's monitor, ``%deploy status`` and the JupyterLab sidebar can read it while the
server writes. Its tables are ``requests`` (one row a request, written by ``requestlog``)
and ``feedback`` (ratings of answers, written by ``requestlog_feedback``); both writers open
the file here, and ``prepare`` upgrades a log an older version wrote by adding the columns
it lacks, so old logs stay readable.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["COLUMNS", "SCHEMA", "connect", "monitor_path", "prepare", "table_columns"]

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
_INTEGERS = ("prompt_tokens", "completion_tokens", "batch_size", "stream", "input_chars", "outputs")

SCHEMA = """
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


def table_columns(conn: sqlite3.Connection, table: str = "requests") -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def prepare(path: Path) -> None:
    """Create the tables, or add what a log written by an older version lacks."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = connect(path)
    try:
        conn.executescript(SCHEMA)
        for column in set(COLUMNS) - table_columns(conn):
            kind = "REAL" if column.endswith("_ms") else "INTEGER" if column in _INTEGERS else "TEXT"
            conn.execute(f"ALTER TABLE requests ADD COLUMN {column} {kind}")
    finally:
        conn.close()


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn
