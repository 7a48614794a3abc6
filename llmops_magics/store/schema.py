"""SQLite schema of the registry, versioned with ``PRAGMA user_version``.

Every statement is idempotent: a migration runs the whole script. Version 2 stores
``latest`` as an alias row (moved by every save, also one that finds its content
already stored); the last statement gives each name of an older registry that row,
pointing at its highest version, which is what ``latest`` meant there. Version 3 indexes
``(kind, name, digest, version)``: "the oldest version holding this content" is then one index
probe; with only ``(kind, name, digest)`` SQLite walked every version of the name in version
order to avoid a sort, which made each save cost O(versions). It also indexes aliases by name
and by alias: a bare name is resolved, and names are listed, from the ``latest`` alias rows (one
per name) instead of a scan of every version of every name. Version 4 adds the append-only
``audit`` table and the triggers that keep it so (``audit.SCHEMA``); a trigger's body holds
semicolons, so ``statements`` splits the script where SQLite says a statement is complete.
"""

import sqlite3
from collections.abc import Iterator

from .audit import SCHEMA as AUDIT_SCHEMA

SCHEMA_VERSION = 4

_TABLES = """
CREATE TABLE IF NOT EXISTS artifacts (
    id          INTEGER PRIMARY KEY,
    kind        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    digest      TEXT    NOT NULL,
    payload     TEXT    NOT NULL,
    is_tree     INTEGER NOT NULL,
    size        INTEGER NOT NULL,
    created_at  REAL    NOT NULL,
    metadata    TEXT    NOT NULL DEFAULT '{}',
    source      TEXT    NOT NULL DEFAULT '{}',
    spec        TEXT    NOT NULL DEFAULT '{}',
    wandb       TEXT    NOT NULL DEFAULT '{}',
    UNIQUE (kind, name, version)
);
DROP INDEX IF EXISTS artifacts_by_digest;
CREATE INDEX IF NOT EXISTS artifacts_by_digest_version ON artifacts (kind, name, digest, version);
CREATE TABLE IF NOT EXISTS aliases (
    kind       TEXT    NOT NULL,
    name       TEXT    NOT NULL,
    alias      TEXT    NOT NULL,
    version    INTEGER NOT NULL,
    updated_at REAL    NOT NULL,
    PRIMARY KEY (kind, name, alias)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS edges (
    source_id INTEGER NOT NULL REFERENCES artifacts (id),
    target_id INTEGER NOT NULL REFERENCES artifacts (id),
    relation  TEXT    NOT NULL,
    PRIMARY KEY (source_id, target_id, relation)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS edges_by_target ON edges (target_id);
CREATE INDEX IF NOT EXISTS artifacts_by_kind_digest ON artifacts (kind, digest);
CREATE INDEX IF NOT EXISTS aliases_by_alias ON aliases (alias, kind, name);
CREATE INDEX IF NOT EXISTS aliases_by_name ON aliases (name, alias);
CREATE TABLE IF NOT EXISTS state (
    namespace  TEXT NOT NULL,
    key        TEXT NOT NULL,
    value      TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO meta (key, value) VALUES ('changes', 0);
INSERT OR IGNORE INTO aliases (kind, name, alias, version, updated_at)
    SELECT kind, name, 'latest', MAX(version), MAX(created_at) FROM artifacts GROUP BY kind, name;
"""
SCHEMA = _TABLES + AUDIT_SCHEMA
# The order a save's INSERT gives the values in; reads select the same list.
ARTIFACT_COLUMNS = "id, kind, name, version, digest, payload, is_tree, size, created_at, metadata, source, spec, wandb"


def statements(script: str = SCHEMA) -> Iterator[str]:
    """The script's statements, one at a time (split at semicolons that end a complete statement)."""
    buf = ""
    for piece in script.split(";"):
        buf += piece + ";"
        if sqlite3.complete_statement(buf):
            if buf.strip(" \n;"):
                yield buf.strip()
            buf = ""
    if buf.strip(" \n;"):
        yield buf.strip()
