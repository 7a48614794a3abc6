/**
 * The shapes the server extension returns (see llmops_magics/browse.py), and the
 * small interface the model talks to. `request.ts` implements it over HTTP; unit
 * tests implement it in memory.
 */

export type Kind =
  | 'prompt'
  | 'dataset'
  | 'model'
  | 'adapter'
  | 'eval'
  | 'deployment'
  | 'selection'
  | 'abtest'
  | 'monitor'
  | 'pii-scan'
  | 'fairness'
  | 'pipeline'
  | 'card';

export const KINDS: readonly Kind[] = [
  'prompt',
  'dataset',
  'model',
  'adapter',
  'eval',
  'deployment',
  'selection',
  'abtest',
  'monitor',
  'pii-scan',
  'fairness',
  'pipeline',
  'card'
];

export const KIND_LABELS: Record<Kind, string> = {
  prompt: 'Prompts',
  dataset: 'Datasets',
  model: 'Models',
  adapter: 'Adapters',
  eval: 'Evals',
  deployment: 'Deployments',
  selection: 'Selections',
  abtest: 'A/B tests',
  monitor: 'Monitors',
  'pii-scan': 'PII scans',
  fairness: 'Fairness',
  pipeline: 'Pipelines',
  card: 'Model cards'
};

export interface INameSummary {
  kind: Kind;
  name: string;
  versions: number;
  latest: number;
  updated_at: number;
  aliases: Record<string, number>;
  ref: string;
}

export interface IPage {
  items: INameSummary[];
  total: number;
  counts: Record<Kind, number>;
  kind: Kind | null;
  search: string | null;
  limit: number;
  offset: number;
  changes: number;
}

export interface IListQuery {
  kind?: Kind;
  search?: string;
  limit: number;
  offset: number;
}

export interface ISnippet {
  id: string;
  label: string;
  code: string;
}

export interface IEdge {
  source: string;
  target: string;
  relation: string;
}

export interface IDeployment {
  name: string;
  ref: string | null;
  pid: number | null;
  port: number | null;
  url: string | null;
  host: string | null;
  started_at: number | string | null;
  uptime_s: number | null;
  status: string | null;
  alive: boolean | null;
  health: string | null;
  state: 'running' | 'stopped' | 'unhealthy' | 'unknown';
  /** The newest `%monitor` run of this deployment, if any. */
  monitor?: IMonitorStatus | null;
}

export interface IMonitorStatus {
  ref: string;
  status: 'pass' | 'warn' | 'fail' | string;
  failed: string[];
}

export type JSONValue =
  | string
  | number
  | boolean
  | null
  | JSONValue[]
  | { [key: string]: JSONValue };

export type JSONObject = { [key: string]: JSONValue };

export interface IVersionSummary {
  version: number;
  ref: string;
  digest: string;
  created_at: string;
  aliases: string[];
  size: number;
}

export interface IVersionDetail {
  ref: string;
  kind: Kind;
  name: string;
  version: number;
  digest: string;
  size: number;
  is_tree: boolean;
  aliases: string[];
  created_at: string;
  metadata: JSONObject;
  source: JSONObject;
  spec: JSONObject;
  wandb: JSONObject;
  code: ISnippet[];
  parents: IEdge[];
  children: IEdge[];
  summary?: JSONObject;
  deployment?: IDeployment | null;
}

export interface IArtifact {
  kind: Kind;
  name: string;
  ref: string;
  aliases: Record<string, number>;
  versions: IVersionSummary[];
  latest: IVersionDetail;
}

export interface ILineage {
  root: string;
  nodes: string[];
  edges: IEdge[];
  upstream: IEdge[];
  downstream: IEdge[];
}

/** A version in the lineage graph (`GET /llmops/graph/…`, llmops_magics/store/graph.py). */
export interface IGraphNode {
  ref: string;
  kind: string;
  name: string;
  version: number;
  aliases: string[];
  created: string;
  /** 0 for the focus, negative upstream, positive downstream. */
  level: number;
}

export interface IGraphEdge {
  src: string;
  dst: string;
  relation: string;
}

export interface ILineageGraph {
  focus: string;
  nodes: IGraphNode[];
  edges: IGraphEdge[];
  depth: number;
  /** True when the depth or size limit cut the graph. */
  truncated: boolean;
}

export interface IPromptText {
  ref: string;
  template: string;
  params: JSONObject;
  format: string | null;
  variables: string[];
  description: string | null;
}

/** One audit event (append-only): who moved what, when, from where to where, and why. */
export interface IAuditEvent {
  id: number;
  time: number;
  when: string;
  actor: string;
  action: string;
  ref: string;
  from: string | null;
  to: string | null;
  reason: string | null;
  detail: JSONObject;
}

/** Result of a conditional poll: `changed` is false on a 304. */
export interface IChangesResult {
  changed: boolean;
  etag: string | null;
  changes: number | null;
}

export interface IRegistryAPI {
  list(query: IListQuery): Promise<IPage>;
  artifact(kind: Kind, name: string): Promise<IArtifact>;
  version(kind: Kind, name: string, version: number): Promise<IVersionDetail>;
  lineage(kind: Kind, name: string, version: number): Promise<ILineage>;
  prompt(name: string, version: number): Promise<IPromptText>;
  deployments(): Promise<{ items: IDeployment[] }>;
  changes(etag: string | null): Promise<IChangesResult>;
  /** The audit events naming one version, newest first (optional: test doubles may leave it out). */
  audit?(kind: Kind, name: string, version: number): Promise<{ ref: string; items: IAuditEvent[] }>;
}
