import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import {
  formatValue,
  lineageTree,
  PAGE_SIZE,
  parseRef,
  SidebarModel,
  visibleAliases
} from '../src/model';
import {
  IArtifact,
  IChangesResult,
  IDeployment,
  IEdge,
  ILineage,
  IListQuery,
  INameSummary,
  IPage,
  IPromptText,
  IRegistryAPI,
  IVersionDetail,
  Kind,
  KINDS
} from '../src/tokens';

/** An in-memory twin of the REST routes: same paging, counting and ETag rules. */
class MemoryRegistry implements IRegistryAPI {
  names: INameSummary[] = [];
  counter = 1;
  calls: string[] = [];
  failNext = false;
  private sorted = true;

  add(kind: Kind, name: string, versions = 1, aliases: Record<string, number> = {}): void {
    this.names.push({
      kind,
      name,
      versions,
      latest: versions,
      updated_at: 0,
      aliases,
      ref: `${kind}://${name}`
    });
    this.sorted = false;
    this.counter += 1;
  }

  private matching(search?: string, kind?: Kind): INameSummary[] {
    if (!this.sorted) {
      this.names.sort((a, b) => (a.kind + a.name).localeCompare(b.kind + b.name));
      this.sorted = true;
    }
    return this.names.filter(
      n => (!kind || n.kind === kind) && (!search || n.name.toLowerCase().includes(search.toLowerCase()))
    );
  }

  async list(query: IListQuery): Promise<IPage> {
    this.calls.push(`list ${query.kind ?? '*'} ${query.search ?? ''} ${query.limit}@${query.offset}`);
    if (this.failNext) {
      this.failNext = false;
      throw new Error('server down');
    }
    const counts = Object.fromEntries(KINDS.map(k => [k, this.matching(query.search, k).length])) as Record<Kind, number>;
    const all = this.matching(query.search, query.kind);
    return {
      items: all.slice(query.offset, query.offset + query.limit),
      total: all.length,
      counts,
      kind: query.kind ?? null,
      search: query.search ?? null,
      limit: query.limit,
      offset: query.offset,
      changes: this.counter
    };
  }

  detail(kind: Kind, name: string, version: number): IVersionDetail {
    return {
      ref: `${kind}://${name}/${version}`,
      kind,
      name,
      version,
      digest: 'abc',
      size: 1,
      is_tree: false,
      aliases: [],
      created_at: '',
      metadata: {},
      source: {},
      spec: {},
      wandb: {},
      code: [{ id: 'load', label: 'Load', code: `load("${kind}://${name}/${version}")` }],
      parents: [],
      children: []
    };
  }

  async artifact(kind: Kind, name: string): Promise<IArtifact> {
    this.calls.push(`artifact ${kind}://${name}`);
    const entry = this.names.find(n => n.kind === kind && n.name === name);
    if (!entry) {
      throw new Error(`no ${kind} is named '${name}'`);
    }
    return {
      kind,
      name,
      ref: entry.ref,
      aliases: { latest: entry.latest, ...entry.aliases },
      versions: Array.from({ length: entry.versions }, (_, i) => ({
        version: entry.versions - i,
        ref: `${entry.ref}/${entry.versions - i}`,
        digest: 'abc',
        created_at: '',
        aliases: [],
        size: 1
      })),
      latest: this.detail(kind, name, entry.latest)
    };
  }

  async version(kind: Kind, name: string, version: number): Promise<IVersionDetail> {
    this.calls.push(`version ${kind}://${name}/${version}`);
    return this.detail(kind, name, version);
  }

  async lineage(kind: Kind, name: string, version: number): Promise<ILineage> {
    const root = `${kind}://${name}/${version}`;
    return { root, nodes: [root], edges: [], upstream: [], downstream: [] };
  }

  async prompt(name: string, version: number): Promise<IPromptText> {
    this.calls.push(`prompt ${name}/${version}`);
    return { ref: `prompt://${name}/${version}`, template: 'Hi {{ x }}', params: {}, format: 'text', variables: ['x'], description: null };
  }

  async deployments(): Promise<{ items: IDeployment[] }> {
    return { items: [] };
  }

  async changes(etag: string | null): Promise<IChangesResult> {
    this.calls.push(`changes ${etag}`);
    const current = `"${this.counter}"`;
    return current === etag
      ? { changed: false, etag, changes: null }
      : { changed: true, etag: current, changes: this.counter };
  }
}

function seeded(): MemoryRegistry {
  const api = new MemoryRegistry();
  api.add('prompt', 'qa', 3, { production: 2 });
  api.add('prompt', 'summarize');
  api.add('dataset', 'tickets', 2);
  api.add('eval', 'qa-eval');
  return api;
}

describe('SidebarModel listing', () => {
  it('groups names by kind with their totals', async () => {
    const model = new SidebarModel(seeded());
    await model.refresh();
    expect(model.state).toBe('ready');
    expect(model.total).toBe(4);
    const byKind = Object.fromEntries(model.groups.map(g => [g.kind, g.items.map(i => i.name)]));
    expect(byKind.prompt).toEqual(['qa', 'summarize']);
    expect(byKind.dataset).toEqual(['tickets']);
    expect(byKind.model).toEqual([]);
    expect(model.groups.map(g => g.kind)).toEqual([...KINDS]);
  });

  it('fetches pages only for kinds that have names', async () => {
    const api = seeded();
    await new SidebarModel(api).refresh();
    expect(api.calls.filter(c => c.startsWith('list'))).toEqual([
      'list *  0@0',
      `list prompt  ${PAGE_SIZE}@0`,
      `list dataset  ${PAGE_SIZE}@0`,
      `list eval  ${PAGE_SIZE}@0`
    ]);
  });

  it('is empty when the registry has no names', async () => {
    const model = new SidebarModel(new MemoryRegistry());
    await model.refresh();
    expect(model.state).toBe('empty');
  });

  it('records the error and rethrows when the server fails', async () => {
    const api = seeded();
    api.failNext = true;
    const model = new SidebarModel(api);
    await expect(model.refresh()).rejects.toThrow('server down');
    expect(model.state).toBe('error');
    expect(model.error).toBe('server down');
  });

  it('filters by search and counts only what matches', async () => {
    const model = new SidebarModel(seeded());
    await model.setSearch('  QA ');
    expect(model.search).toBe('QA');
    expect(model.total).toBe(2);
    expect(model.groups.find(g => g.kind === 'eval')!.items.map(i => i.name)).toEqual(['qa-eval']);
    expect(model.groups.find(g => g.kind === 'dataset')!.items).toEqual([]);
  });

  it('pages a large group and appends the next page on demand', async () => {
    const api = new MemoryRegistry();
    for (let i = 0; i < 5000; i++) {
      api.add('dataset', `data-${String(i).padStart(4, '0')}`);
    }
    const model = new SidebarModel(api);
    await model.refresh();
    const group = model.groups.find(g => g.kind === 'dataset')!;
    expect(group.total).toBe(5000);
    expect(group.items).toHaveLength(PAGE_SIZE);
    await model.loadMore('dataset');
    expect(group.items).toHaveLength(2 * PAGE_SIZE);
    expect(group.items[PAGE_SIZE].name).toBe(`data-${String(PAGE_SIZE).padStart(4, '0')}`);
  });

  it('keeps the pages already shown when it refreshes', async () => {
    const api = new MemoryRegistry();
    for (let i = 0; i < 200; i++) {
      api.add('model', `m-${String(i).padStart(3, '0')}`);
    }
    const model = new SidebarModel(api);
    await model.refresh();
    await model.loadMore('model');
    await model.refresh();
    expect(model.groups.find(g => g.kind === 'model')!.items).toHaveLength(2 * PAGE_SIZE);
  });

  it('ignores a slow answer to a search that was replaced', async () => {
    const api = seeded();
    const model = new SidebarModel(api);
    const first = model.setSearch('summ');
    const second = model.setSearch('tick');
    await Promise.all([first, second]);
    expect(model.search).toBe('tick');
    expect(model.total).toBe(1);
    expect(model.groups.find(g => g.kind === 'prompt')!.items).toEqual([]);
  });

  it('collapses a group and emits a list change', async () => {
    const model = new SidebarModel(seeded());
    await model.refresh();
    const changes: string[] = [];
    model.changed.connect((_, change) => changes.push(change));
    await model.toggle('prompt');
    expect(model.groups.find(g => g.kind === 'prompt')!.expanded).toBe(false);
    expect(changes).toContain('list');
  });
});

describe('SidebarModel detail', () => {
  it('selects an artifact at its latest version with its prompt text', async () => {
    const api = seeded();
    const model = new SidebarModel(api);
    await model.select('prompt', 'qa');
    const selection = model.selection!;
    expect(selection.loading).toBe(false);
    expect(selection.version!.ref).toBe('prompt://qa/3');
    expect(selection.prompt!.template).toBe('Hi {{ x }}');
    expect(selection.artifact!.aliases).toEqual({ latest: 3, production: 2 });
  });

  it('does not ask for prompt text for other kinds', async () => {
    const api = seeded();
    const model = new SidebarModel(api);
    await model.select('dataset', 'tickets');
    expect(model.selection!.prompt).toBeNull();
    expect(api.calls.some(c => c.startsWith('prompt'))).toBe(false);
  });

  it('switches versions', async () => {
    const model = new SidebarModel(seeded());
    await model.select('prompt', 'qa');
    await model.selectVersion(1);
    expect(model.selection!.version!.ref).toBe('prompt://qa/1');
  });

  it('shows the error of an artifact that vanished', async () => {
    const model = new SidebarModel(seeded());
    await model.select('model', 'gone');
    expect(model.selection!.error).toContain("no model is named 'gone'");
    expect(model.selection!.loading).toBe(false);
  });

  it('clears the selection', async () => {
    const model = new SidebarModel(seeded());
    await model.select('prompt', 'qa');
    model.clearSelection();
    expect(model.selection).toBeNull();
  });
});

describe('SidebarModel polling', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('refetches nothing while the change counter stands still', async () => {
    const api = seeded();
    const model = new SidebarModel(api);
    await model.refresh();
    api.calls = [];
    expect(await model.poll()).toBe(false);
    expect(api.calls).toEqual([`changes "${api.counter}"`]);
  });

  it('refetches the list and the open detail when the registry changed', async () => {
    const api = seeded();
    const model = new SidebarModel(api);
    await model.refresh();
    await model.select('prompt', 'qa');
    api.add('prompt', 'new-one');
    api.calls = [];
    expect(await model.poll()).toBe(true);
    expect(model.groups.find(g => g.kind === 'prompt')!.items.map(i => i.name)).toContain('new-one');
    expect(api.calls).toContain('artifact prompt://qa');
    expect(model.etag).toBe(`"${api.counter}"`);
  });

  it('polls on a timer while started and stops when stopped', async () => {
    const api = seeded();
    const model = new SidebarModel(api, { interval: 1000 });
    model.start();
    await vi.advanceTimersByTimeAsync(0);
    expect(model.state).toBe('ready');
    api.calls = [];
    await vi.advanceTimersByTimeAsync(3000);
    expect(api.calls.filter(c => c.startsWith('changes'))).toHaveLength(3);
    model.stop();
    api.calls = [];
    await vi.advanceTimersByTimeAsync(5000);
    expect(api.calls).toEqual([]);
  });

  it('backs off after errors', async () => {
    const api = seeded();
    const model = new SidebarModel(api, { interval: 1000, maxInterval: 4000 });
    await model.refresh();
    api.changes = async () => {
      api.calls.push('changes failed');
      throw new Error('offline');
    };
    model.start();
    await vi.advanceTimersByTimeAsync(0);
    api.calls = [];
    await vi.advanceTimersByTimeAsync(2000 + 4000 + 4000);
    expect(api.calls).toEqual(['changes failed', 'changes failed', 'changes failed']);
    model.dispose();
  });
});

describe('lineageTree', () => {
  const edges: IEdge[] = [
    { source: 'prompt://qa/2', target: 'adapter://a/1', relation: 'prompt' },
    { source: 'dataset://d/1', target: 'adapter://a/1', relation: 'data' },
    { source: 'dataset://raw/1', target: 'dataset://d/1', relation: 'derived' },
    { source: 'adapter://a/1', target: 'eval://e/1', relation: 'evaluated' },
    { source: 'dataset://d/1', target: 'eval://e/1', relation: 'data' }
  ];

  it('walks upstream as nested parents', () => {
    const tree = lineageTree(edges, 'eval://e/1', 'upstream');
    expect(tree.map(n => n.ref)).toEqual(['adapter://a/1', 'dataset://d/1']);
    const adapter = tree[0];
    expect(adapter.children.map(n => [n.relation, n.ref])).toEqual([
      ['data', 'dataset://d/1'],
      ['prompt', 'prompt://qa/2']
    ]);
    expect(adapter.children[0].children[0].ref).toBe('dataset://raw/1');
  });

  it('marks a node reached twice instead of repeating its subtree', () => {
    const tree = lineageTree(edges, 'eval://e/1', 'upstream');
    expect(tree[1].repeated).toBe(true);
    expect(tree[1].children).toEqual([]);
  });

  it('walks downstream and survives cycles', () => {
    const cyclic = [...edges, { source: 'eval://e/1', target: 'prompt://qa/2', relation: 'feedback' }];
    const tree = lineageTree(cyclic, 'prompt://qa/2', 'downstream');
    expect(tree[0].ref).toBe('adapter://a/1');
    expect(tree[0].children[0].children[0]).toMatchObject({ ref: 'prompt://qa/2', repeated: true });
  });
});

describe('helpers', () => {
  it('parses full references only', () => {
    expect(parseRef('adapter://qa-lora/3')).toEqual({ kind: 'adapter', name: 'qa-lora', version: 3 });
    expect(parseRef('prompt://qa')).toEqual({ kind: 'prompt', name: 'qa', version: null });
    expect(parseRef('pii-scan://dataset-qa/1')).toEqual({ kind: 'pii-scan', name: 'dataset-qa', version: 1 });
    expect(parseRef('secret://x/1')).toBeNull();
    expect(parseRef('qa')).toBeNull();
  });

  it('shows aliases other than latest', () => {
    expect(visibleAliases({ latest: 3, staging: 3, production: 2 })).toEqual(['production → v2', 'staging → v3']);
  });

  it('formats metric values compactly and everything else as text', () => {
    expect(formatValue(0.812345)).toBe('0.8123');
    expect(formatValue(3)).toBe('3');
    expect(formatValue(0.00001234)).toBe('0.0000123');
    expect(formatValue('<b>x</b>')).toBe('<b>x</b>');
    expect(formatValue({ a: [1] })).toBe('{"a":[1]}');
    expect(formatValue(null)).toBe('');
  });
});

describe('SidebarModel deployments', () => {
  function withDeployment(state: IDeployment['state']): MemoryRegistry {
    const api = seeded();
    api.add('deployment', 'qa-svc');
    api.deployments = async () => {
      api.calls.push('deployments');
      return {
        items: [
          { name: 'qa-svc', ref: null, pid: 1, port: 1, url: 'http://127.0.0.1:1', host: null, started_at: null,
            uptime_s: null, status: null, alive: true, health: 'ok', state }
        ]
      };
    };
    return api;
  }

  it('fetches live status after a refresh when deployments are listed', async () => {
    const api = withDeployment('running');
    const model = new SidebarModel(api);
    await model.refresh();
    await model.refreshDeployments();
    expect(model.deployments.get('qa-svc')!.state).toBe('running');
  });

  it('does not ask for deployments when there are none', async () => {
    const api = seeded();
    const model = new SidebarModel(api);
    await model.refresh();
    await model.refreshDeployments();
    expect(api.calls).not.toContain('deployments');
  });

  it('rechecks liveness on quiet polls only once it is older than the max age', async () => {
    const api = withDeployment('running');
    const model = new SidebarModel(api);
    await model.refresh();
    await model.refreshDeployments();
    api.calls = [];
    await model.poll();
    expect(api.calls).toEqual([`changes "${api.counter}"`]);
    await model.refreshDeployments(0);
    expect(api.calls).toContain('deployments');
  });
});
