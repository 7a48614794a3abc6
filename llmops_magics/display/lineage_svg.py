"""The lineage graph drawn as a static SVG: ``llmops_magics.lineage_graph(REF)`` in a notebook.

A static image rather than a widget so it shows in every front end (JupyterLab, Notebook 7,
VS Code, nbviewer, a saved ``.ipynb`` on GitHub) and needs no JavaScript: JupyterLab shows
``image/svg+xml`` as an image, in which nothing runs. The layout is grandalf's Sugiyama
(the layered layout graphviz calls *dot*, in pure Python, since ``dot`` itself is not a
Python dependency), turned on its side so lineage reads left to right: what a version was
made from on its left, what was made from it on its right, as in the JupyterLab panel
(``labextension/src/lineage.ts``, dagre), which uses the same kind colours (``graphlayout.ts``)
(``KIND_COLOURS``; a test holds the two equal).

Every text in the picture (names, aliases, relations) is escaped for XML: a graph from
elsewhere (the REST route, a JSON file) is drawn as text, never as markup.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from itertools import pairwise
from pathlib import Path
from typing import Any

from ..errors import ValidationError

__all__ = ["KIND_COLOURS", "LineageGraph", "lineage_graph", "render_svg", "layout"]

KIND_COLOURS = {
    "prompt": "#1f77b4",
    "dataset": "#2ca02c",
    "model": "#9467bd",
    "adapter": "#ff7f0e",
    "eval": "#d62728",
    "deployment": "#17becf",
    "selection": "#8c564b",
    "abtest": "#e377c2",
    "monitor": "#bcbd22",
    "pii-scan": "#7f7f7f",
    "fairness": "#393b79",
    "pipeline": "#637939",
    "card": "#843c39",
}
OTHER_COLOUR = "#6b7280"

NODE_W, NODE_H = 200, 62
LAYER_GAP, NODE_GAP = 90, 24  # between columns (levels), between nodes of one column
MARGIN, LEGEND_H = 16, 26
LABEL_CHARS = 26  # what fits on a node at 12px; the full reference is in the node's <title>
FONT = "font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif"
_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # not allowed in XML 1.0


def _x(value: Any) -> str:
    """``value`` as XML text or attribute content: escaped, characters XML forbids dropped."""
    text = _XML_BAD.sub("", str(value))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _legend_width(kind: str) -> float:
    return 16 + 6.6 * len(kind) + 18


def colour(kind: str) -> str:
    return KIND_COLOURS.get(kind, OTHER_COLOUR)


class _View:
    """What grandalf reads and writes on a vertex or an edge: its size, its centre, its path."""

    def __init__(self, w: float = 0.0, h: float = 0.0) -> None:
        self.w, self.h = w, h
        self.xy = (0.0, 0.0)
        self.points: list[tuple[float, float]] = []

    def setpath(self, points: list[tuple[float, float]]) -> None:
        self.points = list(points)


def _check(data: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
    nodes, edges = data.get("nodes"), data.get("edges")
    if not isinstance(nodes, list) or not isinstance(edges, list):
        raise ValidationError("a lineage graph needs 'nodes' and 'edges' lists (see store.graph.graph)")
    refs = {n.get("ref") for n in nodes if isinstance(n, Mapping)}
    if len(refs) != len(nodes):
        raise ValidationError("every node of a lineage graph must be an object with a unique 'ref'")
    for e in edges:
        if not isinstance(e, Mapping) or e.get("src") not in refs or e.get("dst") not in refs:
            raise ValidationError(f"an edge must join two nodes of the graph, found {e!r}")
    return nodes, edges


def layout(data: Mapping[str, Any]) -> dict[str, Any]:
    """Node centres and edge paths, left to right: ``{"width", "height", "nodes": {ref: (x, y)},
    "edges": {(src, dst): [points]}}``. Several relations between one pair share one path."""
    try:
        from grandalf.graphs import Edge, Graph, Vertex
        from grandalf.layouts import SugiyamaLayout
    except ImportError:
        raise ValidationError("drawing a lineage graph needs grandalf: pip install 'llmops-magics[widgets]'") from None
    nodes, edges = _check(data)
    vertices = {n["ref"]: Vertex(n["ref"]) for n in nodes}
    for v in vertices.values():
        v.view = _View(NODE_H, NODE_W)  # grandalf stacks layers top to bottom: lay out on the side
    pairs = sorted({(e["src"], e["dst"]) for e in edges if e["src"] != e["dst"]})
    links = {pair: Edge(vertices[pair[0]], vertices[pair[1]]) for pair in pairs}
    for link in links.values():
        link.view = _View()
    g = Graph(list(vertices.values()), list(links.values()))
    top = 0.0
    centres: dict[str, tuple[float, float]] = {}
    paths: dict[tuple[str, str], list[tuple[float, float]]] = {}
    width = 0.0
    for part in g.C:  # one part unless the caller passed a graph with islands
        sug = SugiyamaLayout(part)
        sug.xspace, sug.yspace = NODE_GAP, LAYER_GAP
        sug.init_all(optimize=True)
        sug.draw()
        xs = [v.view.xy[0] for v in part.sV]
        low = min(xs) - NODE_H / 2
        for v in part.sV:  # turn (x across a layer, y down the layers) into (x along, y across)
            centres[v.data] = (v.view.xy[1], v.view.xy[0] - low + top)
        for pair, link in links.items():
            if link in part.sE and link.view.points:
                paths[pair] = [(y, x - low + top) for x, y in link.view.points]
        width = max(width, max(c[0] for c in centres.values()) + NODE_W / 2)
        top = max(c[1] for c in centres.values()) + NODE_H / 2 + NODE_GAP * 2
    return {"width": width, "height": max(top - NODE_GAP * 2, 0.0), "nodes": centres, "edges": paths}


def _curve(points: list[tuple[float, float]]) -> str:
    """A smooth path through ``points``, leaving and entering each horizontally."""
    x0, y0 = points[0]
    parts = [f"M{x0:.1f},{y0:.1f}"]
    for (ax, ay), (bx, by) in pairwise(points):
        dx = (bx - ax) / 2
        parts.append(f"C{ax + dx:.1f},{ay:.1f} {bx - dx:.1f},{by:.1f} {bx:.1f},{by:.1f}")
    return " ".join(parts)


def _node_svg(node: Mapping[str, Any], x: float, y: float, focus: bool) -> str:
    kind, ref = str(node.get("kind", "")), str(node["ref"])
    col = colour(kind)
    left, top = x - NODE_W / 2, y - NODE_H / 2
    label = f"{node.get('name', ref)}/v{node.get('version', '?')}"
    tip = f"{ref}\ncreated {node.get('created', '?')}"
    aliases = [str(a) for a in node.get("aliases") or []]
    if aliases:
        tip += "\naliases: " + ", ".join(aliases)
    stroke = f'stroke="{col}" stroke-width="{3.5 if focus else 1.5}"'
    out = [
        f'<g class="llmops-node" data-ref="{_x(ref)}" data-kind="{_x(kind)}" data-focus="{str(focus).lower()}">',
        f"<title>{_x(tip)}</title>",
        f'<rect x="{left:.1f}" y="{top:.1f}" width="{NODE_W}" height="{NODE_H}" rx="6" fill="#ffffff" {stroke}/>',
        f'<rect x="{left:.1f}" y="{top:.1f}" width="7" height="{NODE_H}" rx="3" fill="{col}"/>',
        f'<text x="{left + 14:.1f}" y="{top + 15:.1f}" font-size="10" fill="{col}" font-weight="600">'
        f"{_x(kind)}{' · focus' if focus else ''}</text>",
        f'<text x="{left + 14:.1f}" y="{top + 33:.1f}" font-size="12.5" fill="#111827" font-weight="600">'
        f"{_x(_cut(label, LABEL_CHARS))}</text>",
    ]
    bx = left + 14
    for i, alias in enumerate(aliases):
        text = _cut(alias, 14)
        w = 6.2 * len(text) + 10
        if bx + w > left + NODE_W - 6:
            out.append(
                f'<text x="{bx:.1f}" y="{top + 52:.1f}" font-size="10" fill="#4b5563">+{len(aliases) - i}</text>'
            )
            break
        tint = "#9ca3af" if alias == "latest" else col  # automatic: quieter than the aliases people set
        out.append(
            f'<g class="llmops-alias"><rect x="{bx:.1f}" y="{top + 41:.1f}" width="{w:.1f}" height="15" rx="7.5" '
            f'fill="{tint}" fill-opacity="0.16" stroke="{tint}" stroke-width="0.8"/>'
            f'<text x="{bx + 5:.1f}" y="{top + 52:.1f}" font-size="10" fill="#1f2937">{_x(text)}</text></g>'
        )
        bx += w + 4
    out.append("</g>")
    return "".join(out)


def render_svg(data: Mapping[str, Any]) -> str:
    """The graph (``store.graph.graph``'s JSON) as one standalone SVG document."""
    nodes, edges = _check(data)
    placed = layout(data)
    focus = data.get("focus")
    present = {str(n.get("kind", "")) for n in nodes}
    kinds = [k for k in KIND_COLOURS if k in present] + sorted(present - set(KIND_COLOURS))
    width = max(placed["width"], sum(_legend_width(k) for k in kinds)) + 2 * MARGIN
    height = placed["height"] + 2 * MARGIN + LEGEND_H
    uid = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:10]
    arrow = f"llmops-arrow-{uid}"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" role="img" aria-label="{_x(f"lineage of {focus}")}" style="{FONT}">',
        f"<title>{_x(f'lineage of {focus}: {len(nodes)} versions, {len(edges)} edges')}</title>",
        f'<defs><marker id="{arrow}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#6b7280"/></marker></defs>',
        f'<rect width="{width:.0f}" height="{height:.0f}" fill="#ffffff"/>',
    ]
    lx = MARGIN
    for kind in kinds:
        out.append(
            f'<rect x="{lx:.1f}" y="{MARGIN - 2}" width="12" height="12" rx="2" fill="{colour(kind)}"/>'
            f'<text x="{lx + 16:.1f}" y="{MARGIN + 8}" font-size="11" fill="#374151">{_x(kind)}</text>'
        )
        lx += _legend_width(kind)
    out.append(f'<g transform="translate({MARGIN},{MARGIN + LEGEND_H})">')
    relations: dict[tuple[str, str], list[str]] = {}
    for e in edges:
        relations.setdefault((e["src"], e["dst"]), []).append(str(e.get("relation", "")))
    for (src, dst), names in sorted(relations.items()):
        (sx, sy), (tx, ty) = placed["nodes"][src], placed["nodes"][dst]
        points = placed["edges"].get((src, dst)) or [(sx, sy), (tx, ty)]
        forward = tx >= sx
        start = (sx + NODE_W / 2, sy) if forward else (sx - NODE_W / 2, sy)
        end = (tx - NODE_W / 2, ty) if forward else (tx + NODE_W / 2, ty)
        path = [start, *points[1:-1], end]
        mx, my = path[len(path) // 2 - 1] if len(path) > 2 else ((start[0] + end[0]) / 2, (start[1] + end[1]) / 2)
        label = ", ".join(sorted(set(names)))
        out.append(
            f'<g class="llmops-edge" data-src="{_x(src)}" data-dst="{_x(dst)}" data-relation="{_x(label)}">'
            f'<path d="{_curve(path)}" fill="none" stroke="#9ca3af" stroke-width="1.4" marker-end="url(#{arrow})"/>'
            f'<text x="{mx:.1f}" y="{my - 4:.1f}" font-size="10" fill="#4b5563" text-anchor="middle">'
            f"{_x(_cut(label, 24))}</text></g>"
        )
    for node in nodes:
        x, y = placed["nodes"][node["ref"]]
        out.append(_node_svg(node, x, y, node["ref"] == focus))
    out.append("</g></svg>")
    return "".join(out)


class LineageGraph:
    """A lineage graph that displays itself as a static SVG; ``.data`` is the JSON it was drawn from."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        _check(data)
        self.data = data
        self._svg: str | None = None

    @property
    def focus(self) -> str:
        return str(self.data.get("focus"))

    @property
    def nodes(self) -> list[Mapping[str, Any]]:
        return list(self.data["nodes"])

    @property
    def edges(self) -> list[Mapping[str, Any]]:
        return list(self.data["edges"])

    @property
    def svg(self) -> str:
        if self._svg is None:
            self._svg = render_svg(self.data)
        return self._svg

    def save(self, path: str | Path) -> Path:
        """Write the SVG to ``path`` (for a report or a README)."""
        target = Path(path)
        target.write_text(self.svg, encoding="utf-8")
        return target

    def __repr__(self) -> str:
        lines = [f"lineage of {self.focus}: {len(self.nodes)} versions, {len(self.edges)} edges"]
        lines += [f"  {e['src']} ─{e['relation']}→ {e['dst']}" for e in self.edges[:40]]
        if len(self.edges) > 40:
            lines.append(f"  … {len(self.edges) - 40} more edges")
        if self.data.get("truncated"):
            lines.append("  (cut at the depth or size limit)")
        return "\n".join(lines)

    def _repr_mimebundle_(self, include=None, exclude=None):
        return {"image/svg+xml": self.svg, "text/plain": repr(self)}, {"llmops": {"lineage_of": self.focus}}


def lineage_graph(ref: Any, *, depth: int | None = None, workspace: Any = None) -> LineageGraph:
    """The whole upstream and downstream lineage of ``ref``, drawn as a graph (an SVG in a notebook).

    ``depth`` bounds the levels drawn each way (default: up to 50); ``.data`` holds the nodes
    and edges as JSON, ``.save("lineage.svg")`` writes the picture.
    """
    from ..context.workspaces import current
    from ..store.graph import graph

    ws = workspace or current()
    return LineageGraph(graph(ws, ref, depth))
