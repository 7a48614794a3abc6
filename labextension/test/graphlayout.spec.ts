import { describe, expect, it } from 'vitest';

import {
  curve,
  cut,
  fitTransform,
  kindColour,
  KIND_COLOURS,
  layoutGraph,
  NODE_H,
  NODE_W,
  OTHER_COLOUR,
  zoomAt
} from '../src/graphlayout';
import { ILineageGraph, KINDS } from '../src/tokens';

function node(ref: string, level = 0) {
  const [kind, rest] = ref.split('://');
  const [name, version] = rest.split('/');
  return { ref, kind, name, version: Number(version), aliases: [], created: '2026-01-01T00:00:00+00:00', level };
}

/** data ─┬─► adapter ─► eval, and data ─► eval directly; model ─► adapter twice (two relations). */
const GRAPH: ILineageGraph = {
  focus: 'adapter://a/1',
  nodes: [node('dataset://d/1', -1), node('model://m/1', -1), node('adapter://a/1'), node('eval://e/1', 1)],
  edges: [
    { src: 'dataset://d/1', dst: 'adapter://a/1', relation: 'data' },
    { src: 'model://m/1', dst: 'adapter://a/1', relation: 'base' },
    { src: 'model://m/1', dst: 'adapter://a/1', relation: 'init' },
    { src: 'adapter://a/1', dst: 'eval://e/1', relation: 'evaluated' },
    { src: 'dataset://d/1', dst: 'eval://e/1', relation: 'data' }
  ],
  depth: 50,
  truncated: false
};

describe('layoutGraph', () => {
  it('places every node once, upstream to the left of downstream', () => {
    const placed = layoutGraph(GRAPH);
    expect([...placed.nodes.keys()].sort()).toEqual(GRAPH.nodes.map(n => n.ref).sort());
    for (const e of GRAPH.edges) {
      expect(placed.nodes.get(e.src)!.x).toBeLessThan(placed.nodes.get(e.dst)!.x);
    }
  });

  it('keeps nodes apart', () => {
    const boxes = [...layoutGraph(GRAPH).nodes.values()];
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const apart =
          Math.abs(boxes[i].x - boxes[j].x) >= NODE_W || Math.abs(boxes[i].y - boxes[j].y) >= NODE_H;
        expect(apart).toBe(true);
      }
    }
  });

  it('draws one path per pair, carrying every relation between them', () => {
    const edges = layoutGraph(GRAPH).edges;
    expect(edges).toHaveLength(4);
    const model = edges.find(e => e.src === 'model://m/1')!;
    expect(model.relations).toEqual(['base', 'init']);
    expect(model.points.length).toBeGreaterThanOrEqual(2);
  });

  it('survives a cycle', () => {
    const cyclic: ILineageGraph = {
      ...GRAPH,
      edges: [...GRAPH.edges, { src: 'eval://e/1', dst: 'dataset://d/1', relation: 'feeds' }]
    };
    expect(layoutGraph(cyclic).nodes.size).toBe(4);
  });

  it('fits inside the size it reports', () => {
    const placed = layoutGraph(GRAPH);
    for (const p of placed.nodes.values()) {
      expect(p.x + NODE_W / 2).toBeLessThanOrEqual(placed.width);
      expect(p.y + NODE_H / 2).toBeLessThanOrEqual(placed.height);
    }
  });
});

describe('pan and zoom', () => {
  it('zooms around the pointer: the graph point under it stays there', () => {
    const t = { x: 30, y: -20, k: 0.8 };
    const next = zoomAt(t, 1.5, 200, 100);
    const before = { x: (200 - t.x) / t.k, y: (100 - t.y) / t.k };
    expect(next.k).toBeCloseTo(1.2);
    expect(before.x * next.k + next.x).toBeCloseTo(200);
    expect(before.y * next.k + next.y).toBeCloseTo(100);
  });

  it('clamps the zoom', () => {
    expect(zoomAt({ x: 0, y: 0, k: 1 }, 1000, 0, 0).k).toBe(4);
    expect(zoomAt({ x: 0, y: 0, k: 1 }, 0.0001, 0, 0).k).toBe(0.1);
  });

  it('fits a large graph whole and centres a small one without enlarging it', () => {
    const big = fitTransform(2000, 500, 1000, 800);
    expect(big.k).toBeCloseTo(0.5);
    expect(big.y).toBeCloseTo((800 - 250) / 2);
    const small = fitTransform(200, 100, 1000, 800);
    expect(small).toEqual({ k: 1, x: 400, y: 350 });
  });
});

describe('drawing helpers', () => {
  it('gives every kind its own colour and anything else a neutral one', () => {
    expect(Object.keys(KIND_COLOURS).sort()).toEqual([...KINDS].sort());
    expect(new Set(Object.values(KIND_COLOURS)).size).toBe(KINDS.length);
    expect(kindColour('constructor')).toBe(OTHER_COLOUR);
  });

  it('cuts long labels with an ellipsis', () => {
    expect(cut('abcdef', 4)).toBe('abc…');
    expect(cut('abc', 4)).toBe('abc');
  });

  it('draws a path through every point', () => {
    expect(curve([{ x: 0, y: 0 }, { x: 10, y: 4 }, { x: 20, y: 4 }])).toBe(
      'M0.0,0.0 C5.0,0.0 5.0,4.0 10.0,4.0 C15.0,4.0 15.0,4.0 20.0,4.0'
    );
  });
});
