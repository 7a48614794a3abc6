"""Reading the registry: a reference resolved to its version, records cached, content handed out.

A mixin of ``Registry`` (as ``Listing``, ``Lineage`` and ``Aliases`` are): these methods
use its connection, lock and ``_query``. Every lookup ends in ``get``, whose per-process
cache is dropped whenever SQLite's ``data_version`` or this process's write count moves,
so a version another kernel saved a moment ago is seen at once.

``latest`` follows W&B (see ``saving.py``): it is stored as an alias row, and a name without
that row (a registry written before schema 2) has its highest version as ``latest``;
``_latest`` is the one place that reads it so.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from ..errors import AmbiguousReferenceError, NotFoundError, ValidationError
from .records import Artifact, freeze
from .refs import LATEST, Reference, parse_reference
from .schema import ARTIFACT_COLUMNS

__all__ = ["Reading"]

_LATEST_SQL = (
    "SELECT COALESCE((SELECT version FROM aliases WHERE kind=:kind AND name=:name AND alias='latest'), "
    "(SELECT MAX(version) FROM artifacts WHERE kind=:kind AND name=:name))"
)


class Reading:
    """Version lookups and content; mixed into ``Registry``."""

    def _stamp(self) -> tuple[int, int]:
        return (self._conn.execute("PRAGMA data_version").fetchone()[0], self._local_writes)

    @staticmethod
    def _latest(db: sqlite3.Connection | sqlite3.Cursor, kind: str, name: str) -> int | None:
        """The version ``latest`` points at (see the module docstring), or None for an unknown name."""
        return db.execute(_LATEST_SQL, {"kind": kind, "name": name}).fetchone()[0]

    def _aliases_of(self, kind: str, name: str, version: int) -> tuple[str, ...]:
        rows = self._conn.execute(
            "SELECT alias FROM aliases WHERE kind=? AND name=? AND version=? AND alias != ? ORDER BY alias",
            (kind, name, version, LATEST),
        ).fetchall()
        extra = (LATEST,) if self._latest(self._conn, kind, name) == version else ()
        return extra + tuple(r[0] for r in rows)

    def _row_to_artifact(self, row: sqlite3.Row) -> Artifact:
        return Artifact(
            id=row["id"],
            kind=row["kind"],
            name=row["name"],
            version=row["version"],
            digest=row["digest"],
            payload=row["payload"],
            is_tree=bool(row["is_tree"]),
            size=row["size"],
            created_at=row["created_at"],
            metadata=freeze(json.loads(row["metadata"])),
            source=freeze(json.loads(row["source"])),
            spec=freeze(json.loads(row["spec"])),
            wandb=freeze(json.loads(row["wandb"])),
            aliases=self._aliases_of(row["kind"], row["name"], row["version"]),
        )

    def get(self, kind: str, name: str, version: int) -> Artifact:
        """One exact version; served from a per-process cache invalidated by any write anywhere."""
        key = (kind, name, version)
        with self._lock:
            stamp = self._stamp()
            if stamp != self._cache_stamp:
                self._cache.clear()
                self._cache_stamp = stamp
            hit = self._cache.get(key)
            if hit is not None:
                return hit
            row = self._conn.execute(
                f"SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE kind=? AND name=? AND version=?", key
            ).fetchone()
            if row is None:
                raise NotFoundError(f"{kind}://{name} has no version {version}{self._known_versions(kind, name)}")
            art = self._row_to_artifact(row)
            self._cache[key] = art
            return art

    def _known_versions(self, kind: str, name: str) -> str:
        n = self._conn.execute("SELECT MAX(version) FROM artifacts WHERE kind=? AND name=?", (kind, name)).fetchone()[0]
        return f" (versions 1..{n} exist)" if n else ""

    def resolve(self, ref: Any, kind: str | None = None) -> Artifact:
        """An ``Artifact``, a ``Reference`` or a reference string, to the version it names."""
        if isinstance(ref, Artifact):
            return ref
        r = ref if isinstance(ref, Reference) else parse_reference(ref, kind)
        if r.kind is None:
            kinds = [
                row[0] for row in self._query("SELECT kind FROM aliases WHERE name=? AND alias=?", (r.name, LATEST))
            ]
            if not kinds:
                raise NotFoundError(f"no artifact is named {r.name!r}")
            if len(kinds) > 1:
                raise AmbiguousReferenceError(
                    f"{r.name!r} names a {' and a '.join(sorted(kinds))}; write "
                    f"{' or '.join(f'{k}://{r.name}' for k in sorted(kinds))} to choose"
                )
            r = r.with_kind(kinds[0])
        assert r.kind is not None
        if r.version is not None:
            return self.get(r.kind, r.name, r.version)
        with self._lock:
            if r.alias in (None, LATEST):
                version = self._latest(self._conn, r.kind, r.name)
                if version is None:
                    raise NotFoundError(f"no {r.kind} is named {r.name!r}")
            else:
                row = self._conn.execute(
                    "SELECT version FROM aliases WHERE kind=? AND name=? AND alias=?", (r.kind, r.name, r.alias)
                ).fetchone()
                if row is None:
                    known = self.aliases(r.kind, r.name)
                    hint = f"; its aliases are {', '.join(sorted(known))}" if known else ""
                    if not self._known_versions(r.kind, r.name):
                        raise NotFoundError(f"no {r.kind} is named {r.name!r}")
                    raise NotFoundError(f"{r.kind}://{r.name} has no alias {r.alias!r}{hint}")
                version = row[0]
        return self.get(r.kind, r.name, version)

    def exists(self, ref: Any, kind: str | None = None) -> bool:
        try:
            self.resolve(ref, kind)
        except NotFoundError:
            return False
        return True

    def latest_version(self, kind: str, name: str) -> int:
        """The version a bare ``name`` or ``name@latest`` resolves to."""
        with self._lock:
            version = self._latest(self._conn, kind, name)
        if version is None:
            raise NotFoundError(f"no {kind} is named {name!r}")
        return version

    def versions(self, kind: str, name: str) -> list[Artifact]:
        rows = self._query("SELECT version FROM artifacts WHERE kind=? AND name=? ORDER BY version", (kind, name))
        if not rows:
            raise NotFoundError(f"no {kind} is named {name!r}")
        return [self.get(kind, name, r["version"]) for r in rows]

    def read_bytes(self, ref: Any, kind: str | None = None) -> bytes:
        art = self.resolve(ref, kind)
        if art.is_tree:
            raise ValidationError(f"{art.ref} is a folder; use registry.checkout() for it")
        return self.blobs.read_bytes(art.payload)

    def checkout(self, ref: Any, kind: str | None = None) -> Path:
        """A read-only local folder (or file) with the artifact's content, shared by all readers."""
        art = self.resolve(ref, kind)
        if not art.is_tree:
            return self.blobs.path(art.payload)
        return self.blobs.materialize(art.payload, self.home / "checkouts" / art.payload[:2] / art.payload[2:])
