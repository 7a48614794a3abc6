"""Endpoints that fail, against a scripted server on 127.0.0.1 that counts the requests it gets.

What is retried (429 after its Retry-After, 5xx, 408) and how often; what ends at once with
one ``EndpointError`` line naming the endpoint, the status and what to do (401, 404, a
timeout, a body that is not JSON); and that an eval that fails records nothing.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llmops_magics.errors import EndpointError
from llmops_magics.evaluation.endpoint import RETRIES, EndpointBackend
from llmops_magics.evaluation.generations import GenParams

OK = (200, {}, json.dumps({"choices": [{"text": " fine", "finish_reason": "stop"}], "usage": {}}).encode(), 0.0)


class ScriptedServer:
    """Answers POSTs with ``script`` in order (the last entry repeats); ``posts`` counts them."""

    def __init__(self, script):
        self.script = list(script)
        self.posts = 0
        self.times: list[float] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status, headers, body, delay):
                time.sleep(delay)
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self._reply(200, {}, json.dumps({"data": [{"id": "m"}]}).encode(), 0.0)

            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                server.times.append(time.monotonic())
                step = server.script[min(server.posts, len(server.script) - 1)]
                server.posts += 1
                self._reply(*step)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def scripted():
    servers = []

    def make(*script):
        servers.append(ScriptedServer(script))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def _call(server, timeout=10.0):
    backend = EndpointBackend(server.url, model="m", timeout=timeout, backoff=0.05)
    try:
        return backend.generate(["q"], GenParams(max_new_tokens=4))[0]
    finally:
        backend.close()


def _error(status, text="nope"):
    return (status, {}, json.dumps({"error": {"message": text}}).encode(), 0.0)


def test_429_waits_for_retry_after_then_succeeds(scripted):
    server = scripted((429, {"Retry-After": "0.4"}, b"{}", 0.0), OK)
    assert _call(server).text == " fine"
    assert server.posts == 2
    assert server.times[1] - server.times[0] >= 0.4  # honoured, not the short backoff


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408])
def test_server_errors_are_retried_with_a_bound_then_named(scripted, status):
    server = scripted(_error(status, "overloaded"))
    with pytest.raises(EndpointError) as info:
        _call(server)
    assert server.posts == RETRIES + 1
    message = str(info.value)
    assert server.url in message and f"HTTP {status}" in message and f"after {RETRIES + 1} attempts" in message
    assert "\n" not in message


def test_a_transient_503_is_invisible(scripted):
    server = scripted(_error(503), _error(503), OK)
    assert _call(server).text == " fine" and server.posts == 3


@pytest.mark.parametrize(
    "status, hint", [(401, "check the API key"), (403, "check the API key"), (404, "check the URL")]
)
def test_client_errors_fail_at_once_with_what_to_do(scripted, status, hint):
    server = scripted(_error(status))
    with pytest.raises(EndpointError, match=rf"HTTP {status} .*{hint}"):
        _call(server)
    assert server.posts == 1


def test_a_retry_after_longer_than_the_bound_is_reported_not_waited_for(scripted):
    server = scripted((429, {"Retry-After": "3600"}, b"{}", 0.0))
    started = time.monotonic()
    with pytest.raises(EndpointError, match="asks to wait 3600 s"):
        _call(server)
    assert server.posts == 1 and time.monotonic() - started < 5


def test_a_timeout_fails_at_once(scripted):
    server = scripted((200, {}, b"{}", 2.0))
    with pytest.raises(EndpointError, match=r"no answer within 0.5 s"):
        _call(server, timeout=0.5)
    assert server.posts == 1


def test_a_body_that_is_not_json_is_named(scripted):
    server = scripted((200, {}, b"<html>proxy login</html>", 0.0))
    with pytest.raises(EndpointError, match=r"not JSON .*proxy login.*OpenAI-compatible"):
        _call(server)
    assert server.posts == 1


def test_a_malformed_usage_is_named(scripted):
    body = json.dumps({"choices": [{"text": " fine"}], "usage": "lots"}).encode()
    server = scripted((200, {}, body, 0.0))
    with pytest.raises(EndpointError, match=r"malformed usage \(lots\).*OpenAI-compatible"):
        _call(server)
    assert server.posts == 1


def test_an_eval_against_a_failing_endpoint_records_nothing(eval_ws, scripted):
    import llmops_magics as lm

    server = scripted(_error(401))
    before = eval_ws.registry.names()
    with pytest.raises(EndpointError, match="check the API key"):
        lm.evaluate(server.url, data="qa-task", limit=3, max_new_tokens=4, metrics=["exact_match"]).wait()
    assert eval_ws.registry.names() == before
