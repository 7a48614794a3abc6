/**
 * The sidebar's state: artifact groups by kind (paged), the search, the selected
 * artifact with its version detail, lineage and prompt text, and the poll that
 * refetches only when the registry's change counter moved. No DOM here.
 */
import { ISignal, Signal } from '@lumino/signaling';

import {
  IArtifact,
  IAuditEvent,
  IDeployment,
  IEdge,
  ILineage,
  INameSummary,
  IPromptText,
  IRegistryAPI,
  IVersionDetail,
  Kind,
  KINDS
} from './tokens';

export const PAGE_SIZE = 50;

export interface IGroup {
  kind: Kind;
  total: number;
  items: INameSummary[];
  expanded: boolean;
  loading: boolean;
}

export interface ISelection {
  kind: Kind;
  name: string;
  artifact: IArtifact | null;
  version: IVersionDetail | null;
  lineage: ILineage | null;
  prompt: IPromptText | null;
  /** The version's audit events, newest first (null until loaded, or when the server has no audit route). */
  audit?: IAuditEvent[] | null;
  loading: boolean;
  error: string | null;
}

export type ListState = 'empty' | 'loading' | 'ready' | 'error';

/** What changed, so a view can redraw only that part. */
export type Change = 'list' | 'detail' | 'status';

export interface ITreeNode {
  ref: string;
  relation: string;
  children: ITreeNode[];
  /** True when this node was already shown higher up (a shared ancestor or a cycle). */
  repeated: boolean;
}

export interface IPollOptions {
  /** Milliseconds between polls while things are quiet. */
  interval: number;
  /** Longest wait after repeated errors (the interval doubles on each error). */
  maxInterval: number;
}

const DEFAULT_POLL: IPollOptions = { interval: 2000, maxInterval: 30000 };

/** How stale deployment liveness may get while the registry itself does not change. */
export const DEPLOYMENT_MAX_AGE = 10000;

export class SidebarModel {
  constructor(
    private readonly api: IRegistryAPI,
    options: Partial<IPollOptions> = {}
  ) {
    this._poll = { ...DEFAULT_POLL, ...options };
    for (const kind of KINDS) {
      this._groups.set(kind, {
        kind,
        total: 0,
        items: [],
        expanded: true,
        loading: false
      });
    }
  }

  get changed(): ISignal<this, Change> {
    return this._changed;
  }

  get search(): string {
    return this._search;
  }

  get state(): ListState {
    return this._state;
  }

  get error(): string | null {
    return this._error;
  }

  get total(): number {
    let sum = 0;
    this._groups.forEach(g => (sum += g.total));
    return sum;
  }

  /** Groups in the fixed kind order; empty kinds included (the view may hide them). */
  get groups(): IGroup[] {
    return KINDS.map(k => this._groups.get(k)!);
  }

  get selection(): ISelection | null {
    return this._selection;
  }

  get etag(): string | null {
    return this._etag;
  }

  /** Live status of recorded deployments by name (fetched while the deployments group shows). */
  get deployments(): ReadonlyMap<string, IDeployment> {
    return this._deployments;
  }

  /**
   * Refetch deployment liveness when the deployments group is shown and the last check is
   * older than `maxAge` ms: a service can die without any registry write.
   */
  async refreshDeployments(maxAge = 0): Promise<void> {
    const group = this._groups.get('deployment')!;
    if (!group.expanded || group.total === 0 || Date.now() - this._deploymentsAt < maxAge) {
      return;
    }
    this._deploymentsAt = Date.now();
    const { items } = await this.api.deployments();
    const next = new Map(items.map(d => [d.name, d]));
    const same =
      next.size === this._deployments.size &&
      items.every(d => this._deployments.get(d.name)?.state === d.state);
    this._deployments = next;
    if (!same) {
      this._changed.emit('list');
    }
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  /** Fetch every group's count and first page (or as many as were shown) for the current search. */
  async refresh(): Promise<void> {
    const generation = ++this._generation;
    if (this._state !== 'ready') {
      this._setState('loading');
    }
    const search = this._search || undefined;
    try {
      const head = await this.api.list({ search, limit: 0, offset: 0 });
      if (generation !== this._generation) {
        return;
      }
      const pages = await Promise.all(
        this.groups.map(g => {
          const count = head.counts[g.kind] ?? 0;
          if (!g.expanded || count === 0) {
            return Promise.resolve(null);
          }
          const shown = Math.max(PAGE_SIZE, g.items.length);
          return this.api.list({
            kind: g.kind,
            search,
            limit: Math.min(shown, 500),
            offset: 0
          });
        })
      );
      if (generation !== this._generation) {
        return;
      }
      this.groups.forEach((g, i) => {
        g.total = head.counts[g.kind] ?? 0;
        const page = pages[i];
        g.items = page ? page.items : g.total === 0 ? [] : g.items;
        g.loading = false;
      });
      this._etag = `"${head.changes}"`;
      this._error = null;
      this._deploymentsAt = 0;
      this._setState(this.total === 0 ? 'empty' : 'ready', 'list');
      void this.refreshDeployments().catch(() => undefined);
    } catch (error) {
      if (generation === this._generation) {
        this._error = messageOf(error);
        this._setState('error', 'list');
      }
      throw error;
    }
  }

  /** Filter names by a substring (case-insensitive) and refetch. */
  async setSearch(text: string): Promise<void> {
    const next = text.trim();
    if (next === this._search) {
      return;
    }
    this._search = next;
    this._groups.forEach(g => (g.items = g.items.slice(0, PAGE_SIZE)));
    await this.refresh();
  }

  /** Append the next page of one group. */
  async loadMore(kind: Kind): Promise<void> {
    const group = this._groups.get(kind)!;
    if (group.loading || group.items.length >= group.total) {
      return;
    }
    group.loading = true;
    this._changed.emit('list');
    const generation = this._generation;
    try {
      const page = await this.api.list({
        kind,
        search: this._search || undefined,
        limit: PAGE_SIZE,
        offset: group.items.length
      });
      if (generation === this._generation) {
        group.items = group.items.concat(page.items);
        group.total = page.total;
      }
    } finally {
      group.loading = false;
      this._changed.emit('list');
    }
  }

  /** Collapse or expand a group; expanding fetches its first page if needed. */
  async toggle(kind: Kind): Promise<void> {
    const group = this._groups.get(kind)!;
    group.expanded = !group.expanded;
    this._changed.emit('list');
    if (group.expanded && group.items.length === 0 && group.total > 0) {
      await this.loadMore(kind);
    }
  }

  /** Open the detail of one artifact name at its latest version. */
  async select(kind: Kind, name: string): Promise<void> {
    const selection: ISelection = {
      kind,
      name,
      artifact: null,
      version: null,
      lineage: null,
      prompt: null,
      loading: true,
      error: null
    };
    this._selection = selection;
    this._changed.emit('detail');
    try {
      const artifact = await this.api.artifact(kind, name);
      if (this._selection !== selection) {
        return;
      }
      selection.artifact = artifact;
      await this._loadVersion(selection, artifact.latest);
    } catch (error) {
      if (this._selection === selection) {
        selection.error = messageOf(error);
        selection.loading = false;
        this._changed.emit('detail');
      }
    }
  }

  /** Show another version of the selected artifact. */
  async selectVersion(version: number): Promise<void> {
    const selection = this._selection;
    if (!selection) {
      return;
    }
    selection.loading = true;
    this._changed.emit('detail');
    try {
      const detail = await this.api.version(
        selection.kind,
        selection.name,
        version
      );
      if (this._selection === selection) {
        await this._loadVersion(selection, detail);
      }
    } catch (error) {
      if (this._selection === selection) {
        selection.error = messageOf(error);
        selection.loading = false;
        this._changed.emit('detail');
      }
    }
  }

  /** Leave the detail view. */
  clearSelection(): void {
    this._selection = null;
    this._changed.emit('detail');
  }

  private async _loadVersion(
    selection: ISelection,
    detail: IVersionDetail
  ): Promise<void> {
    const auditing = this.api.audit
      ? this.api.audit(detail.kind, detail.name, detail.version).then(r => r.items, () => null)
      : Promise.resolve(null);
    const [lineage, prompt] = await Promise.all([
      this.api.lineage(detail.kind, detail.name, detail.version),
      detail.kind === 'prompt'
        ? this.api.prompt(detail.name, detail.version)
        : Promise.resolve(null)
    ]);
    if (this._selection !== selection) {
      return;
    }
    selection.version = detail;
    selection.lineage = lineage;
    selection.prompt = prompt;
    selection.audit = await auditing;
    selection.loading = false;
    selection.error = null;
    this._changed.emit('detail');
  }

  /**
   * One conditional poll: refetch the list (and the open detail) only when the
   * registry's change counter moved. Returns whether anything was refetched.
   */
  async poll(): Promise<boolean> {
    const result = await this.api.changes(this._etag);
    if (!result.changed) {
      await this.refreshDeployments(DEPLOYMENT_MAX_AGE);
      return false;
    }
    this._etag = result.etag;
    await this.refresh();
    const selection = this._selection;
    if (selection && selection.version && !selection.loading) {
      try {
        const artifact = await this.api.artifact(selection.kind, selection.name);
        if (this._selection === selection) {
          selection.artifact = artifact;
          const current = selection.version.version;
          const same = artifact.versions.some(v => v.version === current);
          await this._loadVersion(
            selection,
            same
              ? await this.api.version(selection.kind, selection.name, current)
              : artifact.latest
          );
        }
      } catch (error) {
        selection.error = messageOf(error);
        this._changed.emit('detail');
      }
    }
    return true;
  }

  /** Start polling (idempotent); the first fetch happens now. */
  start(): void {
    if (this._running || this._disposed) {
      return;
    }
    this._running = true;
    this._delay = this._poll.interval;
    const first = this._state === 'ready' || this._state === 'empty'
      ? this.poll()
      : this.refresh();
    void first.then(
      () => this._schedule(),
      () => this._backoff()
    );
  }

  /** Stop polling (the sidebar is hidden); state stays as it is. */
  stop(): void {
    this._running = false;
    if (this._timer !== null) {
      clearTimeout(this._timer);
      this._timer = null;
    }
  }

  get polling(): boolean {
    return this._running;
  }

  dispose(): void {
    if (this._disposed) {
      return;
    }
    this.stop();
    this._disposed = true;
    Signal.clearData(this);
  }

  private _schedule(): void {
    if (!this._running) {
      return;
    }
    this._timer = setTimeout(() => {
      this._timer = null;
      this.poll().then(
        () => {
          this._delay = this._poll.interval;
          this._schedule();
        },
        () => this._backoff()
      );
    }, this._delay);
  }

  private _backoff(): void {
    this._delay = Math.min(this._delay * 2, this._poll.maxInterval);
    this._schedule();
  }

  private _setState(state: ListState, change: Change = 'status'): void {
    this._state = state;
    this._changed.emit(change);
  }

  private _groups = new Map<Kind, IGroup>();
  private _deployments = new Map<string, IDeployment>();
  private _deploymentsAt = 0;
  private _search = '';
  private _state: ListState = 'loading';
  private _error: string | null = null;
  private _selection: ISelection | null = null;
  private _etag: string | null = null;
  private _generation = 0;
  private _running = false;
  private _disposed = false;
  private _timer: ReturnType<typeof setTimeout> | null = null;
  private _delay = DEFAULT_POLL.interval;
  private _poll: IPollOptions;
  private _changed = new Signal<this, Change>(this);
}

function messageOf(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}

/**
 * Lineage edges as a tree rooted at `root`: `upstream` follows edges into a node
 * (what it was made from), `downstream` edges out of it (what was made from it).
 * A node met twice is shown once more, marked `repeated`, without its subtree.
 */
export function lineageTree(
  edges: IEdge[],
  root: string,
  direction: 'upstream' | 'downstream'
): ITreeNode[] {
  const next = new Map<string, IEdge[]>();
  for (const edge of edges) {
    const key = direction === 'upstream' ? edge.target : edge.source;
    const list = next.get(key) ?? [];
    if (!list.some(e => e.source === edge.source && e.target === edge.target && e.relation === edge.relation)) {
      list.push(edge);
    }
    next.set(key, list);
  }
  const seen = new Set<string>([root]);
  const build = (ref: string): ITreeNode[] =>
    (next.get(ref) ?? [])
      .slice()
      .sort((a, b) => otherEnd(a, direction).localeCompare(otherEnd(b, direction)))
      .map(edge => {
        const other = otherEnd(edge, direction);
        if (seen.has(other)) {
          return { ref: other, relation: edge.relation, children: [], repeated: true };
        }
        seen.add(other);
        return { ref: other, relation: edge.relation, children: build(other), repeated: false };
      });
  return build(root);
}

function otherEnd(edge: IEdge, direction: 'upstream' | 'downstream'): string {
  return direction === 'upstream' ? edge.source : edge.target;
}

/** `kind://name/3` → its parts, or null when the text is not a full reference. */
export function parseRef(
  ref: string
): { kind: Kind; name: string; version: number | null } | null {
  const match = /^([a-z]+(?:-[a-z]+)*):\/\/([^/@\s]+)(?:\/(\d+))?$/.exec(ref);
  if (!match || !(KINDS as readonly string[]).includes(match[1])) {
    return null;
  }
  return {
    kind: match[1] as Kind,
    name: match[2],
    version: match[3] ? Number(match[3]) : null
  };
}

/** Aliases to show as chips: `latest` has its own badge (the listing's `latest`), so it is left out. */
export function visibleAliases(aliases: Record<string, number>): string[] {
  return Object.keys(aliases)
    .filter(a => a !== 'latest')
    .sort()
    .map(a => `${a} → v${aliases[a]}`);
}

/** A one-line text for any JSON value (the view renders it as text, never HTML). */
export function formatValue(value: unknown): string {
  if (value === null || value === undefined) {
    return '';
  }
  if (typeof value === 'number') {
    if (Number.isInteger(value) || !Number.isFinite(value)) {
      return String(value);
    }
    return Math.abs(value) >= 1e-3
      ? String(Number(value.toFixed(4)))
      : value.toPrecision(3);
  }
  if (typeof value === 'string') {
    return value;
  }
  return JSON.stringify(value);
}
