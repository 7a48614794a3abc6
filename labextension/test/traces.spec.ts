import { describe, expect, it } from 'vitest';

import { barGeometry, ITraceSummary, ITraceTree, ITracesAPI, svgDataUrl, TracesModel } from '../src/traces';

function summary(id: string, prompts: string[] = []): ITraceSummary {
  return {
    trace_id: id,
    name: `trace ${id}`,
    start_ms: 0,
    duration_ms: 10,
    spans: 1,
    input_tokens: 0,
    output_tokens: 0,
    errors: 0,
    status: 'ok',
    prompts
  };
}

/** Traces in memory, filtered by prompt name the way the route filters them. */
class MemoryTraces implements ITracesAPI {
  calls: string[] = [];
  items = [summary('aaaa', ['prompt://qa/1']), summary('bbbb')];
  async traces(query: { prompt?: string }): Promise<{ items: ITraceSummary[] }> {
    this.calls.push(`list ${query.prompt ?? ''}`);
    const wanted = query.prompt;
    return { items: this.items.filter(t => !wanted || t.prompts.some(p => p.startsWith(`prompt://${wanted}/`))) };
  }
  async trace(id: string): Promise<ITraceTree> {
    this.calls.push(`trace ${id}`);
    if (id === 'gone') {
      throw new Error('no trace id starts with gone');
    }
    return { trace_id: id, name: 'root', start_ms: 0, duration_ms: 10, spans: 0, truncated: false, input_tokens: 0, output_tokens: 0, cost: null, items: [] };
  }
}

describe('TracesModel', () => {
  it('lists, filters by prompt, opens and closes a trace', async () => {
    const api = new MemoryTraces();
    const model = new TracesModel(api);
    let changes = 0;
    model.changed.connect(() => changes++);

    await model.refresh();
    expect(model.items.map(t => t.trace_id)).toEqual(['aaaa', 'bbbb']);
    await model.setPrompt(' qa ');
    expect(model.items.map(t => t.trace_id)).toEqual(['aaaa']);
    expect(api.calls).toEqual(['list ', 'list qa']);

    await model.select('aaaa');
    expect(model.open?.trace_id).toBe('aaaa');
    model.close();
    expect(model.open).toBeNull();
    expect(changes).toBe(4);
  });

  it('keeps the list and says why when a trace cannot be read', async () => {
    const model = new TracesModel(new MemoryTraces());
    await model.refresh();
    await model.select('gone');
    expect(model.open).toBeNull();
    expect(model.error).toContain('gone');
    expect(model.items).toHaveLength(2);
  });
});

describe('barGeometry', () => {
  it('places a span by its offset and duration, in percent of the trace', () => {
    expect(barGeometry({ offset_ms: 20, duration_ms: 50 }, 200)).toEqual({ left: 10, width: 25 });
    expect(barGeometry({ offset_ms: 0, duration_ms: 200 }, 200)).toEqual({ left: 0, width: 100 });
  });

  it('keeps a zero-length span visible and never past the end', () => {
    expect(barGeometry({ offset_ms: 100, duration_ms: 0 }, 200).width).toBe(0.5);
    const late = barGeometry({ offset_ms: 190, duration_ms: 50 }, 200);
    expect(late.left + late.width).toBeCloseTo(100);
  });
});

describe('svgDataUrl', () => {
  it('encodes the SVG so that it is an image URL, not markup', () => {
    const url = svgDataUrl('<svg><text>a "b" #c</text></svg>');
    expect(url.startsWith('data:image/svg+xml;charset=utf-8,')).toBe(true);
    expect(url).not.toContain('<');
    expect(url).not.toContain('#');
  });
});
