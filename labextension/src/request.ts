/**
 * The only module that does HTTP: the `/llmops/` routes of the server extension.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import {
  IArtifact,
  IAuditEvent,
  IChangesResult,
  IDeployment,
  ILineage,
  IListQuery,
  ILineageGraph,
  IPage,
  IPromptText,
  IRegistryAPI,
  IVersionDetail,
  Kind
} from './tokens';
import { IChart, ITraceSummary, ITraceTree } from './traces';

const NAMESPACE = 'llmops';

/** An error from the server extension, carrying its JSON `message`. */
export class LLMOpsRequestError extends Error {
  constructor(
    readonly status: number,
    message: string
  ) {
    super(message);
  }
}

async function send(
  settings: ServerConnection.ISettings,
  path: string[],
  query: Record<string, string | number | undefined> = {},
  init: RequestInit = {}
): Promise<Response> {
  const params = Object.entries(query)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(String(v))}`)
    .join('&');
  const url =
    URLExt.join(settings.baseUrl, NAMESPACE, ...path.map(encodeURIComponent)) +
    (params ? `?${params}` : '');
  try {
    return await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
}

async function json<T>(response: Response): Promise<T> {
  const text = await response.text();
  let data: any = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { message: text };
    }
  }
  if (!response.ok) {
    throw new LLMOpsRequestError(
      response.status,
      (data && data.message) || response.statusText
    );
  }
  return data as T;
}

/** `IRegistryAPI` over the Jupyter server's REST routes. */
export class RegistryClient implements IRegistryAPI {
  constructor(
    private readonly settings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  async list(query: IListQuery): Promise<IPage> {
    return json(
      await send(this.settings, ['artifacts'], {
        kind: query.kind,
        search: query.search,
        limit: query.limit,
        offset: query.offset
      })
    );
  }

  async artifact(kind: Kind, name: string): Promise<IArtifact> {
    return json(await send(this.settings, ['artifacts', kind, name]));
  }

  async version(
    kind: Kind,
    name: string,
    version: number
  ): Promise<IVersionDetail> {
    return json(
      await send(this.settings, ['artifacts', kind, name, String(version)])
    );
  }

  async lineage(kind: Kind, name: string, version: number): Promise<ILineage> {
    return json(
      await send(this.settings, ['lineage', kind, name, String(version)], {
        depth: 10
      })
    );
  }

  /** The lineage graph around one version (every ancestor and descendant, `depth` levels each way). */
  async graph(kind: string, name: string, version: number, depth?: number): Promise<ILineageGraph> {
    return json(await send(this.settings, ['graph', kind, name, String(version)], { depth }));
  }

  /** The audit events naming one version (alias moves, deployments, overrides), newest first. */
  async audit(kind: Kind, name: string, version: number): Promise<{ ref: string; items: IAuditEvent[] }> {
    return json(await send(this.settings, ['audit', kind, name, String(version)], { limit: 50 }));
  }

  async prompt(name: string, version: number): Promise<IPromptText> {
    return json(await send(this.settings, ['prompts', name, String(version)]));
  }

  async deployments(): Promise<{ items: IDeployment[] }> {
    return json(await send(this.settings, ['deployments']));
  }

  /** The latest traces (`traces.ts`), newest first; `prompt` narrows them to a prompt's versions. */
  async traces(query: { prompt?: string; since?: string; limit?: number }): Promise<{ items: ITraceSummary[] }> {
    return json(await send(this.settings, ['traces'], query));
  }

  /** One trace as a span tree (`last` or a unique id prefix). */
  async trace(id: string): Promise<ITraceTree> {
    return json(await send(this.settings, ['traces', id]));
  }

  /** The pictures of one version (an eval's metric CIs, a fine-tune's loss curves…) as SVG text. */
  async charts(kind: string, name: string, version: number): Promise<{ ref: string; charts: IChart[] }> {
    return json(await send(this.settings, ['charts', kind, name, String(version)]));
  }

  async changes(etag: string | null): Promise<IChangesResult> {
    const headers: Record<string, string> = {};
    if (etag) {
      headers['If-None-Match'] = etag;
    }
    const response = await send(this.settings, ['changes'], {}, {
      headers,
      cache: 'no-store'
    });
    if (response.status === 304) {
      return { changed: false, etag, changes: null };
    }
    const body = await json<{ changes: number }>(response);
    const next = response.headers.get('ETag') ?? `"${body.changes}"`;
    return { changed: next !== etag, etag: next, changes: body.changes };
  }
}
