"""The artifact registry: SQLite (WAL) for records, a blob store for content.

Every step of the lifecycle reads its inputs from here by reference and writes its
outputs here, with the lineage edges between them. This module opens one registry
folder: the connection, the schema migration, the write transaction every writer
takes, and the maintenance entry points. What a registry does is in its mixins, one
file each: ``saving.py`` (versions and edges, and what ``latest`` means), ``reading.py``
(references resolved, the record cache, content), ``state.py`` (mutable side records),
``listing.py``, ``lineage.py``, and ``aliases.py`` (alias moves, their release-policy
check and their audit events).
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..context.home import resolve_home
from ..errors import RegistryError
from . import faults
from .aliases import Aliases
from .blobs import BlobStore
from .lineage import Lineage
from .listing import Listing, NameSummary
from .reading import Reading
from .records import Artifact
from .saving import SaveResult, Saving
from .schema import SCHEMA_VERSION, statements
from .state import State

__all__ = ["Registry", "SaveResult", "NameSummary"]


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


class Registry(Saving, Reading, State, Listing, Lineage, Aliases):
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

    # ------------------------------------------------------------------ maintenance

    def verify(self, *, rehash: bool = True):
        """Check records against blobs; see ``llmops_magics.store.integrity.verify``."""
        from .integrity import verify

        return verify(self, rehash=rehash)

    def gc(self, grace_seconds: float = 3600.0):
        """A plan of garbage to delete; call ``.execute()`` on it to delete."""
        from .integrity import plan_gc

        return plan_gc(self, grace_seconds)
