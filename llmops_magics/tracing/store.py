"""The local trace store: ``traces.db`` (SQLite, WAL) next to the registry, so traces work offline.

Two tables. ``spans`` holds every finished span with its attributes and events as JSON,
plus the few attributes queries filter on as columns of their own (prompt version,
artifact, model, tokens). ``traces`` holds one summary row per trace, updated as its
spans arrive (a trace's spans end at different times, and in different processes: a
kernel and the model server it calls write to the same file), so listing the latest
traces reads ``limit`` rows whatever the store holds.

Tokens are summed over the calls a trace made (client and internal spans); a server-side
span of the same request (``kind = server``) repeats the client's numbers and is left out
of the sum.

Writes come only from the exporter's one background thread (``export.py``); reads open
their own read-only connection and never wait for a writer (WAL). The same thread keeps the
file bounded (``retention.py``: ``keep_days``, ``max_spans``), now and then after a write.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .retention import PRUNE_INTERVAL_S, Retention, prune
from .rows import trace_rows

__all__ = ["SpanRecord", "SpanStore", "TraceSummary", "FILENAME"]

FILENAME = "traces.db"

log = logging.getLogger("llmops_magics.tracing")

SCHEMA = """
CREATE TABLE IF NOT EXISTS spans (
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_id TEXT,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    status TEXT NOT NULL,
    status_message TEXT,
    operation TEXT,
    model TEXT,
    prompt_ref TEXT,
    artifact_ref TEXT,
    input_tokens INTEGER,
    output_tokens INTEGER,
    service TEXT,
    attributes TEXT NOT NULL,
    events TEXT NOT NULL,
    PRIMARY KEY (trace_id, span_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS spans_prompt ON spans(prompt_ref) WHERE prompt_ref IS NOT NULL;
CREATE INDEX IF NOT EXISTS spans_artifact ON spans(artifact_ref) WHERE artifact_ref IS NOT NULL;
CREATE TABLE IF NOT EXISTS traces (
    trace_id TEXT PRIMARY KEY,
    start_ns INTEGER NOT NULL,
    end_ns INTEGER NOT NULL,
    spans INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    errors INTEGER NOT NULL,
    root_name TEXT NOT NULL,
    root_rank INTEGER NOT NULL,
    root_start INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS traces_start ON traces(start_ns);
"""

_UPSERT_TRACE = """
INSERT INTO traces (trace_id, start_ns, end_ns, spans, input_tokens, output_tokens, errors,
                    root_name, root_rank, root_start)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT(trace_id) DO UPDATE SET
    start_ns = MIN(start_ns, excluded.start_ns),
    end_ns = MAX(end_ns, excluded.end_ns),
    spans = spans + excluded.spans,
    input_tokens = input_tokens + excluded.input_tokens,
    output_tokens = output_tokens + excluded.output_tokens,
    errors = errors + excluded.errors,
    root_name = CASE WHEN (excluded.root_rank, excluded.root_start) < (root_rank, root_start)
                     THEN excluded.root_name ELSE root_name END,
    root_start = CASE WHEN (excluded.root_rank, excluded.root_start) < (root_rank, root_start)
                      THEN excluded.root_start ELSE root_start END,
    root_rank = MIN(root_rank, excluded.root_rank)
"""

_COLUMNS = (
    "trace_id, span_id, parent_id, name, kind, start_ns, end_ns, status, status_message, operation, model, "
    "prompt_ref, artifact_ref, input_tokens, output_tokens, service, attributes, events"
)


@dataclass(frozen=True)
class SpanRecord:
    """One stored span, as read back."""

    trace_id: str
    span_id: str
    parent_id: str | None
    name: str
    kind: str
    start_ns: int
    end_ns: int
    status: str
    status_message: str | None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    events: Sequence[Mapping[str, Any]] = ()
    service: str | None = None

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6

    def get(self, key: str, default: Any = None) -> Any:
        return self.attributes.get(key, default)


@dataclass(frozen=True)
class TraceSummary:
    """One row of the ``traces`` table: what ``%trace list`` shows."""

    trace_id: str
    name: str
    start_ns: int
    end_ns: int
    spans: int
    input_tokens: int
    output_tokens: int
    errors: int

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


def _prompt_match(prompt: str | None) -> tuple[str, list]:
    """SQL for "made by this prompt": a pinned ``prompt://qa/3`` is that version, ``prompt://qa`` any
    version of ``qa`` (a range on the index: ``'0'`` is the character after ``'/'``)."""
    if prompt is None or prompt.rstrip("/").rsplit("/", 1)[-1].isdigit():
        return "prompt_ref = ?", [prompt]
    base = prompt.rstrip("/") + "/"
    return "prompt_ref >= ? AND prompt_ref < ?", [base, base[:-1] + "0"]


class SpanStore:
    """``traces.db`` in a workspace's home; see the module docstring."""

    def __init__(self, home: Path, retention: Retention | None = None) -> None:
        self.home = Path(home)
        self.path = self.home / FILENAME
        self.retention = retention or Retention()
        self._ready = False
        self._writer: sqlite3.Connection | None = None
        self._pruned_at: float | None = None  # monotonic time of the last prune in this process

    def _connect(self) -> sqlite3.Connection:
        self.home.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        if not self._ready:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
            self._ready = True
        conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def write(self, rows: Iterable[tuple]) -> int:
        """Insert ``span_row`` rows, and their traces' summaries, in one transaction.

        The connection stays open between batches (closing the last one checkpoints the
        WAL, which would cost more than the insert); ``close`` lets it go.
        """
        rows = list(rows)
        if not rows:
            return 0
        if self._writer is None:
            self._writer = self._connect()
        conn = self._writer
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(f"INSERT OR IGNORE INTO spans ({_COLUMNS}) VALUES ({','.join('?' * 18)})", rows)
            conn.executemany(_UPSERT_TRACE, trace_rows(rows))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self.close()
            raise
        if self._pruned_at is None or time.monotonic() - self._pruned_at >= PRUNE_INTERVAL_S:
            try:
                self.prune()
            except sqlite3.Error as exc:  # the batch is stored; a failed prune is retried next interval
                log.warning("pruning %s failed: %s", self.path, exc)
        return len(rows)

    def prune(self, now_ns: int | None = None) -> int:
        """Delete what ``self.retention`` no longer keeps (whole traces); the number of spans deleted."""
        self._pruned_at = time.monotonic()
        if not self.path.exists():
            return 0
        if self._writer is None:
            self._writer = self._connect()
        return prune(self._writer, self.retention, now_ns)

    def forget_connection(self) -> sqlite3.Connection | None:
        """Hand over the writing connection without closing it (a forked child's copy of its parent's)."""
        conn, self._writer = self._writer, None
        return conn

    def close(self) -> None:
        """Close the writing connection (the next write opens another)."""
        conn, self._writer = self._writer, None
        if conn is not None:
            conn.close()

    def _read(self) -> sqlite3.Connection | None:
        if not self.path.exists():
            return None
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=30.0)

    def traces(
        self,
        *,
        since_ns: int | None = None,
        prompt: str | None = None,
        artifact: str | None = None,
        limit: int = 50,
    ) -> list[TraceSummary]:
        """The latest traces first. ``prompt``: a pinned reference (``prompt://qa/3``) matches that
        version, ``prompt://qa`` any version of ``qa``; ``artifact`` matches exactly."""
        conn = self._read()
        if conn is None:
            return []
        where, args = [], []
        if since_ns is not None:
            where.append("t.start_ns >= ?")
            args.append(since_ns)
        for match, match_args in (_prompt_match(prompt), ("artifact_ref = ?", [artifact])):
            if match_args[-1] is not None:
                where.append(f"t.trace_id IN (SELECT trace_id FROM spans WHERE {match})")
                args += match_args
        sql = (
            "SELECT t.trace_id, t.root_name, t.start_ns, t.end_ns, t.spans, t.input_tokens, t.output_tokens, t.errors "
            f"FROM traces t {'WHERE ' + ' AND '.join(where) if where else ''} ORDER BY t.start_ns DESC LIMIT ?"
        )
        try:
            rows = conn.execute(sql, [*args, int(limit)]).fetchall()
        finally:
            conn.close()
        return [TraceSummary(*r) for r in rows]

    def prompt_refs(self, trace_ids: Sequence[str]) -> dict[str, list[str]]:
        """The prompt versions each of ``trace_ids`` used (sorted), for a listing's "prompt" column."""
        conn = self._read()
        if conn is None or not trace_ids:
            return {}
        marks = ",".join("?" * len(trace_ids))
        sql = f"SELECT DISTINCT trace_id, prompt_ref FROM spans WHERE trace_id IN ({marks}) AND prompt_ref IS NOT NULL"
        out: dict[str, list[str]] = {}
        try:
            for trace_id, ref in conn.execute(sql + " ORDER BY trace_id, prompt_ref", list(trace_ids)):
                out.setdefault(trace_id, []).append(ref)
        finally:
            conn.close()
        return out

    def find(self, text: str) -> list[str]:
        """Trace ids that start with ``text`` (at most two: enough to tell "one" from "ambiguous")."""
        conn = self._read()
        if conn is None:
            return []
        low = text.lower()
        try:
            rows = conn.execute(
                "SELECT trace_id FROM traces WHERE trace_id >= ? AND trace_id < ? LIMIT 2", (low, low + "g")
            ).fetchall()
        finally:
            conn.close()
        return [r[0] for r in rows]

    def _records(self, where: str, args: Sequence[Any], order: str = "start_ns") -> list[SpanRecord]:
        conn = self._read()
        if conn is None:
            return []
        try:
            rows = conn.execute(
                "SELECT trace_id, span_id, parent_id, name, kind, start_ns, end_ns, status, status_message, "
                f"attributes, events, service FROM spans WHERE {where} ORDER BY {order}",
                list(args),
            ).fetchall()
        finally:
            conn.close()
        return [SpanRecord(*r[:9], json.loads(r[9]), tuple(json.loads(r[10])), r[11]) for r in rows]

    def spans(self, trace_id: str) -> list[SpanRecord]:
        """Every span of one trace, in start order."""
        return self._records("trace_id = ?", [trace_id], "start_ns, span_id")

    def linked(self, ref_prefix: str, since_ns: int, until_ns: int, limit: int = 10_000) -> list[SpanRecord]:
        """Spans linked to an artifact whose reference starts with ``ref_prefix`` (``deployment://qa-svc/``),
        started in ``[since_ns, until_ns)``, oldest first: a deployment's server spans in a monitor's window."""
        pattern = ref_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where = "start_ns >= ? AND start_ns < ? AND artifact_ref LIKE ? ESCAPE '\\'"
        return self._records(where, [int(since_ns), int(until_ns), pattern], f"start_ns LIMIT {int(limit)}")

    def calls(
        self,
        *,
        prompt: str | None = None,
        since_ns: int | None = None,
        until_ns: int | None = None,
        limit: int = 100_000,
    ) -> list[SpanRecord]:
        """Model-call spans (those with a ``gen_ai.operation.name``), oldest first: the rows of a data set."""
        where, args = ["operation IN ('chat', 'text_completion')", "kind != 'server'"], []
        if prompt is not None:
            match, match_args = _prompt_match(prompt)
            where.append(match)
            args += match_args
        if since_ns is not None:
            where.append("start_ns >= ?")
            args.append(since_ns)
        if until_ns is not None:
            where.append("start_ns < ?")
            args.append(until_ns)
        return self._records(" AND ".join(where), args, f"start_ns LIMIT {int(limit)}")
