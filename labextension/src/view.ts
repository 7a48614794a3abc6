/**
 * The "LLMOps" sidebar: a list of artifacts grouped by kind and a detail view.
 * Every name, alias and metadata value is inserted as text (`textContent` /
 * text nodes), never as HTML. Elements the UI tests wait on carry `data-test-id`.
 */
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import {
  Change,
  formatValue,
  IGroup,
  ISelection,
  ITreeNode,
  lineageTree,
  parseRef,
  SidebarModel,
  visibleAliases
} from './model';
import { IAuditEvent, JSONObject, KIND_LABELS, IVersionDetail } from './tokens';
import { chartsSection, IChartsAPI } from './traces';

export const SIDEBAR_ID = 'llmops-sidebar';

/** `2026-11-22T13:37:55.873504+00:00` → `2026-11-22 13:37:55 UTC`. */
function formatTime(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : `${date.toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** What the sidebar can do outside itself (wired by index.ts). */
export interface ISidebarActions {
  /** Put code into the active notebook; resolves to a message for the status line. */
  insert(code: string): Promise<string>;
  copy(text: string): void;
  /** Open the lineage graph of a version (`kind://name/3`) in the main area. */
  openGraph?(ref: string): void;
  /** Where the detail view gets a version's pictures (`traces.ts` chartsSection). */
  charts?: IChartsAPI;
}

type Child = Node | string | null | undefined | false;

/** An element with attributes and children; strings become text nodes. */
function h(
  tag: string,
  attrs: Record<string, string> = {},
  ...children: Child[]
): HTMLElement {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) {
      continue;
    }
    node.appendChild(
      typeof child === 'string' ? document.createTextNode(child) : child
    );
  }
  return node;
}

function button(
  label: string,
  attrs: Record<string, string>,
  onClick: () => void
): HTMLButtonElement {
  const node = h(
    'button',
    { type: 'button', class: 'jp-LLMOps-button', ...attrs },
    label
  ) as HTMLButtonElement;
  node.addEventListener('click', event => {
    event.stopPropagation();
    onClick();
  });
  return node;
}

function section(title: string, testId: string, ...body: Child[]): HTMLElement {
  return h(
    'section',
    { class: 'jp-LLMOps-section', 'data-test-id': testId },
    h('h4', { class: 'jp-LLMOps-sectionTitle' }, title),
    ...body
  );
}

function keyValues(values: JSONObject, testId: string): HTMLElement {
  const list = h('dl', { class: 'jp-LLMOps-kv', 'data-test-id': testId });
  for (const key of Object.keys(values).sort()) {
    list.appendChild(h('dt', {}, key));
    list.appendChild(h('dd', {}, formatValue(values[key])));
  }
  return list;
}

export class LLMOpsSidebar extends Widget {
  constructor(
    private readonly model: SidebarModel,
    private readonly actions: ISidebarActions
  ) {
    super();
    this.id = SIDEBAR_ID;
    this.addClass('jp-LLMOps');
    this.title.caption = 'LLMOps: prompts, datasets, models, adapters, evals, deployments';
    this.node.setAttribute('data-test-id', 'llmops-sidebar');

    this._search = h('input', {
      type: 'search',
      class: 'jp-LLMOps-search jp-mod-styled',
      placeholder: 'Search artifact names',
      'aria-label': 'Search artifact names',
      'data-test-id': 'llmops-search'
    }) as HTMLInputElement;
    this._search.addEventListener('input', () => this._onSearch());
    this._status = h('div', { class: 'jp-LLMOps-status', 'data-test-id': 'llmops-status', role: 'status' });
    this._list = h('div', { class: 'jp-LLMOps-list', 'data-test-id': 'llmops-list' });
    this._detail = h('div', { class: 'jp-LLMOps-detail', 'data-test-id': 'llmops-detail' });
    this._detail.hidden = true;
    this.node.appendChild(
      h(
        'header',
        { class: 'jp-LLMOps-header' },
        h('h2', { class: 'jp-LLMOps-title' }, 'LLMOps'),
        button('Refresh', { 'data-test-id': 'llmops-refresh', title: 'Refresh now' }, () =>
          void this.model.refresh().catch(() => undefined)
        )
      )
    );
    this.node.appendChild(this._search);
    this.node.appendChild(this._status);
    this.node.appendChild(this._list);
    this.node.appendChild(this._detail);
    model.changed.connect(this._onChange, this);
    this._renderList();
  }

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.model.stop();
    this.model.changed.disconnect(this._onChange, this);
    super.dispose();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    if (this.isVisible) {
      this.model.start();
    }
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.model.start();
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this.model.stop();
  }

  protected onBeforeDetach(msg: Message): void {
    this.model.stop();
    super.onBeforeDetach(msg);
  }

  private _onChange(_: SidebarModel, change: Change): void {
    if (change === 'detail') {
      this._renderDetail();
    } else {
      this._renderList();
    }
  }

  private _onSearch(): void {
    if (this._debounce !== null) {
      clearTimeout(this._debounce);
    }
    this._debounce = setTimeout(() => {
      this._debounce = null;
      void this.model.setSearch(this._search.value).catch(() => undefined);
    }, 200);
  }

  private _say(text: string): void {
    this._status.textContent = text;
  }

  // ---------------------------------------------------------------- list

  private _renderList(): void {
    const model = this.model;
    const list = this._list;
    list.setAttribute('data-state', model.state);
    list.replaceChildren();
    if (model.state === 'loading') {
      list.appendChild(h('p', { class: 'jp-LLMOps-note' }, 'Loading…'));
      return;
    }
    if (model.state === 'error') {
      list.appendChild(
        h('p', { class: 'jp-LLMOps-error', 'data-test-id': 'llmops-error' }, `Cannot read the registry: ${model.error ?? ''}`)
      );
      return;
    }
    if (model.state === 'empty') {
      list.appendChild(
        h(
          'p',
          { class: 'jp-LLMOps-note', 'data-test-id': 'llmops-empty' },
          model.search
            ? `No artifact name contains “${model.search}”.`
            : 'No artifacts yet. Save one from a notebook, for example with %%prompt.'
        )
      );
      return;
    }
    for (const group of model.groups) {
      if (group.total > 0) {
        list.appendChild(this._renderGroup(group));
      }
    }
  }

  private _renderGroup(group: IGroup): HTMLElement {
    const node = h('section', {
      class: 'jp-LLMOps-group',
      'data-test-id': 'llmops-group',
      'data-kind': group.kind
    });
    const toggle = button(
      `${group.expanded ? '▾' : '▸'} ${KIND_LABELS[group.kind]}`,
      { class: 'jp-LLMOps-groupToggle', 'data-test-id': 'llmops-group-toggle', 'aria-expanded': String(group.expanded) },
      () => void this.model.toggle(group.kind).catch(() => undefined)
    );
    toggle.appendChild(h('span', { class: 'jp-LLMOps-count', 'data-test-id': 'llmops-group-count' }, String(group.total)));
    node.appendChild(toggle);
    if (!group.expanded) {
      return node;
    }
    const items = h('ul', { class: 'jp-LLMOps-items' });
    for (const item of group.items) {
      const row = h(
        'li',
        {
          class: 'jp-LLMOps-item',
          'data-test-id': 'llmops-item',
          'data-ref': item.ref,
          tabindex: '0',
          role: 'button',
          title: `${item.ref}: ${item.versions} version(s), latest v${item.latest}`
        },
        h('span', { class: 'jp-LLMOps-name' }, item.name),
        h('span', { class: 'jp-LLMOps-badge', title: 'versions' }, `v${item.latest} · ${item.versions}`)
      );
      for (const alias of visibleAliases(item.aliases)) {
        row.appendChild(h('span', { class: 'jp-LLMOps-alias' }, alias));
      }
      const live = item.kind === 'deployment' ? this.model.deployments.get(item.name) : undefined;
      if (live) {
        row.appendChild(
          h('span', { class: `jp-LLMOps-state jp-LLMOps-state-${live.state}`, 'data-test-id': 'llmops-item-state', title: live.url ?? '' }, live.state)
        );
        if (live.monitor && live.monitor.status === 'fail') {
          const why = `${live.monitor.ref} failed: ${live.monitor.failed.join(', ') || 'a check'}`;
          row.appendChild(h('span', { class: 'jp-LLMOps-monitor-fail', 'data-test-id': 'llmops-item-monitor', title: why }, 'monitor ✕'));
        }
      }
      const open = () => void this.model.select(item.kind, item.name);
      row.addEventListener('click', open);
      row.addEventListener('keydown', event => {
        if (event.key === 'Enter') {
          open();
        }
      });
      items.appendChild(row);
    }
    node.appendChild(items);
    const left = group.total - group.items.length;
    if (left > 0) {
      node.appendChild(
        button(
          group.loading ? 'Loading…' : `Show more (${left} more)`,
          { class: 'jp-LLMOps-more', 'data-test-id': 'llmops-more', 'data-kind': group.kind },
          () => void this.model.loadMore(group.kind).catch(() => undefined)
        )
      );
    }
    return node;
  }

  // ---------------------------------------------------------------- detail

  private _renderDetail(): void {
    const selection = this.model.selection;
    const detail = this._detail;
    detail.replaceChildren();
    this._list.hidden = selection !== null;
    this._sections.forEach(node => (node.hidden = selection !== null));
    this._search.hidden = selection !== null;
    detail.hidden = selection === null;
    if (!selection) {
      detail.removeAttribute('data-ref');
      return;
    }
    const state = selection.error ? 'error' : selection.loading || !selection.version ? 'loading' : 'ready';
    detail.setAttribute('data-state', state);
    detail.setAttribute('data-ref', selection.version?.ref ?? `${selection.kind}://${selection.name}`);
    detail.appendChild(
      h(
        'div',
        { class: 'jp-LLMOps-detailHeader' },
        button('← All artifacts', { 'data-test-id': 'llmops-back' }, () => this.model.clearSelection()),
        h('h3', { class: 'jp-LLMOps-detailTitle', 'data-test-id': 'llmops-detail-title' }, `${selection.kind}://${selection.name}`)
      )
    );
    if (selection.error) {
      detail.appendChild(h('p', { class: 'jp-LLMOps-error', 'data-test-id': 'llmops-error' }, selection.error));
    }
    if (!selection.version || !selection.artifact) {
      detail.appendChild(h('p', { class: 'jp-LLMOps-note' }, 'Loading…'));
      return;
    }
    const version = selection.version;
    detail.appendChild(this._versionPicker(selection, version));
    detail.appendChild(this._actions(version));
    const aliases = h('div', { class: 'jp-LLMOps-aliases', 'data-test-id': 'llmops-aliases' });
    for (const alias of version.aliases) {
      aliases.appendChild(h('span', { class: 'jp-LLMOps-alias' }, alias));
    }
    detail.appendChild(aliases);
    detail.appendChild(
      keyValues(
        { digest: version.digest.slice(0, 12), size: version.size, created: formatTime(version.created_at) },
        'llmops-facts'
      )
    );
    if (selection.prompt) {
      const prompt = selection.prompt;
      detail.appendChild(
        section(
          'Prompt',
          'llmops-prompt-text',
          h('pre', { class: 'jp-LLMOps-code' }, prompt.template),
          Object.keys(prompt.params).length ? keyValues(prompt.params, 'llmops-prompt-params') : null
        )
      );
    }
    if (version.summary && Object.keys(version.summary).length) {
      detail.appendChild(section('Eval summary', 'llmops-eval-summary', keyValues(version.summary, 'llmops-metrics')));
    }
    if (this.actions.charts) {
      detail.appendChild(chartsSection(this.actions.charts, version.kind, version.name, version.version));
    }
    if (version.kind === 'deployment') {
      detail.appendChild(this._deployment(version));
    }
    if (Object.keys(version.metadata).length) {
      detail.appendChild(section('Metadata', 'llmops-metadata', keyValues(version.metadata, 'llmops-metadata-values')));
    }
    if (selection.lineage) {
      detail.appendChild(this._lineage(selection));
    }
    detail.appendChild(this._provenance(version));
    if (selection.audit) {
      detail.appendChild(this._audit(selection.audit));
    }
    if (Object.keys(version.spec).length) {
      detail.appendChild(
        section('Spec', 'llmops-spec', h('pre', { class: 'jp-LLMOps-code' }, JSON.stringify(version.spec, null, 2)))
      );
    }
  }

  private _versionPicker(selection: ISelection, version: IVersionDetail): HTMLElement {
    const select = h('select', {
      class: 'jp-LLMOps-versions jp-mod-styled',
      'data-test-id': 'llmops-version-select',
      'aria-label': 'Version'
    }) as HTMLSelectElement;
    for (const v of selection.artifact!.versions) {
      const label = `v${v.version}` + (v.aliases.length ? ` (${v.aliases.join(', ')})` : '');
      const option = h('option', { value: String(v.version) }, label) as HTMLOptionElement;
      option.selected = v.version === version.version;
      select.appendChild(option);
    }
    select.addEventListener('change', () => void this.model.selectVersion(Number(select.value)));
    return h('label', { class: 'jp-LLMOps-versionLabel' }, 'Version ', select);
  }

  private _actions(version: IVersionDetail): HTMLElement {
    const bar = h('div', { class: 'jp-LLMOps-actions' });
    for (const snippet of version.code) {
      const insert = button(
        `Insert: ${snippet.label}`,
        { 'data-test-id': 'llmops-insert', 'data-snippet': snippet.id, title: snippet.code },
        () => {
          void this.actions.insert(snippet.code).then(
            message => this._say(message),
            error => this._say(String(error?.message ?? error))
          );
        }
      );
      bar.appendChild(insert);
    }
    bar.appendChild(
      button('Copy reference', { 'data-test-id': 'llmops-copy-ref', title: version.ref }, () => {
        this.actions.copy(version.ref);
        this._say(`Copied ${version.ref}`);
      })
    );
    if (this.actions.openGraph) {
      bar.appendChild(
        button('Lineage graph', { 'data-test-id': 'llmops-open-graph', title: `The lineage graph of ${version.ref}` }, () =>
          this.actions.openGraph?.(version.ref)
        )
      );
    }
    return bar;
  }

  private _deployment(version: IVersionDetail): HTMLElement {
    const dep = version.deployment;
    if (!dep) {
      return section('Deployment', 'llmops-deployment', h('p', { class: 'jp-LLMOps-note' }, 'No running service recorded.'));
    }
    const url = dep.url && /^https?:\/\//.test(dep.url) ? dep.url : null;
    const link = url ? h('a', { href: url, target: '_blank', rel: 'noopener noreferrer' }, url) : dep.url ?? '';
    return section(
      'Deployment',
      'llmops-deployment',
      h('p', {}, h('span', { class: `jp-LLMOps-state jp-LLMOps-state-${dep.state}`, 'data-test-id': 'llmops-deployment-state' }, dep.state), ' ', link),
      keyValues(
        { pid: dep.pid, port: dep.port, health: dep.health, status: dep.status, uptime_s: dep.uptime_s },
        'llmops-deployment-values'
      )
    );
  }

  private _lineage(selection: ISelection): HTMLElement {
    const lineage = selection.lineage!;
    const tree = (nodes: ITreeNode[], testId: string, empty: string): HTMLElement => {
      if (!nodes.length) {
        return h('p', { class: 'jp-LLMOps-note', 'data-test-id': testId }, empty);
      }
      const render = (list: ITreeNode[]): HTMLElement =>
        h(
          'ul',
          { class: 'jp-LLMOps-tree' },
          ...list.map(node => {
            const target = parseRef(node.ref);
            const label = button(node.ref, { class: 'jp-LLMOps-node', 'data-test-id': 'llmops-lineage-node', 'data-ref': node.ref }, () => {
              if (target) {
                void this.model.select(target.kind, target.name).then(() =>
                  target.version !== null ? this.model.selectVersion(target.version) : undefined
                );
              }
            });
            return h(
              'li',
              {},
              h('span', { class: 'jp-LLMOps-relation' }, node.relation),
              ' ',
              label,
              node.repeated ? h('span', { class: 'jp-LLMOps-note' }, ' (shown above)') : null,
              node.children.length ? render(node.children) : null
            );
          })
        );
      return h('div', { 'data-test-id': testId }, render(nodes));
    };
    return section(
      'Lineage',
      'llmops-lineage',
      h('h5', {}, 'Made from'),
      tree(lineageTree(lineage.upstream, lineage.root, 'upstream'), 'llmops-upstream', 'Nothing upstream.'),
      h('h5', {}, 'Used by'),
      tree(lineageTree(lineage.downstream, lineage.root, 'downstream'), 'llmops-downstream', 'Nothing downstream.')
    );
  }

  /** Who moved an alias to or from this version, deployed it, or overrode the release policy for it. */
  private _audit(events: IAuditEvent[]): HTMLElement {
    if (!events.length) {
      return section('Audit', 'llmops-audit', h('p', { class: 'jp-LLMOps-note' }, 'No audit events.'));
    }
    const rows = events.map(e =>
      h(
        'li',
        { class: 'jp-LLMOps-auditEvent', 'data-test-id': 'llmops-audit-event', 'data-action': e.action },
        h('strong', {}, e.action),
        ` ${formatTime(e.when)} by ${e.actor}`,
        e.from || e.to ? ` · ${e.from ?? '∅'} → ${e.to ?? '∅'}` : '',
        typeof e.detail.alias === 'string' ? ` (${e.detail.alias})` : '',
        e.reason ? h('div', { class: 'jp-LLMOps-note' }, `reason: ${e.reason}`) : null
      )
    );
    return section('Audit', 'llmops-audit', h('ul', { class: 'jp-LLMOps-audit' }, ...rows));
  }

  private _provenance(version: IVersionDetail): HTMLElement {
    const source = { ...version.source };
    const code = typeof source.code === 'string' ? source.code : null;
    const libraries = source.libraries;
    delete source.code;
    delete source.libraries;
    return section(
      'Provenance',
      'llmops-provenance',
      Object.keys(source).length ? keyValues(source, 'llmops-source') : h('p', { class: 'jp-LLMOps-note' }, 'No notebook source recorded.'),
      code ? h('pre', { class: 'jp-LLMOps-code' }, code) : null,
      libraries && typeof libraries === 'object' && !Array.isArray(libraries)
        ? h('details', {}, h('summary', {}, 'Library versions'), keyValues(libraries as JSONObject, 'llmops-libraries'))
        : null,
      Object.keys(version.wandb).length ? h('details', {}, h('summary', {}, 'W&B'), keyValues(version.wandb, 'llmops-wandb')) : null
    );
  }

  /** Add a section under the artifact list (the Traces section); hidden while a detail is open. */
  addSection(node: HTMLElement): void {
    this._sections.push(node);
    node.hidden = this.model.selection !== null;
    this.node.appendChild(node);
  }

  private _sections: HTMLElement[] = [];
  private _search: HTMLInputElement;
  private _status: HTMLElement;
  private _list: HTMLElement;
  private _detail: HTMLElement;
  private _debounce: ReturnType<typeof setTimeout> | null = null;
}
