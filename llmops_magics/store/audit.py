"""The audit trail: an append-only table of who moved what, when, from where to where, and why.

Events are rows of the registry's own SQLite file (table ``audit``), written by the same
transaction as the change they describe where there is one (an alias move, in
``Registry.set_alias`` / ``remove_alias`` / ``save``), so a crash cannot leave a move without
its event or an event without its move. Triggers make the table append-only for every
client of the file, not only this package: an ``UPDATE`` or ``DELETE`` aborts with
``audit events are append-only``, and so does an ``INSERT OR REPLACE`` of an existing id
(SQLite's REPLACE deletes without firing delete triggers unless recursive triggers are on). Nothing here offers to change or delete one.

Who: ``$LLMOPS_ACTOR`` when set (a CI job, a service account), else the login name.
"""

from __future__ import annotations

import getpass
import json
import os
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from .records import dumps, freeze, thaw

__all__ = ["AuditEvent", "ACTIONS", "SCHEMA", "actor", "insert", "alias_moved", "select", "mentions"]

ACTOR_ENV = "LLMOPS_ACTOR"
ACTIONS = (
    "alias-set",
    "alias-move",
    "alias-remove",
    "deploy",
    "canary",
    "stop",
    "promote",
    "rollback",
    "policy-override",
    "redact",
    "add-adapter",
    "remove-adapter",
    "export",
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    time     REAL    NOT NULL,
    actor    TEXT    NOT NULL,
    action   TEXT    NOT NULL,
    ref      TEXT    NOT NULL,
    from_ref TEXT,
    to_ref   TEXT,
    reason   TEXT,
    detail   TEXT    NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS audit_by_time ON audit (time);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_replace BEFORE INSERT ON audit
    WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM audit WHERE id = NEW.id)
    BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END
"""


def actor() -> str:
    """Who acts: ``$LLMOPS_ACTOR``, else the login name, else ``unknown`` (no passwd entry in a container)."""
    named = os.environ.get(ACTOR_ENV, "").strip()
    if named:
        return named
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass(frozen=True)
class AuditEvent:
    """One event as stored; ``from_ref``/``to_ref`` are versions (``adapter://qa/2``) or None."""

    id: int
    time: float
    actor: str
    action: str
    ref: str
    from_ref: str | None
    to_ref: str | None
    reason: str | None
    detail: Any = field(default_factory=dict)

    @property
    def when(self) -> str:
        return datetime.fromtimestamp(self.time, UTC).isoformat(timespec="seconds")

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "when": self.when,
            "actor": self.actor,
            "action": self.action,
            "ref": self.ref,
            "from": self.from_ref,
            "to": self.to_ref,
            "reason": self.reason,
            "detail": thaw(self.detail),
        }


def insert(
    cur: sqlite3.Cursor,
    action: str,
    ref: str,
    *,
    from_ref: str | None = None,
    to_ref: str | None = None,
    reason: str | None = None,
    detail: dict[str, Any] | None = None,
    now: float | None = None,
) -> None:
    """Append one event through ``cur`` (inside the caller's transaction)."""
    if action not in ACTIONS:
        raise ValueError(f"audit action must be one of {', '.join(ACTIONS)}, found {action!r}")
    cur.execute(
        "INSERT INTO audit (time, actor, action, ref, from_ref, to_ref, reason, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (now or time.time(), actor(), action, ref, from_ref, to_ref, reason, dumps(detail or {})),
    )


def alias_moved(cur: sqlite3.Cursor, kind: str, name: str, alias: str, version: int | None, now: float) -> None:
    """Record ``alias`` of ``kind://name`` going to ``version`` (None: removed); call before the change.

    Reads where the alias pointed first; a "move" to where it already points records nothing.
    """
    row = cur.execute("SELECT version FROM aliases WHERE kind=? AND name=? AND alias=?", (kind, name, alias)).fetchone()
    old = row[0] if row is not None else None
    if old == version:
        return
    action = "alias-remove" if version is None else "alias-set" if old is None else "alias-move"
    insert(
        cur,
        action,
        f"{kind}://{name}",
        from_ref=f"{kind}://{name}/{old}" if old is not None else None,
        to_ref=f"{kind}://{name}/{version}" if version is not None else None,
        detail={"alias": alias},
        now=now,
    )


def _row(row: sqlite3.Row) -> AuditEvent:
    return AuditEvent(
        id=row["id"],
        time=row["time"],
        actor=row["actor"],
        action=row["action"],
        ref=row["ref"],
        from_ref=row["from_ref"],
        to_ref=row["to_ref"],
        reason=row["reason"],
        detail=freeze(json.loads(row["detail"])),
    )


def _split(ref: str) -> tuple[str, str, int | None]:
    """``kind://name/3`` → (kind, name, 3); ``kind://name`` → (kind, name, None)."""
    kind, _, rest = ref.partition("://")
    name, _, version = rest.partition("/")
    return kind, name.partition("@")[0], int(version) if version.isdigit() else None


def mentions(event: AuditEvent, kind: str, name: str, version: int | None) -> bool:
    """Whether ``event`` is about ``kind://name`` (any version) or, with ``version``, that version.

    An event names references in ``ref``, ``from``, ``to`` and ``detail["refs"]``; a name-level
    ``ref`` (``adapter://qa`` of an alias move) matches a version only through ``from``/``to``.
    """
    named = [event.ref, event.from_ref, event.to_ref, *(thaw(event.detail).get("refs") or [])]
    for text in filter(None, named):
        k, n, v = _split(str(text))
        if k == kind and n == name and (version is None or v == version):
            return True
    return False


def select(
    conn: sqlite3.Connection,
    *,
    kind: str | None = None,
    name: str | None = None,
    version: int | None = None,
    since: float | None = None,
    action: str | None = None,
    limit: int | None = None,
) -> list[AuditEvent]:
    """Events oldest first, narrowed in SQL by time, action and a text match, then exactly by ``mentions``."""
    where, args = [], []
    if since is not None:
        where.append("time >= ?")
        args.append(since)
    if action is not None:
        where.append("action = ?")
        args.append(action)
    if kind is not None and name is not None:
        where.append("(ref || ' ' || COALESCE(from_ref, '') || ' ' || COALESCE(to_ref, '') || ' ' || detail) LIKE ?")
        args.append(f"%{kind}://{name}%")
    sql = "SELECT * FROM audit" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY id"
    events = [_row(r) for r in conn.execute(sql, args).fetchall()]
    if kind is not None and name is not None:
        events = [e for e in events if mentions(e, kind, name, version)]
    return events[-limit:] if limit else events
