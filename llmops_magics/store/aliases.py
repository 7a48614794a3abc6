"""Aliases and the audit trail of the registry: every alias move is checked and recorded here.

A mixin of ``Registry`` (as ``Listing`` and ``Lineage`` are): these methods use its
connection, lock and ``transaction``. Every alias move other than ``latest`` (set, moved,
removed) appends its ``audit`` event (``audit.py``) in the same transaction, after asking
the release policy (``governance.policy``, imported by name when an alias moves, since the
store imports nothing above it) whether the version may carry that alias.
"""

from __future__ import annotations

import importlib
import sqlite3
import time
from typing import Any

from ..errors import NotFoundError
from . import audit
from .records import Artifact
from .refs import LATEST, Reference, parse_reference, validate_alias

__all__ = ["Aliases"]

_POLICY = "llmops_magics.governance.policy:check_alias"


class Aliases:
    @staticmethod
    def _set_alias(cur: sqlite3.Cursor, kind: str, name: str, alias: str, version: int, now: float) -> None:
        if alias != LATEST:
            audit.alias_moved(cur, kind, name, alias, version, now)
        cur.execute(
            "INSERT INTO aliases (kind, name, alias, version, updated_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (kind, name, alias) DO UPDATE SET version=excluded.version, updated_at=excluded.updated_at",
            (kind, name, alias, version, now),
        )

    def set_alias(
        self, ref: Any, alias: str, kind: str | None = None, *, override_policy: str | None = None, policy: bool = True
    ) -> Artifact:
        """Point ``alias`` at the version ``ref`` resolves to (moving it if it pointed elsewhere).

        The move and its audit event are one transaction. ``[tool.llmops.policy]`` is checked
        first (``policy=False``: the caller checked it already): a version it refuses raises
        ``PolicyError`` unless ``override_policy`` gives a reason, recorded as a ``policy-override``.
        """
        validate_alias(alias)
        art = self.resolve(ref, kind)
        with self.transaction() as cur:
            if policy:
                self._guard(cur, art, alias, override_policy)
            self._set_alias(cur, art.kind, art.name, alias, art.version, time.time())
        return self.get(art.kind, art.name, art.version)

    def _guard(self, cur: sqlite3.Cursor, art: Artifact, alias: str, override: str | None) -> None:
        """Ask the release policy (``governance.policy``, found by name: the store imports nothing above it)."""
        if alias == LATEST:
            return
        module, _, function = _POLICY.partition(":")
        getattr(importlib.import_module(module), function)(self, cur, art, alias, override)

    def record_event(self, action: str, ref: str, **fields: Any) -> None:
        """Append one audit event in a transaction of its own (deploy, stop, redaction: see ``store.audit``)."""
        with self.transaction() as cur:
            audit.insert(cur, action, ref, **fields)

    def audit_events(self, ref: Any = None, *, since: float | None = None, action: str | None = None):
        """Audit events oldest first: all, or those naming ``ref`` (a name: any version; a version: that one)."""
        kind = name = version = None
        if isinstance(ref, Artifact):
            kind, name, version = ref.kind, ref.name, ref.version
        elif ref is not None:
            r = ref if isinstance(ref, Reference) else parse_reference(str(ref))
            if r.kind is None or r.alias is not None:  # a bare name's kind, an alias's version: as they are now
                art = self.resolve(r)
                r = Reference(art.kind, art.name, art.version if r.alias is not None else r.version)
            kind, name, version = r.kind, r.name, r.version
        with self._lock:
            return audit.select(self._conn, kind=kind, name=name, version=version, since=since, action=action)

    def remove_alias(self, kind: str, name: str, alias: str) -> None:
        validate_alias(alias)
        with self.transaction() as cur:
            audit.alias_moved(cur, kind, name, alias, None, time.time())
            cur.execute("DELETE FROM aliases WHERE kind=? AND name=? AND alias=?", (kind, name, alias))
            if cur.rowcount == 0:
                raise NotFoundError(f"{kind}://{name} has no alias {alias!r}")

    def aliases(self, kind: str, name: str) -> dict[str, int]:
        """The aliases set by hand (``production``, …); ``latest`` is in ``latest_version``."""
        rows = self._query(
            "SELECT alias, version FROM aliases WHERE kind=? AND name=? AND alias != ? ORDER BY alias",
            (kind, name, LATEST),
        )
        return {r["alias"]: r["version"] for r in rows}
