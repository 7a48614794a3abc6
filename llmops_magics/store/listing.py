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
        """Artifact names with version counts, ordered by kind then name (paged by ``limit``/``offset``)."""
        where, args = self._filter(kind, search)
        sql = (
            "SELECT kind, name, COUNT(*) AS n, MAX(version) AS newest, MAX(created_at) AS updated "
            f"FROM artifacts {where} GROUP BY kind, name ORDER BY kind, name"
        )
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args += [int(limit), int(offset)]
        rows = self._query(sql, args)
        aliases: dict[tuple[str, str], dict[str, int]] = {}
        latest: dict[tuple[str, str], tuple[int, float]] = {}
        if rows:
            a_where, a_args = self._filter(kind, search)
            for a in self._query(f"SELECT kind, name, alias, version, updated_at FROM aliases {a_where}", a_args):
                if a["alias"] == LATEST:
                    latest[(a["kind"], a["name"])] = (a["version"], a["updated_at"])
                else:
                    aliases.setdefault((a["kind"], a["name"]), {})[a["alias"]] = a["version"]
        out = []
        for r in rows:
            key = (r["kind"], r["name"])
            version, moved_at = latest.get(key, (r["newest"], r["updated"]))
            out.append(NameSummary(*key, r["n"], version, max(r["updated"], moved_at), freeze(aliases.get(key, {}))))
        return out

    def count_names(self, kind: str | None = None, search: str | None = None) -> int:
        where, args = self._filter(kind, search)
        return self._query(f"SELECT COUNT(*) FROM (SELECT 1 FROM artifacts {where} GROUP BY kind, name)", args)[0][0]

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
