/**
 * Wires the LLMOps sidebar into JupyterLab: nothing here awaits or fetches; the
 * model fetches when the sidebar is first shown.
 */
import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { Clipboard, ICommandPalette, WidgetTracker } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';

import { llmopsIcon } from './icon';
import { SidebarModel } from './model';
import { RegistryClient } from './request';
import { LLMOpsSidebar, SIDEBAR_ID } from './view';
import { graphOpener, LineageGraphPanel, selectInSidebar } from './lineage';
import { TracesModel, TracesSection } from './traces';

const PLUGIN_ID = 'llmops-magics:sidebar';

namespace CommandIDs {
  export const open = 'llmops:open-sidebar';
  export const refresh = 'llmops:refresh';
  export const graph = 'llmops:open-graph';
}

/** Put `code` into the active notebook's active cell, or a new cell below it when that one has code. */
function insertInto(tracker: INotebookTracker | null, code: string): Promise<string> {
  const panel = tracker?.currentWidget;
  if (!panel) {
    return Promise.reject(new Error('Open a notebook first, then insert code.'));
  }
  const notebook = panel.content;
  let cell = notebook.activeCell;
  if (!cell || cell.model.type !== 'code' || cell.model.sharedModel.getSource().trim() !== '') {
    NotebookActions.insertBelow(notebook);
    if (notebook.activeCell?.model.type !== 'code') {
      NotebookActions.changeCellType(notebook, 'code');
    }
    cell = notebook.activeCell;
  }
  if (!cell) {
    return Promise.reject(new Error('The notebook has no cell to insert into.'));
  }
  cell.model.sharedModel.setSource(code);
  return Promise.resolve(`Inserted into ${panel.context.path}`);
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'Browse llmops-magics artifacts, versions and lineage in a sidebar.',
  autoStart: true,
  optional: [ILayoutRestorer, INotebookTracker, ICommandPalette],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    tracker: INotebookTracker | null,
    palette: ICommandPalette | null
  ) => {
    const client = new RegistryClient(app.serviceManager.serverSettings);
    const model = new SidebarModel(client);
    // the lineage panel comes back after a reload, drawing the version it drew
    const graphs = new WidgetTracker<LineageGraphPanel>({ namespace: 'llmops-graph' });
    const openGraph = graphOpener(
      app.shell,
      client,
      ref => {
        app.shell.activateById(SIDEBAR_ID);
        void selectInSidebar(model, ref).catch(() => undefined);
      },
      panel => void (graphs.has(panel) ? graphs.save(panel) : graphs.add(panel))
    );
    app.commands.addCommand(CommandIDs.graph, {
      label: 'Open the lineage graph of a version',
      execute: args => (typeof args.ref === 'string' && args.ref ? openGraph(args.ref) : undefined)
    });
    void restorer?.restore(graphs, {
      command: CommandIDs.graph,
      args: panel => ({ ref: panel.focus ?? '' }),
      name: () => 'lineage'
    });
    const sidebar = new LLMOpsSidebar(model, {
      insert: code => insertInto(tracker, code),
      copy: text => Clipboard.copyToSystem(text),
      openGraph,
      charts: client
    });
    const traces = new TracesSection(new TracesModel(client));
    sidebar.addSection(traces.node);
    sidebar.disposed.connect(() => traces.dispose());
    sidebar.title.icon = llmopsIcon;
    app.shell.add(sidebar, 'left', { rank: 650 });
    restorer?.add(sidebar, SIDEBAR_ID);

    app.commands.addCommand(CommandIDs.open, {
      label: 'Show the LLMOps sidebar',
      execute: () => app.shell.activateById(SIDEBAR_ID)
    });
    app.commands.addCommand(CommandIDs.refresh, {
      label: 'Refresh the LLMOps sidebar',
      execute: () => model.refresh()
    });
    palette?.addItem({ command: CommandIDs.open, category: 'LLMOps' });
    palette?.addItem({ command: CommandIDs.refresh, category: 'LLMOps' });
  }
};

export default plugin;
