"""Lineage: the edges between versions, walked upstream (what made it) and downstream (what it made).

A mixin of ``Registry``: it uses the registry's ``_query``, ``get`` and ``resolve``.
"""

from __future__ import annotations

from typing import Any

from .records import Artifact, Edge

__all__ = ["Lineage"]


class Lineage:
    """Edge queries; mixed into ``Registry``."""

    def _edges(self, column: str, art_id: int) -> list[tuple[int, str]]:
        other = "source_id" if column == "target_id" else "target_id"
        return [(r[0], r[1]) for r in self._query(f"SELECT {other}, relation FROM edges WHERE {column}=?", (art_id,))]

    def _by_id(self, art_id: int) -> Artifact:
        row = self._query("SELECT kind, name, version FROM artifacts WHERE id=?", (art_id,))[0]
        return self.get(row["kind"], row["name"], row["version"])

    def upstream(self, ref: Any, depth: int = 50) -> list[Edge]:
        """Edges leading into ``ref``, transitively (what it was made from)."""
        return self._walk(self.resolve(ref), "target_id", depth)

    def downstream(self, ref: Any, depth: int = 50) -> list[Edge]:
        """Edges leading out of ``ref``, transitively (what was made from it)."""
        return self._walk(self.resolve(ref), "source_id", depth)

    def _walk(self, start: Artifact, column: str, depth: int) -> list[Edge]:
        seen, edges, frontier = {start.id}, [], [start]
        for _ in range(depth):
            nxt = []
            for art in frontier:
                for other_id, relation in self._edges(column, art.id):
                    other = self._by_id(other_id)
                    src, dst = (other, art) if column == "target_id" else (art, other)
                    edges.append(Edge(src.ref, dst.ref, relation))
                    if other_id not in seen:
                        seen.add(other_id)
                        nxt.append(other)
            if not nxt:
                break
            frontier = nxt
        return edges

    def lineage(self, ref: Any, depth: int = 50) -> dict[str, Any]:
        """Upstream and downstream of ``ref`` as a node/edge graph (for displays and the REST API)."""
        art = self.resolve(ref)
        edges = self.upstream(art, depth) + self.downstream(art, depth)
        nodes = {art.ref} | {e.source for e in edges} | {e.target for e in edges}
        return {"root": art.ref, "nodes": sorted(nodes), "edges": [e.to_dict() for e in edges]}
