"""The artifact registry: SQLite (WAL) for records, a blob store for content.

Every step of the lifecycle reads its inputs from here by reference and writes its
outputs here, with the lineage edges between them. A save is one ``BEGIN
IMMEDIATE`` transaction taken after the content is already in the blob store, so
concurrent writers (kernels, the server extension, CLI runs) serialise on the
version number and a writer killed at any point leaves either the whole version
or no row at all.

``latest`` follows W&B: it points at the most recently saved version, and saving
content that an older version already holds makes no new version but moves
``latest`` back to that one (so ``%finetune --prompt qa`` uses the template the
notebook shows last). It is stored as an alias row, and a name without that row
(a registry written before schema 2) has its highest version as ``latest``.

Alias moves, their release-policy check and their audit events are in ``aliases.py``.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..context.home import resolve_home
from ..errors import AmbiguousReferenceError, NotFoundError, RegistryError, ValidationError
from . import faults
from .aliases import Aliases
from .blobs import BlobStore
from .lineage import Lineage
from .listing import Listing, NameSummary
from .records import Artifact, Edge, dumps, freeze
from .refs import LATEST, Reference, parse_reference, validate_alias, validate_kind, validate_name
from .schema import SCHEMA_VERSION, statements

__all__ = ["Registry", "SaveResult", "NameSummary"]

_COLUMNS = "id, kind, name, version, digest, payload, is_tree, size, created_at, metadata, source, spec, wandb"
_LATEST_SQL = (
    "SELECT COALESCE((SELECT version FROM aliases WHERE kind=:kind AND name=:name AND alias='latest'), "
    "(SELECT MAX(version) FROM artifacts WHERE kind=:kind AND name=:name))"
)


@dataclass(frozen=True)
class SaveResult:
    """``created``: a new version was made. ``latest_moved``: ``latest`` now points at a
    version it did not point at before (always so for a new version; for an existing one,
    a return to older content, which a mirror must log again to move W&B's ``latest``).
    ``withheld``: a requested alias ``[tool.llmops.policy]`` refused; the version is saved anyway,
    since refusing the save would throw away what made it (a fine-tune's training)."""

    artifact: Artifact
    created: bool
    latest_moved: bool = False
    withheld: tuple[str, ...] = ()  # aliases the release policy kept off the new version, each with its reason


def _retry_while_locked(step: Callable[[], None], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.01
    while True:
        try:
            return step()
        except RegistryError as exc:
            if not getattr(exc, "locked", False) or time.monotonic() > deadline:
                raise
        time.sleep(delay * (0.5 + random.random()))
        delay = min(delay * 2, 0.5)


class Registry(Listing, Lineage, Aliases):
    """One registry folder. Thread-safe; open one per process (see ``llmops_magics.registry``)."""

    DB_FILE = "registry.db"

    @classmethod
    def found_at(cls, home: str | os.PathLike) -> bool:
        """Whether ``home`` already holds a registry (opening one creates it; readers ask first)."""
        return (Path(home) / cls.DB_FILE).is_file()

    def __init__(self, home: str | os.PathLike | None = None, *, busy_timeout: float = 60.0) -> None:
        self.home = resolve_home(explicit=home) if home else resolve_home()
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RegistryError(f"cannot create registry folder {self.home}: {exc}") from None
        self.blobs = BlobStore(self.home / "blobs", self.home / "tmp")
        self._lock = threading.RLock()
        self.read_only = faults.read_only(self.home)
        try:
            self._conn = sqlite3.connect(
                faults.database_uri(self.home / self.DB_FILE, self.read_only),
                uri=True,
                timeout=busy_timeout,
                isolation_level=None,
                check_same_thread=False,
                factory=faults.Connection,
            )
        except sqlite3.Error as exc:
            raise faults.sqlite_error(exc, self.home, busy_timeout) from None
        self._conn.home, self._conn.busy_timeout = self.home, busy_timeout
        self._conn.row_factory = sqlite3.Row
        self._cache: dict[tuple[str, str, int], Artifact] = {}
        self._cache_stamp: tuple[int, int] | None = None
        self._local_writes = 0
        self.closed = False
        _retry_while_locked(self._set_up, busy_timeout)

    def _set_up(self) -> None:
        # Switching a fresh database to WAL needs an exclusive lock, and SQLite answers
        # "database is locked" at once (without the busy handler) when two processes opening
        # the same new registry both hold a read lock and want it; hence the retry around this.
        if self.read_only:
            return self._migrate()
        if self._conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._migrate()

    def __repr__(self) -> str:
        return f"Registry({str(self.home)!r})"

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            self.closed = True

    def _migrate(self) -> None:
        with self._lock:
            current = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if current > SCHEMA_VERSION:
                raise RegistryError(
                    f"registry {self.home} has schema {current}, newer than this llmops-magics "
                    f"understands ({SCHEMA_VERSION}); upgrade the package"
                )
            if current < SCHEMA_VERSION and self.read_only:
                raise RegistryError(
                    f"registry {self.home} has schema {current} and needs upgrading to {SCHEMA_VERSION}, "
                    "which cannot be done on a read-only file system"
                )
            if current < SCHEMA_VERSION:
                with self.transaction() as cur:
                    if cur.execute("PRAGMA user_version").fetchone()[0] >= SCHEMA_VERSION:
                        return  # another process migrated it while this one waited for the lock
                    for stmt in statements():
                        cur.execute(stmt)
                    cur.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        """A write transaction that takes the database lock up front (no upgrade deadlocks)."""
        if self.read_only:
            raise RegistryError(f"the registry {self.home} is on a read-only file system: it can be read, not written")
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
                cur.execute("UPDATE meta SET value = value + 1 WHERE key = 'changes'")
                cur.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:  # SQLite may have rolled back already (a full disk)
                    try:
                        cur.execute("ROLLBACK")
                    except RegistryError:
                        pass  # the error that got us here is the one to report
                raise
            finally:
                self._local_writes += 1
                self._cache.clear()

    def _query(self, sql: str, args: Iterable[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, tuple(args)).fetchall()

    def change_counter(self) -> int:
        """Grows with every committed write from any process: a cheap ETag for pollers."""
        return int(self._query("SELECT value FROM meta WHERE key = 'changes'")[0][0])

    # ------------------------------------------------------------------ writes

    def save(
        self,
        kind: str,
        name: str,
        *,
        data: bytes | None = None,
        path: str | os.PathLike | None = None,
        digest: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        source: Mapping[str, Any] | None = None,
        spec: Mapping[str, Any] | None = None,
        aliases: Iterable[str] = (),
        parents: Iterable[tuple[Any, str]] = (),
    ) -> SaveResult:
        """Store content as a new version, or return the version that already holds it.

        Give ``data`` (bytes) or ``path`` (a file or a folder). ``digest`` overrides the
        content identity used for deduplication (for content whose bytes are not canonical).
        ``parents`` are ``(reference, relation)`` pairs recorded as lineage edges.
        """
        validate_kind(kind)
        validate_name(name)
        aliases = [validate_alias(a) for a in aliases]
        if (data is None) == (path is None):
            raise ValidationError("save() needs exactly one of data= or path=")
        parent_ids = [(self.resolve(ref).id, validate_name(rel, "relation")) for ref, rel in parents]
        if data is not None:
            if not data:
                raise ValidationError(f"{kind} {name!r} has empty content")
            payload, size, is_tree = self.blobs.put_bytes(data), len(data), False
        else:
            p = Path(path)  # type: ignore[arg-type]
            if p.is_dir():
                payload, size = self.blobs.put_tree(p)
                is_tree = True
            elif p.is_file():
                payload, size = self.blobs.put_file(p)
                is_tree = False
            else:
                raise ValidationError(f"path {str(p)!r} does not exist")
        identity = digest or payload
        now = time.time()
        with self.transaction() as cur:
            before = self._latest(cur, kind, name)
            row = cur.execute(
                "SELECT id, version FROM artifacts WHERE kind=? AND name=? AND digest=? ORDER BY version LIMIT 1",
                (kind, name, identity),
            ).fetchone()
            created = row is None
            if created:
                version = cur.execute(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM artifacts WHERE kind=? AND name=?", (kind, name)
                ).fetchone()[0]
                cur.execute(
                    f"INSERT INTO artifacts ({_COLUMNS}) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{{}}')",
                    (
                        kind,
                        name,
                        version,
                        identity,
                        payload,
                        int(is_tree),
                        size,
                        now,
                        dumps(metadata or {}),
                        dumps(source or {}),
                        dumps(spec or {}),
                    ),
                )
                art_id = cur.lastrowid
            else:
                art_id, version = row["id"], row["version"]
            self._set_alias(cur, kind, name, LATEST, version, now)
            for parent_id, relation in parent_ids:
                if parent_id == art_id:  # a replay that made the version it repeats
                    continue
                cur.execute(
                    "INSERT OR IGNORE INTO edges (source_id, target_id, relation) VALUES (?, ?, ?)",
                    (parent_id, art_id, relation),
                )
            withheld = []
            for alias in aliases:  # after the edges: the release policy reads this version's lineage
                try:
                    self._guard(cur, self.get(kind, name, version), alias, None)
                except ValidationError as exc:  # the version is kept (a fine-tune is not lost), the alias is not set
                    withheld.append(f"{kind}://{name}/{version} was saved without alias {alias!r}: {exc}")
                    continue
                self._set_alias(cur, kind, name, alias, version, now)
        for line in withheld:
            warnings.warn(line + "; tag it once the policy is met (or with --override-policy REASON)", stacklevel=2)
        return SaveResult(self.get(kind, name, version), created, before != version, tuple(withheld))

    def add_edge(self, source: Any, target: Any, relation: str) -> Edge:
        src, dst = self.resolve(source), self.resolve(target)
        validate_name(relation, "relation")
        with self.transaction() as cur:
            cur.execute(
                "INSERT OR IGNORE INTO edges (source_id, target_id, relation) VALUES (?, ?, ?)",
                (src.id, dst.id, relation),
            )
        return Edge(src.ref, dst.ref, relation)

    def update_wandb(self, artifact: Artifact, info: Mapping[str, Any]) -> Artifact:
        """Record where the artifact was mirrored in W&B (merged into what is there)."""
        with self.transaction() as cur:
            row = cur.execute("SELECT wandb FROM artifacts WHERE id=?", (artifact.id,)).fetchone()
            if row is None:
                raise NotFoundError(f"{artifact.ref} no longer exists")
            merged = {**json.loads(row["wandb"]), **dict(info)}
            cur.execute("UPDATE artifacts SET wandb=? WHERE id=?", (dumps(merged), artifact.id))
        return self.get(artifact.kind, artifact.name, artifact.version)

    # ------------------------------------------------------------------ state (mutable side records)

    def put_state(self, namespace: str, key: str, value: Any) -> None:
        """Small mutable records that are not artifacts (running deployments, jobs)."""
        with self.transaction() as cur:
            cur.execute(
                "INSERT INTO state (namespace, key, value, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (namespace, key) DO UPDATE SET value=excluded.value, updated_at=excluded.updated_at",
                (namespace, key, dumps(value), time.time()),
            )

    def get_state(self, namespace: str, key: str, default: Any = None) -> Any:
        rows = self._query("SELECT value FROM state WHERE namespace=? AND key=?", (namespace, key))
        return json.loads(rows[0]["value"]) if rows else default

    def list_state(self, namespace: str) -> dict[str, Any]:
        rows = self._query("SELECT key, value FROM state WHERE namespace=? ORDER BY key", (namespace,))
        return {r["key"]: json.loads(r["value"]) for r in rows}

    def delete_state(self, namespace: str, key: str) -> None:
        with self.transaction() as cur:
            cur.execute("DELETE FROM state WHERE namespace=? AND key=?", (namespace, key))

    # ------------------------------------------------------------------ reads

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
                f"SELECT {_COLUMNS} FROM artifacts WHERE kind=? AND name=? AND version=?", key
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

    # ------------------------------------------------------------------ content

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

    # ------------------------------------------------------------------ maintenance

    def verify(self, *, rehash: bool = True):
        """Check records against blobs; see ``llmops_magics.store.integrity.verify``."""
        from .integrity import verify

        return verify(self, rehash=rehash)

    def gc(self, grace_seconds: float = 3600.0):
        """A plan of garbage to delete; call ``.execute()`` on it to delete."""
        from .integrity import plan_gc

        return plan_gc(self, grace_seconds)
