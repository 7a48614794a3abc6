"""Time to first token for endpoints: streamed requests against a scripted server with known delays.

The server waits ``FIRST`` seconds before its first text chunk and ``GAP`` between the
next ones, so the measured time to first token must be at least ``FIRST`` and clearly
below the whole answer's latency; the same server's answers without a stream carry no
time to first token. ``%model compare`` with an endpoint candidate shows its p50/p95, and
the project's own server streams the same answer as it sends whole.
"""

from __future__ import annotations

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

import llmops_magics as lm
from llmops_magics.errors import EndpointError
from llmops_magics.evaluation.endpoint import EndpointBackend
from llmops_magics.evaluation.generations import GenParams

FIRST, GAP = 0.3, 0.1
PIECES = ["Par", "is"]


class StreamingServer:
    """``/v1/completions`` and ``/v1/chat/completions``, streamed when asked; ``bodies`` keeps every request.

    ``script`` overrides answers in order: ``("status", code)`` answers that HTTP status once,
    ``("json", None)`` answers a stream request with plain JSON, ``("bad-event", None)``
    sends an event that is not JSON.
    """

    def __init__(self, script=()):
        self.script = list(script)
        self.bodies: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _json(self, status, obj, headers=None):
                body = json.dumps(obj).encode()
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **(headers or {})}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                self._json(200, {"data": [{"id": "streamer", "object": "model"}]})

            def _event(self, obj):
                data = obj if isinstance(obj, str) else json.dumps(obj)
                self.wfile.write(f"data: {data}\n\n".encode())
                self.wfile.flush()

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                server.bodies.append(body)
                step = server.script.pop(0) if server.script else ("ok", None)
                chat = self.path.endswith("/chat/completions")
                if step[0] == "status":
                    return self._json(step[1], {"error": {"message": "busy"}}, {"Retry-After": "0"})
                text = "".join(PIECES)
                if not body.get("stream") or step[0] == "json":
                    choice = {"message": {"content": text}} if chat else {"text": text}
                    usage = {"prompt_tokens": 5, "completion_tokens": 2}
                    return self._json(200, {"choices": [{**choice, "finish_reason": "stop"}], "usage": usage})
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Connection", "close")
                self.end_headers()
                time.sleep(FIRST)
                if step[0] == "bad-event":
                    self._event("{not json")
                    return
                for i, piece in enumerate(PIECES):
                    if i:
                        time.sleep(GAP)
                    choice = {"delta": {"content": piece}} if chat else {"text": piece}
                    self._event({"id": "r1", "model": "streamer", "choices": [{"index": 0, **choice}]})
                time.sleep(GAP)
                self._event({"id": "r1", "choices": [{"index": 0, "text": "", "finish_reason": "length"}]})
                self._event({"id": "r1", "choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2}})
                self._event("[DONE]")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = StreamingServer()
    yield s
    s.close()


def one(server, payload="Q?", stream=True):
    backend = EndpointBackend(server.url, stream=stream, backoff=0.0)
    try:
        return backend.generate([payload], GenParams(max_new_tokens=4))[0]
    finally:
        backend.close()


def test_a_streamed_completion_measures_time_to_first_token_below_the_whole_answers_latency(server):
    rec = one(server)
    assert rec.text == "Paris" and rec.finish_reason == "length"
    assert (rec.prompt_tokens, rec.completion_tokens) == (7, 2)  # from the stream's usage chunk
    assert FIRST <= rec.ttft_s <= rec.latency_s - 1.5 * GAP
    assert server.bodies[-1]["stream"] is True and server.bodies[-1]["stream_options"] == {"include_usage": True}


def test_a_streamed_chat_answer_joins_its_deltas(server):
    rec = one(server, [{"role": "user", "content": "Q?"}])
    assert rec.text == "Paris" and rec.ttft_s >= FIRST


def test_without_a_stream_there_is_no_time_to_first_token(server):
    rec = one(server, stream=False)
    assert rec.text == "Paris" and rec.ttft_s is None and "stream" not in server.bodies[-1]


def test_a_server_that_answers_a_stream_request_with_json_is_read_as_json():
    s = StreamingServer([("json", None)])
    try:
        rec = one(s)
        assert rec.text == "Paris" and rec.ttft_s is None
    finally:
        s.close()


def test_a_stream_refused_with_503_is_retried_then_read():
    s = StreamingServer([("status", 503)])
    try:
        assert one(s).text == "Paris" and len(s.bodies) == 2
    finally:
        s.close()


def test_an_event_that_is_not_json_ends_in_one_line_naming_the_endpoint():
    s = StreamingServer([("bad-event", None)])
    try:
        with pytest.raises(EndpointError, match=r"POST http://127\.0\.0\.1:\d+/v1/completions: .*not JSON") as err:
            one(s)
        assert "\n" not in str(err.value) and len(s.bodies) == 1
    finally:
        s.close()


def test_the_ttft_metric_streams_an_eval_and_only_then(workspace, server):
    lm.save_dataset("cities", [{"question": "Capital of France?", "answer": "Paris"}] * 3)
    lm.save_prompt("ask", "Question: {{ question }}\nAnswer:")
    timed = lm.evaluate(server.url, data="cities", prompt="ask", metrics=["exact_match", "ttft", "latency"]).wait()
    assert all(FIRST <= r["ttft_s"] < r["latency_s"] for r in timed.records)
    assert all(r["exact_match"] == 1.0 for r in timed.records)
    plain = lm.evaluate(server.url, data="cities", prompt="ask", metrics=["exact_match"]).wait()
    assert "ttft_s" not in plain.records[0]
    assert [b.get("stream", False) for b in server.bodies] == [True] * 3 + [False] * 3


def test_compare_shows_time_to_first_token_for_the_endpoint_and_none_for_a_local_model(eval_ws, server):
    lm.save_prompt("qa", "Question: {{ question }}\nAnswer:")
    board = lm.compare_models(
        [eval_ws.base.ref, server.url], data="qa-task", prompt="qa", limit=4, max_new_tokens=4, n_resamples=200
    )
    assert FIRST <= board[server.url]["ttft p50 s"] <= board[server.url]["ttft p95 s"]
    assert board[server.url]["ttft p95 s"] < board[server.url]["p95 latency s"]
    assert math.isnan(board[eval_ws.base.ref]["ttft p50 s"])
    assert all(b["stream"] for b in server.bodies)


def test_the_projects_own_server_streams_the_same_answer_with_its_time_to_first_token(eval_ws):
    handle = lm.deploy(eval_ws.base.ref, name="ttft-svc")
    try:
        streamed = EndpointBackend(handle.url, stream=True)
        plain = EndpointBackend(handle.url)
        try:
            params = GenParams(max_new_tokens=6)
            (a,), (b,) = (
                streamed.generate(["Question: capital?\nAnswer:"], params),
                plain.generate(["Question: capital?\nAnswer:"], params),
            )
        finally:
            streamed.close()
            plain.close()
        assert a.text == b.text and (a.prompt_tokens, a.completion_tokens) == (b.prompt_tokens, b.completion_tokens)
        assert b.ttft_s is None and 0 < a.ttft_s <= a.latency_s
    finally:
        lm.stop_deployment("ttft-svc")
