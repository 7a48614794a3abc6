/**
 * The lineage graph panel: a main-area widget that draws the whole upstream and
 * downstream graph of one version (laid out by dagre in `graphlayout.ts`), kinds as
 * colours, aliases as badges, the focus outlined. Drag to pan, wheel to zoom, click
 * a node to open it in the sidebar's detail view. Every name, alias and relation is
 * set as text (`textContent`, attributes), never parsed as markup. Elements the UI
 * tests wait on carry `data-test-id`.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import {
  curve,
  cut,
  fitTransform,
  IPlacement,
  ITransform,
  kindColour,
  KIND_COLOURS,
  LABEL_CHARS,
  layoutGraph,
  NODE_H,
  NODE_W,
  transformAttr,
  zoomAt
} from './graphlayout';
import { parseRef, SidebarModel } from './model';
import { ILineageGraph } from './tokens';

export const GRAPH_ID = 'llmops-lineage-graph';
const SVG_NS = 'http://www.w3.org/2000/svg';

/** Where the panel gets its graph (`RegistryClient.graph` over HTTP). */
export interface IGraphSource {
  graph(kind: string, name: string, version: number): Promise<ILineageGraph>;
}

function svg(tag: string, attrs: Record<string, string | number> = {}, text?: string): SVGElement {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    node.setAttribute(key, String(value));
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

export class LineageGraphPanel extends Widget {
  constructor(
    private readonly source: IGraphSource,
    private readonly open: (ref: string) => void
  ) {
    super();
    this.id = GRAPH_ID;
    this.addClass('jp-LLMOps-graph');
    this.title.label = 'Lineage';
    this.title.closable = true;
    this.node.setAttribute('data-test-id', 'llmops-graph');
    this.node.setAttribute('data-state', 'empty');

    this._heading = document.createElement('span');
    this._heading.className = 'jp-LLMOps-graphTitle';
    this._note = document.createElement('span');
    this._note.className = 'jp-LLMOps-graphNote';
    this._note.setAttribute('data-test-id', 'llmops-graph-note');
    this._legend = document.createElement('span');
    this._legend.className = 'jp-LLMOps-graphLegend';
    const bar = document.createElement('div');
    bar.className = 'jp-LLMOps-graphBar';
    bar.append(
      this._heading,
      this._button('Fit', 'llmops-graph-fit', () => this.fit()),
      this._button('+', 'llmops-graph-zoom-in', () => this._zoomCentre(1.25)),
      this._button('−', 'llmops-graph-zoom-out', () => this._zoomCentre(0.8)),
      this._legend,
      this._note
    );
    this._canvas = svg('svg', { class: 'jp-LLMOps-graphCanvas', 'data-test-id': 'llmops-graph-canvas' }) as SVGSVGElement;
    const defs = svg('defs');
    const marker = svg('marker', {
      id: 'jp-LLMOps-arrow',
      viewBox: '0 0 10 10',
      refX: 10,
      refY: 5,
      markerWidth: 7,
      markerHeight: 7,
      orient: 'auto-start-reverse'
    });
    marker.appendChild(svg('path', { d: 'M0,0 L10,5 L0,10 z', class: 'jp-LLMOps-graphArrow' }));
    defs.appendChild(marker);
    this._viewport = svg('g', { 'data-test-id': 'llmops-graph-viewport' }) as SVGGElement;
    this._canvas.append(defs, this._viewport);
    this.node.append(bar, this._canvas);

    this._canvas.addEventListener('pointerdown', this._onDown);
    this._canvas.addEventListener('wheel', this._onWheel, { passive: false });
    this._canvas.addEventListener('click', this._onClickCapture, true);
  }

  /** The reference drawn now. */
  get focus(): string | null {
    return this._graph?.focus ?? null;
  }

  get transform(): ITransform {
    return { ...this._transform };
  }

  /** Fetch and draw the graph of `ref` (`kind://name/3`). */
  async load(ref: string): Promise<void> {
    const target = parseRef(ref);
    if (!target || target.version === null) {
      this._fail(`Not a version reference: ${ref}`);
      return;
    }
    const request = ++this._request;
    this.title.label = `Lineage: ${target.name}/v${target.version}`;
    this.title.caption = `Lineage of ${ref}`;
    this.node.setAttribute('data-state', 'loading');
    this._heading.textContent = `Lineage of ${ref}`;
    this._note.textContent = 'Loading…';
    try {
      const graph = await this.source.graph(target.kind, target.name, target.version);
      if (request === this._request && !this.isDisposed) {
        this._draw(graph);
      }
    } catch (error) {
      if (request === this._request && !this.isDisposed) {
        this._fail(`Cannot read the lineage of ${ref}: ${(error as Error)?.message ?? error}`);
      }
    }
  }

  /** Show the whole graph, centred. */
  fit(): void {
    if (!this._placement) {
      return;
    }
    const box = this._canvas.getBoundingClientRect();
    this._setTransform(fitTransform(this._placement.width, this._placement.height, box.width, box.height));
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this._endDrag();
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    if (this._placement && !this._moved) {
      this.fit();
    }
  }

  protected onResize(msg: Widget.ResizeMessage): void {
    super.onResize(msg);
    if (this._placement && !this._moved) {
      this.fit();
    }
  }

  // ---------------------------------------------------------------- drawing

  private _fail(message: string): void {
    this.node.setAttribute('data-state', 'error');
    this._note.textContent = message;
  }

  private _draw(graph: ILineageGraph): void {
    this._graph = graph;
    this._placement = layoutGraph(graph);
    this._moved = false;
    this.node.setAttribute('data-focus', graph.focus);
    this._heading.textContent = `Lineage of ${graph.focus}`;
    this._note.textContent =
      `${graph.nodes.length} versions, ${graph.edges.length} edges` +
      (graph.truncated ? ` (cut at depth ${graph.depth} or the size limit)` : '');
    this._legend.replaceChildren();
    const present = new Set(graph.nodes.map(n => n.kind));
    for (const kind of [...Object.keys(KIND_COLOURS), ...[...present].filter(k => !(k in KIND_COLOURS)).sort()]) {
      if (present.has(kind)) {
        const chip = document.createElement('span');
        chip.className = 'jp-LLMOps-graphKind';
        chip.style.setProperty('--llmops-kind', kindColour(kind));
        chip.textContent = kind;
        this._legend.appendChild(chip);
      }
    }
    const edges = svg('g', { class: 'jp-LLMOps-graphEdges' });
    for (const edge of this._placement.edges) {
      const label = edge.relations.join(', ');
      const group = svg('g', {
        class: 'jp-LLMOps-graphEdge',
        'data-test-id': 'llmops-graph-edge',
        'data-src': edge.src,
        'data-dst': edge.dst,
        'data-relation': label
      });
      group.appendChild(svg('path', { d: curve(edge.points), 'marker-end': 'url(#jp-LLMOps-arrow)' }));
      const mid = edge.points[Math.floor(edge.points.length / 2)] ?? { x: 0, y: 0 };
      group.appendChild(svg('text', { x: mid.x, y: mid.y - 4, 'text-anchor': 'middle' }, cut(label, 24)));
      edges.appendChild(group);
    }
    const nodes = svg('g', { class: 'jp-LLMOps-graphNodes' });
    this._placement.nodes.forEach(placed => nodes.appendChild(this._node(placed.node, placed.x, placed.y, graph.focus)));
    this._viewport.replaceChildren(edges, nodes);
    this.node.setAttribute('data-state', 'ready');
    this.fit();
  }

  private _node(node: ILineageGraph['nodes'][number], x: number, y: number, focus: string): SVGElement {
    const colour = kindColour(node.kind);
    const isFocus = node.ref === focus;
    const left = x - NODE_W / 2;
    const top = y - NODE_H / 2;
    const group = svg('g', {
      class: `jp-LLMOps-graphNode${isFocus ? ' jp-mod-focus' : ''}`,
      'data-test-id': 'llmops-graph-node',
      'data-ref': node.ref,
      'data-kind': node.kind,
      'data-focus': String(isFocus),
      tabindex: 0,
      role: 'button',
      'aria-label': `Open ${node.ref}`
    });
    const tip = [node.ref, `created ${node.created}`, node.aliases.length ? `aliases: ${node.aliases.join(', ')}` : '']
      .filter(Boolean)
      .join('\n');
    group.appendChild(svg('title', {}, tip));
    group.appendChild(
      svg('rect', {
        class: 'jp-LLMOps-graphBox',
        x: left,
        y: top,
        width: NODE_W,
        height: NODE_H,
        rx: 6,
        stroke: colour,
        'stroke-width': isFocus ? 3.5 : 1.5
      })
    );
    group.appendChild(svg('rect', { x: left, y: top, width: 7, height: NODE_H, rx: 3, fill: colour }));
    group.appendChild(
      svg('text', { x: left + 14, y: top + 15, class: 'jp-LLMOps-graphKindLabel', fill: colour }, isFocus ? `${node.kind} · focus` : node.kind)
    );
    group.appendChild(
      svg('text', { x: left + 14, y: top + 33, class: 'jp-LLMOps-graphLabel' }, cut(`${node.name}/v${node.version}`, LABEL_CHARS))
    );
    let bx = left + 14;
    node.aliases.forEach((alias, i) => {
      if (bx < 0) {
        return;
      }
      const text = cut(alias, 14);
      const width = 6.2 * text.length + 10;
      if (bx + width > left + NODE_W - 6) {
        group.appendChild(svg('text', { x: bx, y: top + 52, class: 'jp-LLMOps-graphMore' }, `+${node.aliases.length - i}`));
        bx = -1;
        return;
      }
      const tint = alias === 'latest' ? '#9ca3af' : colour;
      const badge = svg('g', { class: 'jp-LLMOps-graphAlias', 'data-test-id': 'llmops-graph-alias' });
      badge.appendChild(
        svg('rect', { x: bx, y: top + 41, width, height: 15, rx: 7.5, fill: tint, 'fill-opacity': 0.16, stroke: tint, 'stroke-width': 0.8 })
      );
      badge.appendChild(svg('text', { x: bx + 5, y: top + 52 }, text));
      group.appendChild(badge);
      bx += width + 4;
    });
    group.addEventListener('click', () => this.open(node.ref));
    group.addEventListener('keydown', event => {
      if ((event as KeyboardEvent).key === 'Enter') {
        this.open(node.ref);
      }
    });
    return group;
  }

  // ---------------------------------------------------------------- pan and zoom

  private _setTransform(t: ITransform): void {
    this._transform = t;
    this._viewport.setAttribute('transform', transformAttr(t));
  }

  private _zoomCentre(factor: number): void {
    const box = this._canvas.getBoundingClientRect();
    this._moved = true;
    this._setTransform(zoomAt(this._transform, factor, box.width / 2, box.height / 2));
  }

  private _onWheel = (event: WheelEvent): void => {
    event.preventDefault();
    const box = this._canvas.getBoundingClientRect();
    this._moved = true;
    const factor = Math.exp(-event.deltaY * (event.deltaMode === 1 ? 0.05 : 0.0015));
    this._setTransform(zoomAt(this._transform, factor, event.clientX - box.left, event.clientY - box.top));
  };

  private _onDown = (event: PointerEvent): void => {
    if (event.button !== 0) {
      return;
    }
    this._drag = { x: event.clientX, y: event.clientY, start: { ...this._transform }, moved: false };
    window.addEventListener('pointermove', this._onMove);
    window.addEventListener('pointerup', this._onUp);
  };

  private _onMove = (event: PointerEvent): void => {
    const drag = this._drag;
    if (!drag) {
      return;
    }
    const dx = event.clientX - drag.x;
    const dy = event.clientY - drag.y;
    if (!drag.moved && Math.hypot(dx, dy) < 4) {
      return; // a click with a trembling hand is still a click
    }
    drag.moved = true;
    this._moved = true;
    this.node.classList.add('jp-mod-panning');
    this._setTransform({ k: drag.start.k, x: drag.start.x + dx, y: drag.start.y + dy });
  };

  private _onUp = (): void => {
    this._swallowClick = this._drag?.moved ?? false;
    this._endDrag();
  };

  /** A drag that ends over a node must not open it. */
  private _onClickCapture = (event: MouseEvent): void => {
    if (this._swallowClick) {
      event.stopPropagation();
      this._swallowClick = false;
    }
  };

  private _endDrag(): void {
    this._drag = null;
    this.node.classList.remove('jp-mod-panning');
    window.removeEventListener('pointermove', this._onMove);
    window.removeEventListener('pointerup', this._onUp);
  }

  private _button(label: string, testId: string, onClick: () => void): HTMLButtonElement {
    const node = document.createElement('button');
    node.type = 'button';
    node.className = 'jp-LLMOps-button';
    node.setAttribute('data-test-id', testId);
    node.textContent = label;
    node.addEventListener('click', onClick);
    return node;
  }

  private _canvas: SVGSVGElement;
  private _viewport: SVGGElement;
  private _heading: HTMLElement;
  private _note: HTMLElement;
  private _legend: HTMLElement;
  private _graph: ILineageGraph | null = null;
  private _placement: IPlacement | null = null;
  private _transform: ITransform = { x: 0, y: 0, k: 1 };
  private _moved = false;
  private _drag: { x: number; y: number; start: ITransform; moved: boolean } | null = null;
  private _swallowClick = false;
  private _request = 0;
}

/**
 * `open(ref)` for the sidebar: one lineage panel in the main area, made on first use,
 * brought to the front and redrawn for each reference.
 */
export function graphOpener(
  shell: JupyterFrontEnd.IShell,
  source: IGraphSource,
  openInSidebar: (ref: string) => void,
  onDrawn?: (panel: LineageGraphPanel) => void
): (ref: string) => Promise<void> {
  let panel: LineageGraphPanel | null = null;
  return async (ref: string) => {
    if (!panel || panel.isDisposed) {
      panel = new LineageGraphPanel(source, openInSidebar);
      shell.add(panel, 'main');
    }
    shell.activateById(panel.id);
    const shown = panel;
    await shown.load(ref);
    onDrawn?.(shown); // the layout restorer records which version is drawn
  };
}

/** Open `ref` (`kind://name/3`) in the sidebar's detail view, that exact version. */
export async function selectInSidebar(model: SidebarModel, ref: string): Promise<void> {
  const target = parseRef(ref);
  if (!target) {
    return;
  }
  await model.select(target.kind, target.name);
  if (target.version !== null) {
    await model.selectVersion(target.version);
  }
}
