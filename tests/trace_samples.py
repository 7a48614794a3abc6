"""Sample traces and a scored eval for the Traces/Charts routes and the browser test.

The traces are written the way the exporter writes them (``SpanStore.write`` of
``span_row``-shaped rows), with known names, times, tokens and prompt links.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

MS = 10**6


def span(trace, span_id, parent, name, start, ms, *, status="OK", prompt=None, tokens=(None, None), kind="internal"):
    """One ``spans`` row: ``trace``/``span_id``/``parent`` are small integers, ``start`` in ns, ``ms`` long."""
    attrs = {"gen_ai.usage.input_tokens": tokens[0], "gen_ai.usage.output_tokens": tokens[1]}
    if prompt:
        attrs["llmops.prompt.ref"] = prompt
    if status == "ERROR":
        attrs["error.type"] = "TimeoutError"
    attrs = {k: v for k, v in attrs.items() if v is not None}
    return (f"{trace:032x}", f"{span_id:016x}", None if parent is None else f"{parent:016x}", name, kind, start,
            start + ms * MS, status, None, "chat" if prompt else None, "tiny" if prompt else None, prompt, None,
            tokens[0], tokens[1], "test", json.dumps(attrs), "[]")  # fmt: skip


def write_traces(home: Path, prompt: str) -> None:
    """Three traces an hour, a minute and a second old; the newest used ``prompt`` and failed once."""
    from llmops_magics.tracing.store import SpanStore

    now = time.time_ns()
    store = SpanStore(home)
    old, mid, new = now - 3600 * 10**9, now - 60 * 10**9, now - 10**9
    store.write(
        [
            span(1, 1, None, "batch", old, 30),
            span(2, 1, None, "eval qa", mid, 100),
            span(2, 2, 1, "chat tiny", mid + 10 * MS, 40, prompt="prompt://qa/1", tokens=(5, 7)),
            span(3, 1, None, "my pipeline", new, 200),
            span(3, 2, 1, "chat tiny", new + 20 * MS, 50, prompt=prompt, tokens=(11, 3)),
            span(3, 3, 1, "chat tiny", new + 100 * MS, 80, prompt=prompt, tokens=(4, 2), status="ERROR"),
            span(3, 4, 3, "retrieve", new + 110 * MS, 10),
        ]
    )
    store.close()


def save_scored_eval(home: Path, work: Path, name: str = "scored") -> str:
    """An eval version as ``%eval`` stores it (``summary.json``, ``examples.jsonl``): A vs B on 40 examples."""
    from test_result_pictures import _eval

    from llmops_magics.store import Registry

    folder = work / f"{name}-content"
    folder.mkdir(parents=True, exist_ok=True)
    for file, data in _eval().content().items():
        (folder / file).write_bytes(data)
    reg = Registry(home)
    try:
        return reg.save("eval", name, path=folder).artifact.ref
    finally:
        reg.close()
