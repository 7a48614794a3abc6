/**
 * The sidebar's Traces section and the detail view's Charts section.
 *
 * Traces: the latest traces in the workspace's `traces.db` (`GET /llmops/traces`,
 * llmops_magics/tracing/read.py), filterable by prompt; a click opens one trace as a
 * span tree with a timeline bar per span (`GET /llmops/traces/ID`). Charts: the
 * pictures of the selected version (`GET /llmops/charts/KIND/NAME/VERSION`), shown as
 * `<img>` with a `data:` URL, so nothing in an SVG can run. Every name and prompt
 * reference is set as text, never parsed as markup. Elements the UI tests wait on
 * carry `data-test-id`.
 */
import { ISignal, Signal } from '@lumino/signaling';

export interface ITraceSummary {
  trace_id: string;
  name: string;
  /** Milliseconds since the epoch. */
  start_ms: number;
  duration_ms: number;
  spans: number;
  input_tokens: number;
  output_tokens: number;
  errors: number;
  status: 'ok' | 'error';
  prompts: string[];
}

export interface ITraceSpan {
  span_id: string;
  parent_id: string | null;
  depth: number;
  name: string;
  kind: string;
  status: string;
  error_type: string | null;
  offset_ms: number;
  duration_ms: number;
  input_tokens: number | null;
  output_tokens: number | null;
  model: string | null;
  prompt_ref: string | null;
  artifact_ref: string | null;
  cost: number | null;
  content: { label: string; text: string }[];
}

export interface ITraceTree {
  trace_id: string;
  name: string;
  start_ms: number;
  duration_ms: number;
  spans: number;
  truncated: boolean;
  input_tokens: number;
  output_tokens: number;
  cost: number | null;
  items: ITraceSpan[];
}

export interface IChart {
  title: string;
  svg: string;
  width: number;
  height: number;
}

/** What the section needs from the server (`RegistryClient` over HTTP; unit tests in memory). */
export interface ITracesAPI {
  traces(query: { prompt?: string; since?: string; limit?: number }): Promise<{ items: ITraceSummary[] }>;
  trace(id: string): Promise<ITraceTree>;
}

export interface IChartsAPI {
  charts(kind: string, name: string, version: number): Promise<{ ref: string; charts: IChart[] }>;
}

/** How often the list refetches while the section is open and visible. */
export const TRACES_INTERVAL = 10000;

export class TracesModel {
  constructor(private readonly api: ITracesAPI) {}

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  items: ITraceSummary[] = [];
  open: ITraceTree | null = null;
  prompt = '';
  expanded = true;
  loading = false;
  error: string | null = null;

  async refresh(): Promise<void> {
    const generation = ++this._generation;
    this.loading = true;
    try {
      const { items } = await this.api.traces({ prompt: this.prompt || undefined, limit: 50 });
      if (generation === this._generation) {
        this.items = items;
        this.error = null;
      }
    } catch (error) {
      if (generation === this._generation) {
        this.error = error instanceof Error ? error.message : String(error);
      }
    } finally {
      if (generation === this._generation) {
        this.loading = false;
        this._changed.emit();
      }
    }
  }

  async setPrompt(text: string): Promise<void> {
    this.prompt = text.trim();
    await this.refresh();
  }

  async select(id: string): Promise<void> {
    try {
      this.open = await this.api.trace(id);
      this.error = null;
    } catch (error) {
      this.error = error instanceof Error ? error.message : String(error);
    }
    this._changed.emit();
  }

  close(): void {
    this.open = null;
    this._changed.emit();
  }

  toggle(): void {
    this.expanded = !this.expanded;
    this._changed.emit();
    if (this.expanded) {
      void this.refresh();
    }
  }

  private _generation = 0;
  private _changed = new Signal<this, void>(this);
}

type Child = Node | string | null | undefined | false;

function el(tag: string, attrs: Record<string, string> = {}, ...children: Child[]): HTMLElement {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) {
      node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    }
  }
  return node;
}

function ms(value: number): string {
  return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(1)} ms`;
}

function tokens(input: number | null, output: number | null): string {
  return input === null && output === null ? '' : `${input ?? 0}→${output ?? 0}`;
}

/** Where a span's timeline bar sits, in percent of the trace's duration (at least a sliver wide). */
export function barGeometry(span: { offset_ms: number; duration_ms: number }, total: number): { left: number; width: number } {
  const whole = Math.max(total, 1e-6);
  const left = Math.min(Math.max((span.offset_ms / whole) * 100, 0), 100);
  const width = Math.max(Math.min((span.duration_ms / whole) * 100, 100 - left), 0.5);
  return { left, width };
}

/** The Traces section: a list of traces, or one trace's span tree with a timeline. */
export class TracesSection {
  readonly node: HTMLElement;

  constructor(readonly model: TracesModel) {
    this.node = el('section', { class: 'jp-LLMOps-traces', 'data-test-id': 'llmops-traces' });
    model.changed.connect(() => this.render());
    this.render();
    // Nothing is fetched until the section is on screen; then every TRACES_INTERVAL while it stays there.
    this._timer = setInterval(() => {
      const shown = this.node.isConnected && this.node.offsetParent !== null;
      if (shown && model.expanded && !model.open && Date.now() - this._fetched >= TRACES_INTERVAL) {
        this._fetched = Date.now();
        void model.refresh();
      }
    }, 1000);
  }

  dispose(): void {
    clearInterval(this._timer);
  }

  render(): void {
    const model = this.model;
    const node = this.node;
    node.replaceChildren();
    const toggle = el(
      'button',
      { type: 'button', class: 'jp-LLMOps-button jp-LLMOps-groupToggle', 'data-test-id': 'llmops-traces-toggle', 'aria-expanded': String(model.expanded) },
      `${model.expanded ? '▾' : '▸'} Traces`,
      el('span', { class: 'jp-LLMOps-count', 'data-test-id': 'llmops-traces-count' }, String(model.items.length))
    );
    toggle.addEventListener('click', () => model.toggle());
    node.appendChild(toggle);
    if (!model.expanded) {
      return;
    }
    if (model.error) {
      node.appendChild(el('p', { class: 'jp-LLMOps-error', 'data-test-id': 'llmops-traces-error' }, model.error));
    }
    node.appendChild(model.open ? this._tree(model.open) : this._list());
  }

  private _list(): HTMLElement {
    const model = this.model;
    const wrap = el('div', { class: 'jp-LLMOps-traceList' });
    const filter = el('input', {
      type: 'search',
      class: 'jp-LLMOps-search jp-mod-styled',
      placeholder: 'Filter by prompt (qa, qa/3, qa@production)',
      'aria-label': 'Filter traces by prompt',
      'data-test-id': 'llmops-traces-filter'
    }) as HTMLInputElement;
    filter.value = model.prompt;
    filter.addEventListener('change', () => void model.setPrompt(filter.value));
    wrap.appendChild(filter);
    if (!model.items.length) {
      wrap.appendChild(
        el('p', { class: 'jp-LLMOps-note', 'data-test-id': 'llmops-traces-empty' }, model.loading ? 'Loading…' : 'No traces yet.')
      );
      return wrap;
    }
    const list = el('ul', { class: 'jp-LLMOps-items' });
    for (const t of model.items) {
      const when = new Date(t.start_ms).toISOString().slice(11, 19);
      const row = el(
        'li',
        {
          class: `jp-LLMOps-item jp-LLMOps-trace jp-LLMOps-trace-${t.status}`,
          'data-test-id': 'llmops-trace',
          'data-trace-id': t.trace_id,
          tabindex: '0',
          role: 'button',
          title: `${t.trace_id}: ${t.spans} span(s)${t.prompts.length ? `, ${t.prompts.join(', ')}` : ''}`
        },
        el('span', { class: 'jp-LLMOps-name' }, t.name),
        el('span', { class: 'jp-LLMOps-badge' }, `${when} · ${ms(t.duration_ms)}`),
        t.input_tokens || t.output_tokens ? el('span', { class: 'jp-LLMOps-badge' }, tokens(t.input_tokens, t.output_tokens)) : null,
        t.errors ? el('span', { class: 'jp-LLMOps-monitor-fail' }, `${t.errors} error(s)`) : null,
        t.prompts.length ? el('span', { class: 'jp-LLMOps-alias' }, t.prompts[0]) : null
      );
      const open = () => void model.select(t.trace_id);
      row.addEventListener('click', open);
      row.addEventListener('keydown', event => {
        if (event.key === 'Enter') {
          open();
        }
      });
      list.appendChild(row);
    }
    wrap.appendChild(list);
    return wrap;
  }

  private _tree(trace: ITraceTree): HTMLElement {
    const back = el('button', { type: 'button', class: 'jp-LLMOps-button', 'data-test-id': 'llmops-trace-back' }, '← All traces');
    back.addEventListener('click', () => this.model.close());
    const summary =
      `${trace.spans} span(s), ${ms(trace.duration_ms)}, tokens ${trace.input_tokens}→${trace.output_tokens}` +
      (trace.cost !== null ? `, $${trace.cost.toFixed(6)}` : '');
    const rows = trace.items.map(span => {
      const { left, width } = barGeometry(span, trace.duration_ms);
      const bar = el('div', {
        class: `jp-LLMOps-spanBar jp-LLMOps-spanBar-${span.status.toLowerCase()}`,
        'data-test-id': 'llmops-span-bar',
        style: `left:${left.toFixed(2)}%;width:${width.toFixed(2)}%`,
        title: `${ms(span.offset_ms)} + ${ms(span.duration_ms)}`
      });
      const facts = [ms(span.duration_ms), tokens(span.input_tokens, span.output_tokens), span.prompt_ref ?? '']
        .filter(Boolean)
        .join(' · ');
      return el(
        'li',
        { class: 'jp-LLMOps-span', 'data-test-id': 'llmops-span', 'data-depth': String(span.depth), 'data-status': span.status },
        el(
          'div',
          { class: 'jp-LLMOps-spanLabel', style: `padding-left:${Math.min(span.depth, 12) * 10}px` },
          el('span', { class: 'jp-LLMOps-name', 'data-test-id': 'llmops-span-name' }, span.name),
          span.status === 'ERROR' ? el('span', { class: 'jp-LLMOps-monitor-fail' }, span.error_type ?? 'error') : null,
          el('span', { class: 'jp-LLMOps-note' }, ` ${facts}`)
        ),
        el('div', { class: 'jp-LLMOps-spanTrack' }, bar),
        ...span.content.map(c => el('details', {}, el('summary', {}, c.label), el('pre', { class: 'jp-LLMOps-code' }, c.text)))
      );
    });
    return el(
      'div',
      { class: 'jp-LLMOps-traceTree', 'data-test-id': 'llmops-trace-tree', 'data-trace-id': trace.trace_id },
      back,
      el('h4', { class: 'jp-LLMOps-sectionTitle', 'data-test-id': 'llmops-trace-title' }, trace.name),
      el('p', { class: 'jp-LLMOps-note' }, summary),
      el('ul', { class: 'jp-LLMOps-spans' }, ...rows),
      trace.truncated ? el('p', { class: 'jp-LLMOps-note' }, `Showing ${trace.items.length} of ${trace.spans} spans.`) : null
    );
  }

  private _fetched = 0;
  private _timer: ReturnType<typeof setInterval>;
}

/** SVG text as an image URL: shown by `<img>`, in which nothing runs. */
export function svgDataUrl(svg: string): string {
  return `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
}

const chartCache = new Map<string, Promise<IChart[]>>();
const CHART_CACHE_SIZE = 32;

/**
 * A "Charts" section for one version that fills itself when the pictures arrive (a version's
 * pictures do not change, so they are fetched once per version) and stays hidden when there are none.
 */
export function chartsSection(api: IChartsAPI, kind: string, name: string, version: number): HTMLElement {
  const node = el(
    'section',
    { class: 'jp-LLMOps-section', 'data-test-id': 'llmops-charts' },
    el('h4', { class: 'jp-LLMOps-sectionTitle' }, 'Charts')
  );
  node.hidden = true;
  const key = `${kind}://${name}/${version}`;
  let pending = chartCache.get(key);
  if (!pending) {
    pending = api.charts(kind, name, version).then(r => r.charts);
    pending.catch(() => chartCache.delete(key));
    chartCache.set(key, pending);
    if (chartCache.size > CHART_CACHE_SIZE) {
      chartCache.delete(chartCache.keys().next().value as string);
    }
  }
  void pending.then(
    charts => {
      for (const chart of charts) {
        node.appendChild(
          el('img', {
            class: 'jp-LLMOps-chart',
            'data-test-id': 'llmops-chart',
            alt: chart.title,
            title: chart.title,
            src: svgDataUrl(chart.svg)
          })
        );
      }
      node.hidden = charts.length === 0;
    },
    () => undefined
  );
  return node;
}
