"""Listing the registry: names with version counts and aliases, paged, for listings and the sidebar.

A mixin of ``Registry``: it uses the registry's ``_query`` and ``get``. Each query
groups by name (one row per name), so a listing costs the same however many versions
each name has.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .records import Artifact, freeze
from .refs import LATEST, validate_kind

__all__ = ["Listing", "NameSummary"]


@dataclass(frozen=True)
class NameSummary:
    """One artifact name with its version count, for listings."""

    kind: str
    name: str
    versions: int
    latest: int
    updated_at: float
    aliases: Mapping[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "versions": self.versions,
            "latest": self.latest,
            "updated_at": self.updated_at,
            "aliases": dict(self.aliases),
            "ref": f"{self.kind}://{self.name}",
        }


class Listing:
    """Queries over names; mixed into ``Registry``."""

    def names(
        self, kind: str | None = None, search: str | None = None, limit: int | None = None, offset: int = 0
    ) -> list[NameSummary]:
        """Artifact names with version counts, ordered by kind then name (paged by ``limit``/``offset``).

        Read from the ``latest`` alias rows, one per name, so a page costs the same however
        many versions there are. Versions are numbered 1..n and never removed: n is the count.
        """
        where, args = self._filter(kind, search)
        sql = (
            "SELECT l.kind, l.name, l.version AS latest, l.updated_at AS moved, "
            "(SELECT MAX(version) FROM artifacts a WHERE a.kind = l.kind AND a.name = l.name) AS n, "
            "(SELECT created_at FROM artifacts a WHERE a.kind = l.kind AND a.name = l.name "
            "ORDER BY version DESC LIMIT 1) AS created "
            f"FROM aliases l WHERE l.alias = '{LATEST}' {where.replace('WHERE', 'AND')} ORDER BY l.kind, l.name"
        )
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args += [int(limit), int(offset)]
        out = []
        for r in self._query(sql, args):
            aliases = self.aliases(r["kind"], r["name"])  # type: ignore[attr-defined]
            updated = max(r["created"] or 0.0, r["moved"] or 0.0)
            out.append(NameSummary(r["kind"], r["name"], r["n"], r["latest"], updated, freeze(aliases)))
        return out

    def count_names(self, kind: str | None = None, search: str | None = None) -> int:
        where, args = self._filter(kind, search)
        sql = f"SELECT COUNT(*) FROM aliases WHERE alias = '{LATEST}' {where.replace('WHERE', 'AND')}"
        return self._query(sql, args)[0][0]

    def unmirrored(self, kind: str | None = None) -> list[Artifact]:
        """Versions never mirrored to W&B (their ``wandb`` field is empty), oldest first: ``llmops sync``."""
        where, args = self._filter(kind, None)
        where = f"{where} AND" if where else "WHERE"
        rows = self._query(f"SELECT kind, name, version FROM artifacts {where} wandb = '{{}}' ORDER BY id", args)
        return [self.get(r["kind"], r["name"], r["version"]) for r in rows]  # type: ignore[attr-defined]

    def find_digest(self, kind: str, digest: str) -> Artifact | None:
        """The oldest version of any name of ``kind`` whose content is ``digest`` (a model saved twice)."""
        rows = self._query(
            "SELECT name, version FROM artifacts WHERE kind = ? AND digest = ? ORDER BY id LIMIT 1", (kind, digest)
        )
        return self.get(kind, rows[0]["name"], rows[0]["version"]) if rows else None  # type: ignore[attr-defined]

    @staticmethod
    def _filter(kind: str | None, search: str | None) -> tuple[str, list[Any]]:
        clauses, args = [], []
        if kind:
            validate_kind(kind)
            clauses.append("kind = ?")
            args.append(kind)
        if search:
            clauses.append("instr(lower(name), ?) > 0")
            args.append(search.lower())
        return ("WHERE " + " AND ".join(clauses)) if clauses else "", args

    def all_artifacts(self, kind: str | None = None) -> list[Artifact]:
        where, args = self._filter(kind, None)
        rows = self._query(f"SELECT kind, name, version FROM artifacts {where} ORDER BY kind, name, version", args)
        return [self.get(r["kind"], r["name"], r["version"]) for r in rows]

    def list(self, kind: str | None = None, search: str | None = None):
        """A displayable listing of names (with version counts and aliases)."""
        from ..display.listing import NameList

        return NameList(self.names(kind, search))
