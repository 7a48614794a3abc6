"""``%trace on|off|show|list``: the official ``openai`` client traced undoably, against real HTTP servers."""

from __future__ import annotations

import asyncio
import json
import os
import threading

import openai
import pytest
from eval_support import OpenAIServer
from openai.resources import completions as text_completions
from openai.resources.chat import completions as chat_completions
from openai_scripted import ScriptedServer

import llmops_magics
from llmops_magics.tracing import conventions as C
from llmops_magics.tracing import instrument_openai, trace, uninstrument_openai

pytest_plugins = ["tracing_support"]

CLASSES = (
    chat_completions.Completions,
    chat_completions.AsyncCompletions,
    text_completions.Completions,
    text_completions.AsyncCompletions,
)


@pytest.fixture
def scripted():
    with ScriptedServer() as s:
        yield s


@pytest.fixture(params=["made-here", "made-later"])
def spans(request, workspace):
    """Both ways a client call's span is made, with the same expectations: around the call (a
    ``SimpleSpanProcessor`` promises an exported span the moment one ends) and, where every processor
    batches anyway, from the call's ids after it returned, off the calling thread (``tracing.deferred``)."""
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from tracing_support import Spans

    from llmops_magics.tracing import provider

    provider.reset()
    exporter = InMemorySpanExporter()
    sdk = provider.tracing_for(workspace).provider
    if request.param == "made-later":
        sdk.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=60_000))  # only flushes deliver
        yield Spans(exporter, sdk)
    else:
        sdk.add_span_processor(SimpleSpanProcessor(exporter))
        yield Spans(exporter)
    provider.reset()


@pytest.fixture
def traced_openai(spans):
    instrument_openai()
    yield spans
    uninstrument_openai()


def _client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0)


def _calls(spans) -> list:
    return [s for s in spans.get_finished_spans() if s.kind.name == "CLIENT"]


def test_trace_off_puts_back_exactly_the_functions_that_were_there(ip):
    before = [cls.__dict__["create"] for cls in CLASSES]
    ip.run_line_magic("trace", "on")
    assert all(cls.__dict__["create"] is not b for cls, b in zip(CLASSES, before, strict=True))
    ip.run_line_magic("trace", "on")  # twice on is still one wrapper deep
    ip.run_line_magic("trace", "off")
    assert [cls.__dict__["create"] for cls in CLASSES] == before
    assert all(cls.__dict__["create"] is b for cls, b in zip(CLASSES, before, strict=True))


def test_unloading_the_extension_also_turns_tracing_off(workspace):
    from conftest import ipython_shell

    before = [cls.__dict__["create"] for cls in CLASSES]
    shell = ipython_shell()
    shell.run_line_magic("load_ext", "llmops_magics")
    shell.run_line_magic("trace", "on")
    shell.run_line_magic("unload_ext", "llmops_magics")
    assert all(cls.__dict__["create"] is b for cls, b in zip(CLASSES, before, strict=True))


def test_a_call_to_a_real_model_server_is_a_client_span_with_its_tokens(traced_openai, tiny_model_dir):
    prompt = llmops_magics.save_prompt("ask", "user:\nQuestion: {{ q }}\nAnswer:")
    with OpenAIServer(tiny_model_dir) as server:
        client = _client(server.url + "/v1")
        reply = client.chat.completions.create(
            model="tiny", messages=prompt.render(q="What is 2+2?"), max_tokens=5, temperature=0.0, seed=1
        )
    (span,) = _calls(traced_openai)
    a = span.attributes
    assert span.name == "chat tiny"
    assert (a[C.GEN_AI_PROVIDER_NAME], a[C.GEN_AI_REQUEST_MAX_TOKENS], a[C.GEN_AI_REQUEST_SEED]) == ("openai", 5, 1)
    assert a[C.GEN_AI_USAGE_INPUT_TOKENS] == reply.usage.prompt_tokens
    assert a[C.GEN_AI_USAGE_OUTPUT_TOKENS] == reply.usage.completion_tokens
    assert list(a[C.GEN_AI_RESPONSE_FINISH_REASONS]) == [reply.choices[0].finish_reason]
    assert a[C.LLMOPS_PROMPT_REF] == "prompt://ask/1"
    assert a[C.SERVER_ADDRESS] == "127.0.0.1"
    assert C.GEN_AI_INPUT_MESSAGES not in a


def test_the_request_carries_the_spans_traceparent(traced_openai, scripted):
    with trace("outer") as outer:
        _client(scripted.url).chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    (span,) = _calls(traced_openai)
    version, trace_id, span_id, flags = scripted.headers[0]["traceparent"].split("-")
    assert version == "00" and int(flags, 16) & 1  # sampled
    assert (trace_id, span_id) == (outer.trace_id, f"{span.context.span_id:016x}")
    traced_openai.clear()
    _client(scripted.url).chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    (root,) = _calls(traced_openai)  # no parent: the trace id is the span's own, chosen before the request left
    _, trace_id, span_id, _ = scripted.headers[1]["traceparent"].split("-")
    assert (trace_id, span_id) == (f"{root.context.trace_id:032x}", f"{root.context.span_id:016x}")
    assert root.parent is None and trace_id != outer.trace_id


def _count_late_spans(monkeypatch) -> list:
    from llmops_magics.tracing import deferred

    made, real = [], deferred._make
    monkeypatch.setattr(deferred, "_make", lambda call: (made.append(threading.current_thread()), real(call))[1])
    return made


def test_a_span_is_made_after_the_call_only_where_no_processor_needs_it_at_once(traced_openai, scripted, monkeypatch):
    import time

    made = _count_late_spans(monkeypatch)
    before = time.time_ns()
    _client(scripted.url).chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    after = time.time_ns()
    time.sleep(0.3)  # a span made now, with the time it was made, would end after ``after``
    (span,) = _calls(traced_openai)
    assert len(made) == (1 if traced_openai.made_later else 0)
    assert before <= span.start_time < span.end_time <= after  # the call's own times
    assert span.attributes[C.GEN_AI_USAGE_OUTPUT_TOKENS] == 1


def test_trace_off_and_trace_list_see_every_call_made_so_far(ip, spans, scripted, monkeypatch):
    from llmops_magics.tracing import deferred

    monkeypatch.setattr(deferred, "INTERVAL_S", 3600)  # the background thread would come too late
    monkeypatch.setattr(deferred, "_thread", threading.Thread(target=lambda: None))  # ... and is not started
    ip.run_line_magic("trace", "on")
    for _ in range(3):
        _client(scripted.url).chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    ip.run_line_magic("trace", "off")
    assert not deferred._pending
    assert len(ip.run_line_magic("trace", "list --since 1h")) == 3


def test_past_the_queue_bound_a_call_makes_its_span_itself(traced_openai, scripted, monkeypatch):
    from llmops_magics.tracing import deferred

    monkeypatch.setattr(deferred, "MAX_PENDING", 0)
    made = _count_late_spans(monkeypatch)
    _client(scripted.url).chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert made == ([threading.current_thread()] if traced_openai.made_later else [])  # made by the caller
    assert not deferred._pending and len(_calls(traced_openai)) == 1


def test_a_stream_still_open_at_trace_off_records_no_answer_text(ip, spans, scripted):
    ip.run_line_magic("trace", "on --content")
    stream = _client(scripted.url).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    ip.run_line_magic("trace", "off")
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Hello"
    (span,) = _calls(spans)
    assert json.loads(span.attributes[C.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"] == "hi"
    assert C.GEN_AI_OUTPUT_MESSAGES not in span.attributes
    assert list(span.attributes[C.GEN_AI_RESPONSE_FINISH_REASONS]) == ["length"]


def test_a_stream_dropped_before_its_end_still_ends_its_span(traced_openai, scripted):
    import gc

    stream = _client(scripted.url).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    for _ in stream:
        break  # a loop that stops at the first chunk and never closes the stream
    assert _calls(traced_openai) == []
    del stream
    gc.collect()
    (span,) = _calls(traced_openai)
    assert span.name == "chat m"


def test_trace_off_leaves_a_wrapper_another_tool_put_over_ours(ip, spans, scripted):
    import functools

    cls = chat_completions.Completions
    ip.run_line_magic("trace", "on")
    ours, seen = cls.__dict__["create"], []

    @functools.wraps(ours)
    def theirs(self, *args, **kwargs):
        seen.append(kwargs["model"])
        return ours(self, *args, **kwargs)

    cls.create = theirs
    try:
        ip.run_line_magic("trace", "off")
        assert cls.__dict__["create"] is theirs
        _client(scripted.url).chat.completions.create(model="off", messages=[{"role": "user", "content": "hi"}])
        ip.run_line_magic("trace", "on")
        _client(scripted.url).chat.completions.create(model="on", messages=[{"role": "user", "content": "hi"}])
        ip.run_line_magic("trace", "off")
        assert cls.__dict__["create"] is theirs
    finally:
        cls.create = ours.__wrapped__
    assert seen == ["off", "on"]
    assert [s.name for s in _calls(spans)] == ["chat on"]  # once: the wrapper left inside theirs passes calls on
    assert "traceparent" not in scripted.headers[0]


def test_after_trace_off_calls_are_not_traced_even_through_a_wrapper_bound_while_on(spans, scripted):
    instrument_openai()
    client = _client(scripted.url)
    raw = client.chat.completions.with_raw_response  # binds create while tracing is on
    uninstrument_openai()
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    raw.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert _calls(spans) == []
    assert all("traceparent" not in h for h in scripted.headers)


def test_a_streamed_answer_is_one_span_ended_when_the_stream_is_used_up(traced_openai, scripted):
    stream = _client(scripted.url).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}
    )
    assert _calls(traced_openai) == []  # open while the answer streams
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    (span,) = _calls(traced_openai)
    assert text == "Hello"
    assert list(span.attributes[C.GEN_AI_RESPONSE_FINISH_REASONS]) == ["length"]
    assert (span.attributes[C.GEN_AI_USAGE_INPUT_TOKENS], span.attributes[C.GEN_AI_USAGE_OUTPUT_TOKENS]) == (5, 2)


def test_content_is_recorded_only_with_trace_on_content(ip, spans, scripted):
    ip.run_line_magic("trace", "on --content")
    _client(scripted.url).chat.completions.create(model="m", messages=[{"role": "user", "content": "hi there"}])
    ip.run_line_magic("trace", "off")
    ip.run_line_magic("trace", "on")
    _client(scripted.url).chat.completions.create(model="m", messages=[{"role": "user", "content": "hi again"}])
    ip.run_line_magic("trace", "off")
    first, second = _calls(spans)
    assert json.loads(first.attributes[C.GEN_AI_INPUT_MESSAGES])[0]["parts"][0]["content"] == "hi there"
    assert json.loads(first.attributes[C.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["content"] == "Hello"
    assert C.GEN_AI_INPUT_MESSAGES not in second.attributes


def test_async_client_calls_are_traced(traced_openai, scripted):
    async def ask():
        client = openai.AsyncOpenAI(base_url=scripted.url, api_key="sk-test", max_retries=0)
        return await client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])

    asyncio.run(ask())
    (span,) = _calls(traced_openai)
    assert (span.name, span.attributes[C.GEN_AI_USAGE_OUTPUT_TOKENS]) == ("chat m", 1)


def test_a_failed_call_records_the_clients_error_type(traced_openai):
    client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-test", max_retries=0, timeout=2)
    with pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    (span,) = _calls(traced_openai)
    assert span.attributes[C.ERROR_TYPE] == "APIConnectionError"


def test_trace_list_and_show_display_the_calls_escaped(ip, spans, scripted):
    ip.run_line_magic("trace", "on")
    with trace("<script>alert(1)</script>"):
        _client(scripted.url).chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    ip.run_line_magic("trace", "off")
    listed = ip.run_line_magic("trace", "list --since 1h")
    assert len(listed) == 1
    shown = ip.run_line_magic("trace", "show")
    html = shown._repr_mimebundle_()[0]["text/html"]
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "chat m" in str(shown) and "5→1" in str(shown)
    assert ip.run_line_magic("trace", f"show {listed.ids[0][:10]}").trace_id == listed.ids[0]


def test_a_bad_subcommand_is_one_usage_error(ip):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match=r"expects a subcommand on\|off\|show\|list, found 'start'"):
        ip.run_line_magic("trace", "start")


def test_the_traceparent_written_is_the_w3c_propagators_with_its_tracestate(spans):
    from opentelemetry import trace as otel_trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    from llmops_magics.tracing.spans import model_call

    w3c = TraceContextTextMapPropagator()
    incoming = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "tracestate": "vendor=x,o=1"}
    with model_call("chat", "m", provider="openai", kind="client", context=w3c.extract(incoming)) as call:
        written = call.headers()
        expected: dict = {}
        w3c.inject(expected, otel_trace.set_span_in_context(call._span))
    assert written == expected and written["tracestate"] == "vendor=x,o=1"
    read = otel_trace.get_current_span(w3c.extract(written)).get_span_context()
    assert (f"{read.trace_id:032x}", f"{read.span_id:016x}") == (call.trace_id, call.span_id)


def test_a_paused_call_goes_straight_to_the_client(traced_openai, scripted):
    from openai import Stream

    from llmops_magics.tracing.provider import paused

    client = _client(scripted.url)
    with paused():
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        stream = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True)
    assert type(stream) is Stream  # the client's own stream, not a traced one holding no span
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Hello"
    assert _calls(traced_openai) == [] and all("traceparent" not in h for h in scripted.headers)
    client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert len(_calls(traced_openai)) == 1 and "traceparent" in scripted.headers[-1]


def test_messages_given_as_a_generator_still_reach_the_server(traced_openai, scripted):
    """The wrapper reads the messages for the span; an iterator read there must not leave the request empty."""
    sent = [{"role": "user", "content": "hi from a generator"}]
    _client(scripted.url).chat.completions.create(model="m", messages=(m for m in sent))
    assert scripted.bodies[0]["messages"] == sent
    assert len(_calls(traced_openai)) == 1


def test_a_tracing_that_cannot_be_set_up_costs_the_span_never_the_call(scripted, monkeypatch):
    from llmops_magics.tracing import provider

    def broken():
        raise ValueError("[tool.llmops.tracing] keep_days must be a number")

    instrument_openai()
    provider.reset()  # the settings are read again on the next call ...
    monkeypatch.setattr(provider, "tracing_settings", broken)  # ... and have become unreadable
    try:
        with pytest.warns(Warning, match="tracing is off for this call"):
            answer = _client(scripted.url).chat.completions.create(
                model="m", messages=[{"role": "user", "content": "hi"}]
            )
    finally:
        uninstrument_openai()
        provider.reset()
    assert answer.choices[0].message.content == "Hello"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_starts_without_its_parents_queued_calls_or_held_lock():
    """An eval's forked workers make spans of their own: the parent's queue and lock are not theirs."""
    from llmops_magics.tracing import deferred

    queued = object()  # stands for a parent's call whose span is not made yet
    with deferred._lock:  # held across the fork, as the background worker might hold it
        deferred._pending.append(queued)
        pid = os.fork()
        if pid == 0:
            os._exit(0 if not deferred._pending and deferred.drain(1.0) and not deferred._lock.locked() else 1)
        _, status = os.waitpid(pid, 0)
        assert deferred._pending[-1] is queued
        deferred._pending.remove(queued)
    assert os.WEXITSTATUS(status) == 0
