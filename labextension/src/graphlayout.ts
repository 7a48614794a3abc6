/**
 * The lineage graph's geometry, apart from the DOM (so it is tested in plain node):
 * the layout (dagre, left to right: what a version was made from on its left, what
 * was made from it on its right, as the notebook's SVG draws it), pan and zoom as
 * one transform, and the kind colours, which `llmops_magics/display/lineage_svg.py`
 * holds too (a Python test keeps the two equal).
 */
import dagre from '@dagrejs/dagre';

import { ILineageGraph, IGraphNode } from './tokens';

export const KIND_COLOURS: Record<string, string> = {
  prompt: '#1f77b4',
  dataset: '#2ca02c',
  model: '#9467bd',
  adapter: '#ff7f0e',
  eval: '#d62728',
  deployment: '#17becf',
  selection: '#8c564b',
  abtest: '#e377c2',
  monitor: '#bcbd22',
  'pii-scan': '#7f7f7f',
  fairness: '#393b79',
  pipeline: '#637939',
  card: '#843c39'
};
export const OTHER_COLOUR = '#6b7280';

export const NODE_W = 200;
export const NODE_H = 62;
/** What fits on a node at 12.5px; the full reference is in the node's tooltip. */
export const LABEL_CHARS = 26;

export function kindColour(kind: string): string {
  return Object.prototype.hasOwnProperty.call(KIND_COLOURS, kind) ? KIND_COLOURS[kind] : OTHER_COLOUR;
}

export function cut(text: string, limit: number): string {
  return text.length <= limit ? text : `${text.slice(0, limit - 1)}…`;
}

export interface IPoint {
  x: number;
  y: number;
}

export interface IPlacedNode {
  node: IGraphNode;
  /** The centre. */
  x: number;
  y: number;
}

export interface IPlacedEdge {
  src: string;
  dst: string;
  /** Every relation stored between this pair, sorted: one path carries them all. */
  relations: string[];
  points: IPoint[];
}

export interface IPlacement {
  width: number;
  height: number;
  nodes: Map<string, IPlacedNode>;
  edges: IPlacedEdge[];
}

/** Lay `graph` out left to right with dagre; nodes keep the server's order. */
export function layoutGraph(graph: ILineageGraph): IPlacement {
  const g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: 'LR', nodesep: 24, ranksep: 90, marginx: 16, marginy: 16 });
  g.setDefaultEdgeLabel(() => ({}));
  for (const node of graph.nodes) {
    g.setNode(node.ref, { width: NODE_W, height: NODE_H });
  }
  const pairs = new Map<string, IPlacedEdge>();
  for (const edge of graph.edges) {
    if (edge.src === edge.dst || !g.hasNode(edge.src) || !g.hasNode(edge.dst)) {
      continue;
    }
    const key = JSON.stringify([edge.src, edge.dst]);
    const pair = pairs.get(key);
    if (pair) {
      pair.relations = [...new Set([...pair.relations, edge.relation])].sort();
    } else {
      pairs.set(key, { src: edge.src, dst: edge.dst, relations: [edge.relation], points: [] });
      g.setEdge(edge.src, edge.dst);
    }
  }
  dagre.layout(g);
  const nodes = new Map<string, IPlacedNode>();
  for (const node of graph.nodes) {
    const placed = g.node(node.ref);
    nodes.set(node.ref, { node, x: placed.x ?? 0, y: placed.y ?? 0 });
  }
  const edges = [...pairs.values()].map(pair => ({
    ...pair,
    points: (g.edge(pair.src, pair.dst).points ?? []).map((p: IPoint) => ({ x: p.x, y: p.y }))
  }));
  const label = g.graph();
  return { width: label.width ?? 0, height: label.height ?? 0, nodes, edges };
}

/** A smooth SVG path through `points`, leaving and entering each point horizontally. */
export function curve(points: IPoint[]): string {
  if (!points.length) {
    return '';
  }
  const parts = [`M${points[0].x.toFixed(1)},${points[0].y.toFixed(1)}`];
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1];
    const b = points[i];
    const dx = (b.x - a.x) / 2;
    parts.push(
      `C${(a.x + dx).toFixed(1)},${a.y.toFixed(1)} ${(b.x - dx).toFixed(1)},${b.y.toFixed(1)} ${b.x.toFixed(1)},${b.y.toFixed(1)}`
    );
  }
  return parts.join(' ');
}

/** Pan (`x`, `y`, screen pixels) and zoom (`k`): a point p of the graph is drawn at k·p + (x, y). */
export interface ITransform {
  x: number;
  y: number;
  k: number;
}

export const MIN_ZOOM = 0.1;
export const MAX_ZOOM = 4;

/** Zoom by `factor` keeping the graph point under the screen point (`px`, `py`) where it is. */
export function zoomAt(t: ITransform, factor: number, px: number, py: number): ITransform {
  const k = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, t.k * factor));
  const gx = (px - t.x) / t.k;
  const gy = (py - t.y) / t.k;
  return { k, x: px - gx * k, y: py - gy * k };
}

/** The transform that shows a `width`×`height` graph whole and centred in a `viewW`×`viewH` view (never enlarged). */
export function fitTransform(width: number, height: number, viewW: number, viewH: number): ITransform {
  if (width <= 0 || height <= 0 || viewW <= 0 || viewH <= 0) {
    return { x: 0, y: 0, k: 1 };
  }
  const k = Math.max(MIN_ZOOM, Math.min(1, viewW / width, viewH / height));
  return { k, x: (viewW - width * k) / 2, y: (viewH - height * k) / 2 };
}

export function transformAttr(t: ITransform): string {
  return `translate(${t.x.toFixed(2)},${t.y.toFixed(2)}) scale(${t.k.toFixed(4)})`;
}
