/**
 * The only module that does HTTP: the `/llmops/` routes of the server extension.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import {
  IArtifact,
  IChangesResult,
  IDeployment,
  ILineage,
  IListQuery,
  IPage,
  IPromptText,
  IRegistryAPI,
  IVersionDetail,
  Kind
} from './tokens';

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

  async prompt(name: string, version: number): Promise<IPromptText> {
    return json(await send(this.settings, ['prompts', name, String(version)]));
  }

  async deployments(): Promise<{ items: IDeployment[] }> {
    return json(await send(this.settings, ['deployments']));
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
