"""A ``%deploy`` server's span of each request, joined to the notebook's trace (a real server process)."""

from __future__ import annotations

import time

import openai
import pytest
from deploy_support import stop_all

import llmops_magics
from llmops_magics.tracing import conventions as C
from llmops_magics.tracing import get_trace, instrument_openai, trace, uninstrument_openai

pytestmark = pytest.mark.slow
pytest_plugins = ["tracing_support"]


def _wait_for(trace_id: str, kind: str, timeout: float = 30.0):
    """The trace once a span of ``kind`` (written by the server process) is in the store."""
    deadline = time.monotonic() + timeout
    while True:
        view = get_trace(trace_id)
        found = [s for s in view.spans if s.kind == kind]
        if found or time.monotonic() > deadline:
            return view, found
        time.sleep(0.3)


def test_the_servers_span_of_a_request_joins_the_clients_trace_and_names_the_deployment(
    spans, workspace, tiny_model_dir
):
    llmops_magics.register_model(str(tiny_model_dir), name="tiny")
    handle = llmops_magics.deploy("model://tiny", name="qa", max_wait_ms=5, threads=1, workspace=workspace)
    try:
        client = openai.OpenAI(base_url=handle.url + "/v1", api_key="none", max_retries=0)
        instrument_openai()
        with trace("ask the deployment") as outer:
            reply = client.chat.completions.create(
                model="qa", messages=[{"role": "user", "content": "The capital of"}], max_tokens=4, temperature=0
            )
        bad = client.with_options(max_retries=0)
        with trace("ask badly") as failed, pytest.raises(openai.BadRequestError):
            bad.chat.completions.create(model="qa", messages=[{"role": "user", "content": "x"}], max_tokens=-1)
        view, (server,) = _wait_for(outer.trace_id, "server")
        _, (refused,) = _wait_for(failed.trace_id, "server")
        llmops_magics.monitor("qa", window="1h", checks="slo", workspace=workspace)  # its W&B run holds the spans
    finally:
        uninstrument_openai()
        stop_all(workspace)
    (client_span,) = [s for s in view.spans if s.kind == "client"]
    assert server.parent_id == client_span.span_id
    assert server.name == "chat qa"
    assert server.get(C.LLMOPS_ARTIFACT_REF) == handle.ref
    assert (server.get(C.GEN_AI_USAGE_INPUT_TOKENS), server.get(C.GEN_AI_USAGE_OUTPUT_TOKENS)) == (
        reply.usage.prompt_tokens,
        reply.usage.completion_tokens,
    )
    assert server.get(C.GEN_AI_REQUEST_MAX_TOKENS) == 4
    assert view.input_tokens == reply.usage.prompt_tokens  # the server's span repeats the call: counted once
    assert refused.status == "ERROR" and refused.get(C.ERROR_TYPE) in ("400", "422")
    assert llmops_magics.list_traces(artifact=handle.ref).ids[:2] == [failed.trace_id, outer.trace_id]
    run = next(r for r in workspace.memory.runs if r.job_type == "monitor")
    columns, rows = run.tables["traces"]
    logged = {row[columns.index("span_id")]: row for row in rows}
    assert {server.span_id, refused.span_id} <= set(logged) and client_span.span_id not in logged
    assert logged[server.span_id][columns.index("input_tokens")] == reply.usage.prompt_tokens
