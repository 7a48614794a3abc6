import { describe, expect, it } from 'vitest';

import { SidebarModel } from '../src/model';
import { IArtifact, IAuditEvent, IRegistryAPI, IVersionDetail, Kind } from '../src/tokens';

function detail(kind: Kind, name: string, version: number): IVersionDetail {
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
    code: [],
    parents: [],
    children: []
  };
}

const EVENT: IAuditEvent = {
  id: 1,
  time: 0,
  when: '2026-12-01T10:00:00+00:00',
  actor: 'ann',
  action: 'policy-override',
  ref: 'adapter://qa/2',
  from: null,
  to: 'adapter://qa/2',
  reason: 'hotfix',
  detail: { alias: 'production' }
};

/** One adapter with two versions; `audit` answers per version, or is left out like an older server. */
class Twin implements IRegistryAPI {
  calls: string[] = [];
  constructor(private readonly withAudit: boolean) {
    if (!withAudit) {
      delete (this as Partial<Twin>).audit;
    }
  }
  async list(): Promise<never> {
    throw new Error('not used');
  }
  async artifact(kind: Kind, name: string): Promise<IArtifact> {
    return { kind, name, ref: `${kind}://${name}`, aliases: { latest: 2 }, versions: [], latest: detail(kind, name, 2) };
  }
  async version(kind: Kind, name: string, version: number): Promise<IVersionDetail> {
    return detail(kind, name, version);
  }
  async lineage(kind: Kind, name: string, version: number) {
    const root = `${kind}://${name}/${version}`;
    return { root, nodes: [root], edges: [], upstream: [], downstream: [] };
  }
  async prompt(): Promise<never> {
    throw new Error('not used');
  }
  async deployments() {
    return { items: [] };
  }
  async changes() {
    return { changed: false, etag: null, changes: null };
  }
  audit? = async (kind: Kind, name: string, version: number) => {
    this.calls.push(`audit ${kind}://${name}/${version}`);
    return { ref: `${kind}://${name}/${version}`, items: version === 2 ? [EVENT] : [] };
  };
}

describe('the Audit section of the detail view', () => {
  it('loads the events of the version shown, and again for another version', async () => {
    const api = new Twin(true);
    const model = new SidebarModel(api);
    await model.select('adapter', 'qa');
    expect(model.selection?.audit).toEqual([EVENT]);
    await model.selectVersion(1);
    expect(model.selection?.audit).toEqual([]);
    expect(api.calls).toEqual(['audit adapter://qa/2', 'audit adapter://qa/1']);
  });

  it('shows the rest of the detail when the server has no audit route', async () => {
    const model = new SidebarModel(new Twin(false));
    await model.select('adapter', 'qa');
    expect(model.selection?.version?.ref).toBe('adapter://qa/2');
    expect(model.selection?.audit).toBeNull();
  });
});
