"""The lineage graph of one version: every ancestor and every descendant, as nodes and edges.

``Lineage.upstream``/``downstream`` return edge lists for the text tree and for code that
walks one step; a picture needs the graph itself: each version once, with what a node
shows (kind, name, version, aliases, creation time), and every edge between the versions
drawn, including one that neither walk crossed (a data set used by an adapter *and* by
the eval of that adapter). This module builds that, for the notebook's SVG
(``display/lineage_svg``), the server route (``/llmops/graph/…``) and the JupyterLab panel,
which all draw the same JSON.

What is in the graph: the focus, everything it was made from (following edges backwards,
transitively), and everything made from it (following edges forwards). Siblings (another
adapter made from the same data set) are not: they are neither upstream nor downstream.

Bounded and cycle-safe: each version is visited once, the walk stops after ``depth``
levels each way, and at ``max_nodes`` versions; ``truncated`` then says the picture is cut.
The edges of each level are one query (ids in chunks) and each version is read once (through
the registry's cache), so the cost grows with the graph, not with the registry.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from ..errors import ValidationError
from .records import Artifact

__all__ = ["graph", "MAX_DEPTH", "MAX_NODES"]

MAX_DEPTH = 50
MAX_NODES = 500
_CHUNK = 400  # ids per IN (...) list: well under SQLite's default limit of 32766 variables


def _levels(depth: Any) -> int:
    if depth is None:
        return MAX_DEPTH
    if isinstance(depth, bool) or not isinstance(depth, int):
        raise ValidationError(f"depth must be an integer between 1 and {MAX_DEPTH}, found {depth!r}")
    if not 1 <= depth <= MAX_DEPTH:
        raise ValidationError(f"depth must be between 1 and {MAX_DEPTH}, found {depth}")
    return depth


def _edges_touching(reg: Any, column: str, ids: list[int]) -> list[tuple[int, int, str]]:
    """``(source_id, target_id, relation)`` of every edge whose ``column`` is one of ``ids``."""
    rows: list[tuple[int, int, str]] = []
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT source_id, target_id, relation FROM edges WHERE {column} IN ({marks})"
        rows += [(r[0], r[1], r[2]) for r in reg._query(sql, chunk)]
    return rows


def _walk(reg: Any, start: int, backwards: bool, levels: int, seen: dict[int, int], budget: int) -> bool:
    """Visit ancestors (``backwards``) or descendants of ``start``; fills ``seen`` (id → signed level).

    Returns True when the walk was cut: ``budget`` (how many more versions may join) ran out, or
    ``levels`` did while versions were left beyond them.
    """
    column = "target_id" if backwards else "source_id"
    sign = -1 if backwards else 1
    frontier = [start]
    for level in range(1, levels + 1):
        nxt: list[int] = []
        for source, target, _ in sorted(_edges_touching(reg, column, frontier)):
            other = source if backwards else target
            if other in seen:
                continue
            if budget <= 0:
                return True
            seen[other] = sign * level
            budget -= 1
            nxt.append(other)
        if not nxt:
            return False
        frontier = nxt
    return any((s if backwards else t) not in seen for s, t, _ in _edges_touching(reg, column, frontier))


def _artifacts(reg: Any, ids: Iterable[int]) -> dict[int, Artifact]:
    out: dict[int, Artifact] = {}
    ids = list(ids)
    for i in range(0, len(ids), _CHUNK):
        chunk = ids[i : i + _CHUNK]
        marks = ",".join("?" * len(chunk))
        for row in reg._query(f"SELECT id, kind, name, version FROM artifacts WHERE id IN ({marks})", chunk):
            out[row[0]] = reg.get(row[1], row[2], row[3])
    return out


def _node(art: Artifact, level: int) -> dict[str, Any]:
    return {
        "ref": art.ref,
        "kind": art.kind,
        "name": art.name,
        "version": art.version,
        "aliases": list(art.aliases),
        "created": datetime.fromtimestamp(art.created_at, tz=UTC).isoformat(),
        "level": level,
    }


def graph(source: Any, ref: Any, depth: int | None = None, *, max_nodes: int = MAX_NODES) -> dict[str, Any]:
    """The lineage graph around ``ref`` as JSON-ready ``{"focus", "nodes", "edges", "depth", "truncated"}``.

    ``source`` is a ``Registry`` or anything holding one as ``.registry`` (a ``Workspace``).
    ``depth`` bounds the levels walked each way (``None``: ``MAX_DEPTH``). A node is
    ``{"ref", "kind", "name", "version", "aliases", "created", "level"}`` (``level``: 0 for the
    focus, negative upstream, positive downstream); an edge is ``{"src", "dst", "relation"}``,
    one per stored edge between two nodes of the graph. Nodes are ordered by level, then
    reference; edges by source, target, relation: the same registry gives the same JSON.
    """
    reg = getattr(source, "registry", source)
    levels = _levels(depth)
    if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1:
        raise ValidationError(f"max_nodes must be a positive integer, found {max_nodes!r}")
    focus = reg.resolve(ref)
    seen: dict[int, int] = {focus.id: 0}
    cut_up = _walk(reg, focus.id, True, levels, seen, max_nodes - len(seen))
    cut_down = _walk(reg, focus.id, False, levels, seen, max_nodes - len(seen))
    arts = _artifacts(reg, seen)
    nodes = sorted((_node(arts[i], level) for i, level in seen.items()), key=lambda n: (n["level"], n["ref"]))
    edges = sorted(
        {
            (arts[s].ref, arts[t].ref, relation)
            for s, t, relation in _edges_touching(reg, "source_id", list(seen))
            if t in seen
        }
    )
    return {
        "focus": focus.ref,
        "nodes": nodes,
        "edges": [{"src": s, "dst": t, "relation": r} for s, t, r in edges],
        "depth": levels,
        "truncated": cut_up or cut_down,
    }
