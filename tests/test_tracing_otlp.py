"""OTLP/HTTP export: only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, checked by a receiver on 127.0.0.1."""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llmops_magics.tracing import conventions as C
from llmops_magics.tracing import provider, trace
from llmops_magics.tracing.spans import model_call


class Receiver:
    """An OTLP/HTTP trace receiver: decodes each ``ExportTraceServiceRequest`` (protobuf) it is posted."""

    def __init__(self) -> None:
        self.requests: list = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                    ExportTraceServiceRequest,
                    ExportTraceServiceResponse,
                )

                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                receiver.paths.append(self.path)
                receiver.requests.append((self.headers.get("Content-Type"), request))
                data = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def spans(self) -> dict:
        """Received spans by name: ``(span, {attribute: value}, resource attributes)``."""
        out = {}
        for _, request in self.requests:
            for rs in request.resource_spans:
                resource = {a.key: _value(a.value) for a in rs.resource.attributes}
                for ss in rs.scope_spans:
                    for span in ss.spans:
                        out[span.name] = (span, {a.key: _value(a.value) for a in span.attributes}, resource)
        return out

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _value(v):
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind)


@pytest.fixture
def receiver(workspace, monkeypatch):
    with Receiver() as r:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", r.url)
        provider.reset()
        yield r
        provider.reset()


def test_spans_reach_an_otlp_receiver_with_their_genai_attributes(receiver, workspace):
    with trace("answer") as outer:
        with model_call("chat", "gpt-x", provider="openai", request={"temperature": 0.2, "max_tokens": 9}) as call:
            call.response(finish_reasons=["stop"], input_tokens=12, output_tokens=3)
    assert provider.tracing_for(workspace).flush(10, export=True)
    assert receiver.paths == ["/v1/traces"]
    assert receiver.requests[0][0] == "application/x-protobuf"
    got = receiver.spans()
    span, attrs, resource = got["chat gpt-x"]
    assert attrs == {
        C.GEN_AI_OPERATION_NAME: "chat",
        C.GEN_AI_PROVIDER_NAME: "openai",
        C.GEN_AI_REQUEST_MODEL: "gpt-x",
        C.GEN_AI_REQUEST_TEMPERATURE: 0.2,
        C.GEN_AI_REQUEST_MAX_TOKENS: 9,
        C.GEN_AI_RESPONSE_FINISH_REASONS: ["stop"],
        C.GEN_AI_USAGE_INPUT_TOKENS: 12,
        C.GEN_AI_USAGE_OUTPUT_TOKENS: 3,
    }
    assert span.trace_id.hex() == outer.trace_id
    assert span.parent_span_id == got["answer"][0].span_id
    assert resource["service.name"] == "llmops-magics"


def test_the_service_name_comes_from_the_standard_variable(receiver, workspace, monkeypatch):
    monkeypatch.setenv("OTEL_SERVICE_NAME", "my-notebook")
    provider.reset()
    with trace("named"):
        pass
    provider.tracing_for(workspace).flush(10, export=True)
    assert receiver.spans()["named"][2]["service.name"] == "my-notebook"


def test_spans_are_still_stored_locally_when_exported(receiver, workspace):
    from llmops_magics.tracing import get_trace

    with trace("both"):
        pass
    provider.tracing_for(workspace).flush(10, export=True)
    assert "both" in receiver.spans()
    assert get_trace().spans[0].name == "both"


def test_nothing_is_exported_without_an_endpoint(workspace, monkeypatch):
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    provider.reset()
    try:
        assert provider.tracing_for(workspace).otlp is None
    finally:
        provider.reset()


def test_the_global_tracer_provider_is_never_replaced(receiver, workspace):
    from opentelemetry import trace as otel_trace

    with trace("mine"):
        pass
    assert otel_trace.get_tracer_provider() is not provider.tracing_for(workspace).provider


EXIT_SCRIPT = """
import atexit, sys, threading
import openai
from llmops_magics.tracing import deferred, instrument_openai

deferred.INTERVAL_S = 3600  # the background pass would come too late: exit makes the span
instrument_openai()
client = openai.OpenAI(base_url=sys.argv[1], api_key="sk-test", max_retries=0)
client.chat.completions.create(model="last-call", messages=[{"role": "user", "content": "hi"}])

def refuse(self):
    raise RuntimeError("can't create new thread at interpreter shutdown")

atexit.register(lambda: setattr(threading.Thread, "start", refuse))  # Python 3.12's rule, on any version
"""


def test_a_scripts_last_call_is_stored_and_exported_at_exit(receiver, workspace, tmp_path):
    """A script ends right after its last call: the exit makes that call's span, writes it to
    ``traces.db`` and sends it over OTLP, though no thread may start by then."""
    import os
    import subprocess
    import sys

    from openai_scripted import ScriptedServer

    from llmops_magics.tracing import list_traces

    env = {**os.environ, "LLMOPS_HOME": str(workspace.home), "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url}
    with ScriptedServer() as server:
        done = subprocess.run(
            [sys.executable, "-c", EXIT_SCRIPT, server.url], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "could not" not in done.stderr, done.stderr
    assert "chat last-call" in receiver.spans()
    provider.reset()
    assert len(list_traces(since="1h")) == 1
