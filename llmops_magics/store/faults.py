"""What the disk and SQLite say when something is wrong, said in the registry's own words.

Every SQLite call goes through ``Connection``/``Cursor`` here, and every blob write through
``os_error``: a full disk, a read-only folder, a lock held by another process past the
busy timeout, a damaged database page all become one ``RegistryError`` (``IntegrityError``
for damage) that names the registry folder and what to do, instead of a raw
``sqlite3.OperationalError: disk I/O error``. The write that failed has written nothing
(a transaction is rolled back; a blob's temp file is removed).
"""

from __future__ import annotations

import errno
import os
import sqlite3
import urllib.parse
from pathlib import Path

from ..errors import IntegrityError, RegistryError

__all__ = ["Connection", "Cursor", "database_uri", "os_error", "read_only", "sqlite_error"]

# SQLite's primary result codes (the low byte of sqlite_errorcode)
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 6, 8, 10, 11, 13, 14, 26


def _disk_full(home: Path) -> bool:
    try:
        st = os.statvfs(home)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < 64 * 1024


def read_only(home: Path) -> bool:
    """Whether the registry folder is on a file system mounted read-only (a shared, published registry)."""
    try:
        return bool(os.statvfs(home).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def database_uri(db: Path, read_only: bool) -> str:
    """The SQLite URI that opens ``db``; on a read-only file system, one that needs no writable files.

    A WAL database is normally opened with its ``-shm`` file, which cannot be created there.
    With a WAL left behind (a writer that did not close cleanly before the remount) SQLite can
    still read it in ``mode=ro``; without one, ``immutable=1`` tells it nothing can change.
    """
    uri = "file:" + urllib.parse.quote(str(db))
    if not read_only:
        return uri
    wal = db.with_name(db.name + "-wal")
    return uri + ("?mode=ro" if wal.is_file() and wal.stat().st_size else "?mode=ro&immutable=1")


def _full(home: Path) -> RegistryError:
    return RegistryError(f"the disk holding the registry {home} is full; nothing was written (free space and retry)")


def _readonly(home: Path) -> RegistryError:
    return RegistryError(f"the registry {home} is on a read-only file system: it can be read, not written")


def sqlite_error(exc: sqlite3.Error, home: Path, busy_timeout: float) -> RegistryError:
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    text = str(exc)
    if code in (_BUSY, _LOCKED) or "locked" in text:
        locked = RegistryError(
            f"the registry {home} is locked by another process and stayed locked for {busy_timeout:g} s; "
            "try again when that process has finished"
        )
        locked.locked = True  # type: ignore[attr-defined]  # opening a new registry retries on it
        return locked
    if code == _FULL or (code == _IOERR and _disk_full(home)):
        return _full(home)
    if code == _READONLY or (code in (_IOERR, _CANTOPEN) and read_only(home)):
        return _readonly(home)
    if code in (_CORRUPT, _NOTADB):
        return IntegrityError(f"the registry database in {home} is damaged ({text}); run `llmops doctor`")
    return RegistryError(f"the registry {home} could not be used ({text})")


def os_error(exc: OSError, home: Path) -> RegistryError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return _full(home)
    if exc.errno == errno.EROFS:
        return _readonly(home)
    return RegistryError(f"the registry {home} could not be written ({exc.strerror or exc})")


class Cursor(sqlite3.Cursor):
    """A cursor whose errors are the registry's (SQLite also fails while fetching rows of a damaged page)."""

    def _translate(self, exc: sqlite3.Error) -> RegistryError:
        conn = self.connection
        return sqlite_error(exc, conn.home, conn.busy_timeout)  # type: ignore[attr-defined]

    def execute(self, *args, **kwargs):
        try:
            return super().execute(*args, **kwargs)
        except sqlite3.Error as exc:
            raise self._translate(exc) from None

    def executemany(self, *args, **kwargs):
        try:
            return super().executemany(*args, **kwargs)
        except sqlite3.Error as exc:
            raise self._translate(exc) from None

    def __next__(self):
        try:
            return super().__next__()
        except sqlite3.Error as exc:
            raise self._translate(exc) from None

    def fetchone(self):
        try:
            return super().fetchone()
        except sqlite3.Error as exc:
            raise self._translate(exc) from None

    def fetchall(self):
        try:
            return super().fetchall()
        except sqlite3.Error as exc:
            raise self._translate(exc) from None


class Connection(sqlite3.Connection):
    """``sqlite3.connect(..., factory=Connection)``; set ``home`` and ``busy_timeout`` after connecting."""

    home: Path = Path(".")
    busy_timeout: float = 0.0

    def cursor(self, factory=Cursor):
        return super().cursor(factory)

    # ``Connection.execute`` makes a plain ``sqlite3.Cursor`` in C, past ``cursor()``: make ours.
    def execute(self, *args, **kwargs):
        return self.cursor().execute(*args, **kwargs)

    def executemany(self, *args, **kwargs):
        return self.cursor().executemany(*args, **kwargs)

    def executescript(self, *args, **kwargs):
        try:
            return super().executescript(*args, **kwargs)
        except sqlite3.Error as exc:
            raise sqlite_error(exc, self.home, self.busy_timeout) from None

    def commit(self):
        try:
            return super().commit()
        except sqlite3.Error as exc:
            raise sqlite_error(exc, self.home, self.busy_timeout) from None
