"""The OpenAI-compatible server, started for real on a free port of 127.0.0.1 (one per module)."""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass

import pytest
import requests
from deploy_support import TEMPLATE, build_folders, module_workspace, register, stop_all

pytestmark = pytest.mark.slow

KEY = "test-key-123"
AUTH = {"Authorization": f"Bearer {KEY}"}
PROMPTS = [
    "The capital of",
    "In Brailand the flag is",
    "People in",
    "The flag of",
    "The national animal of",
    "has a",
    "The capital of Lantalland is",
    "its capital is",
]


@dataclass
class Server:
    ws: object
    refs: object
    handle: object

    @property
    def url(self) -> str:
        return self.handle.url

    def post(self, path: str, body, headers=AUTH, **kw) -> requests.Response:
        data = body if isinstance(body, (bytes, str)) else json.dumps(body)
        return requests.post(self.url + path, data=data, headers={"Content-Type": "application/json", **headers}, **kw)

    def complete(self, **body) -> dict:
        r = self.post("/v1/completions", {"model": "qa", "max_tokens": 12, "temperature": 0, **body})
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from llmops_magics import deploy

    folders = build_folders(str(tmp_path_factory.getbasetemp()))
    with module_workspace(tmp_path_factory.mktemp("deploy-server") / ".llmops") as ws:
        refs = register(ws, folders)
        try:
            handle = deploy(
                refs.adapter, name="qa", api_key=KEY, log_text=True, max_wait_ms=25, threads=1, workspace=ws
            )
            yield Server(ws, refs, handle)
        finally:
            stop_all(ws)


def sse_events(response: requests.Response) -> list:
    out = []
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("data: "):
            data = line[len("data: ") :]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


# ---------------------------------------------------------------------- health, models


def test_health_names_the_deployment_and_the_serving_process(server):
    body = requests.get(server.url + "/health").json()
    assert (body["status"], body["deployment"], body["pid"]) == ("ok", "qa", server.handle.pid)


def test_models_show_the_adapter_its_base_and_the_exact_versions(server):
    data = requests.get(server.url + "/v1/models", headers=AUTH).json()["data"]
    adapter = next(m for m in data if m["id"] == server.refs.adapter)
    assert (adapter["parent"], adapter["llmops"]["base"], adapter["llmops"]["prompt"]) == (
        server.refs.base,
        server.refs.base,
        f"{server.refs.adapter}#prompt_template",
    )


def test_models_list_starts_with_the_deployment_name_clients_send(server):
    data = requests.get(server.url + "/v1/models", headers=AUTH).json()["data"]
    assert data[0]["id"] == "qa" and data[0]["llmops"]["deployment"] == server.handle.ref


# ---------------------------------------------------------------------- completions and chat


def test_completion_returns_text_usage_and_the_version_that_served_it(server):
    body = server.complete(prompt="The capital of")
    usage = body["usage"]
    assert body["object"] == "text_completion" and body["model"] == server.refs.adapter
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] and usage["prompt_tokens"] > 0


def test_completion_headers_name_the_arm_and_version(server):
    r = server.post("/v1/completions", {"model": "qa", "prompt": "The flag of", "max_tokens": 2})
    assert (r.headers["X-LLMOps-Arm"], r.headers["X-LLMOps-Version"]) == ("primary", server.refs.adapter)


def test_variables_fill_the_adapters_training_template_on_the_server(server):
    question = "What is the capital of Brailand?"
    templated = server.complete(variables={"question": question})["choices"][0]["text"]
    raw = server.complete(prompt=TEMPLATE.replace("{{ question }}", question))["choices"][0]["text"]
    assert templated == raw


def test_chat_fills_the_template_with_the_last_user_message(server):
    question = "What color is the flag of Brailand?"
    r = server.post(
        "/v1/chat/completions",
        {"model": "qa", "messages": [{"role": "user", "content": question}], "max_tokens": 12, "temperature": 0},
    )
    expected = server.complete(variables={"question": question})["choices"][0]["text"]
    assert r.json()["choices"][0]["message"] == {"role": "assistant", "content": expected}


def test_a_list_of_prompts_gets_one_choice_each_in_order(server):
    body = server.complete(prompt=PROMPTS[:3])
    singles = [server.complete(prompt=p)["choices"][0]["text"] for p in PROMPTS[:3]]
    assert [c["text"] for c in sorted(body["choices"], key=lambda c: c["index"])] == singles


def test_stop_sequences_cut_the_completion(server):
    full = server.complete(prompt="The capital of", max_tokens=16)["choices"][0]["text"]
    cut = full.strip().split(" ")[1]
    body = server.complete(prompt="The capital of", max_tokens=16, stop=[cut])
    assert body["choices"][0] == {**body["choices"][0], "text": full[: full.index(cut)], "finish_reason": "stop"}


def test_ignore_eos_makes_every_completion_exactly_max_tokens_long(server):
    body = server.complete(prompt=PROMPTS[:4], max_tokens=9, ignore_eos=True)
    assert body["usage"]["completion_tokens"] == 4 * 9
    assert {c["finish_reason"] for c in body["choices"]} == {"length"}


# ---------------------------------------------------------------------- streaming


def test_chat_stream_sends_role_deltas_finish_and_done(server):
    req = {"model": "qa", "messages": [{"role": "user", "content": "What is the capital of Brailand?"}]}
    r = server.post("/v1/chat/completions", {**req, "stream": True, "max_tokens": 12, "temperature": 0}, stream=True)
    events = sse_events(r)
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events[:-1])
    plain = server.post("/v1/chat/completions", {**req, "max_tokens": 12, "temperature": 0}).json()
    assert r.headers["content-type"].startswith("text/event-stream")
    assert events[0]["choices"][0]["delta"]["role"] == "assistant" and events[-1] == "[DONE]"
    assert events[-2]["choices"][0]["finish_reason"] in ("stop", "length")
    assert text == plain["choices"][0]["message"]["content"]


def test_completion_stream_arrives_token_by_token(server):
    # greedy and of a fixed length: a sampled answer could end after a token or two, and the
    # text of tokens made while the event loop was busy goes out as one piece
    body = {"model": "qa", "prompt": "The capital of", "max_tokens": 24, "min_tokens": 24, "temperature": 0}
    r = server.post("/v1/completions", {**body, "stream": True}, stream=True)
    pieces = [e["choices"][0]["text"] for e in sse_events(r)[:-1] if e["choices"][0]["text"]]
    assert len(pieces) > 1


def test_stream_ends_with_usage_when_asked(server):
    body = {"model": "qa", "prompt": "The flag of", "max_tokens": 5, "stream": True}
    r = server.post("/v1/completions", {**body, "stream_options": {"include_usage": True}}, stream=True)
    events = sse_events(r)
    assert events[-2]["choices"] == [] and events[-2]["usage"]["completion_tokens"] >= 0


# ---------------------------------------------------------------------- the official openai client


def test_openai_client_completes_chats_and_streams_unchanged(server):
    from openai import OpenAI

    client = OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0)
    completion = client.completions.create(model="qa", prompt="The capital of", max_tokens=8, temperature=0)
    chat = client.chat.completions.create(
        model="qa",
        messages=[{"role": "user", "content": "What is the capital of Brailand?"}],
        max_tokens=8,
        temperature=0,
    )
    stream = client.chat.completions.create(
        model="qa",
        messages=[{"role": "user", "content": "What is the capital of Brailand?"}],
        max_tokens=8,
        temperature=0,
        stream=True,
    )
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert completion.choices[0].text == server.complete(prompt="The capital of", max_tokens=8)["choices"][0]["text"]
    assert streamed == chat.choices[0].message.content and chat.usage.total_tokens > 0


def test_openai_client_sends_variables_through_extra_body(server):
    from openai import OpenAI

    client = OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0)
    vars_ = {"question": "What is the capital of Brailand?"}
    out = client.completions.create(
        model="qa", prompt=None, max_tokens=8, temperature=0, extra_body={"variables": vars_}
    )
    assert out.choices[0].text == server.complete(variables=vars_, max_tokens=8)["choices"][0]["text"]


def test_openai_client_lists_models(server):
    from openai import OpenAI

    client = OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0)
    assert {m.id for m in client.models.list()} == {"qa", server.refs.adapter}


def test_openai_client_raises_authentication_error_for_a_wrong_key(server):
    import openai

    client = openai.OpenAI(base_url=server.url + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.completions.create(model="qa", prompt="x", max_tokens=1)


# ---------------------------------------------------------------------- errors: OpenAI's shape, 4xx


ERRORS = {
    "no api key": (b'{"model": "qa", "prompt": "x"}', {}, 401, "invalid_api_key", None),
    "wrong api key": (
        b'{"model": "qa", "prompt": "x"}',
        {"Authorization": "Bearer nope"},
        401,
        "invalid_api_key",
        None,
    ),
    "malformed json": (b'{"model": "qa", "prompt": ', AUTH, 400, "invalid_json", None),
    "json that is not an object": (b'["qa"]', AUTH, 400, None, None),
    "missing model": (b'{"prompt": "x"}', AUTH, 400, "missing_field", "model"),
    "missing prompt": (b'{"model": "qa"}', AUTH, 400, None, "prompt"),
    "wrong type": (b'{"model": "qa", "prompt": "x", "max_tokens": "5"}', AUTH, 400, "invalid_value", "max_tokens"),
    "out of range": (b'{"model": "qa", "prompt": "x", "temperature": 7}', AUTH, 400, "invalid_value", "temperature"),
    "unknown model": (b'{"model": "gpt-4", "prompt": "x"}', AUTH, 404, "model_not_found", "model"),
    "too long input": (
        json.dumps({"model": "qa", "prompt": "The capital of Brailand is Tro. " * 60}).encode(),
        AUTH,
        400,
        "context_length_exceeded",
        "prompt",
    ),
    "too many tokens asked": (
        b'{"model": "qa", "prompt": "x", "max_tokens": 5000}',
        AUTH,
        400,
        "context_length_exceeded",
        "max_tokens",
    ),
    "unknown template variable": (
        b'{"model": "qa", "variables": {"q": "x"}}',
        AUTH,
        400,
        "invalid_variables",
        "variables",
    ),
    "echo with stream": (b'{"model": "qa", "prompt": "x", "echo": true, "stream": true}', AUTH, 400, None, "echo"),
}


@pytest.mark.parametrize("case", list(ERRORS), ids=lambda c: c.replace(" ", "-"))
def test_bad_completion_requests_get_openai_error_json(server, case):
    body, headers, status, code, param = ERRORS[case]
    r = server.post("/v1/completions", body, headers=headers)
    error = r.json()["error"]
    assert (r.status_code, error["code"], error["param"]) == (status, code, param)
    assert error["message"] and error["type"] == "invalid_request_error"


def test_chat_without_messages_is_a_400_naming_messages(server):
    r = server.post("/v1/chat/completions", {"model": "qa"})
    assert (r.status_code, r.json()["error"]["param"]) == (400, "messages")


def test_a_body_over_the_size_limit_is_413(server):
    r = server.post("/v1/completions", b'{"model": "qa", "prompt": "' + b"x" * 1_100_000 + b'"}')
    assert (r.status_code, r.json()["error"]["code"]) == (413, "request_too_large")


@pytest.mark.parametrize("path", ["/v1/completions", "/v1/chat/completions"])
@pytest.mark.parametrize(
    "body",
    [
        b"[" * 10_000 + b"]" * 10_000,
        b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
        b'{"model": "qa", "x": ' + b"[" * 500 + b"]" * 500 + b"}",
    ],
    ids=["arrays-10000", "objects-10000", "in-a-field-500"],
)
def test_a_deeply_nested_body_is_a_400_before_it_is_parsed(server, path, body):
    r = server.post(path, body)
    error = r.json()["error"]
    assert (r.status_code, error["code"], error["type"]) == (400, "invalid_json", "invalid_request_error")
    assert "nested more than 64 levels" in error["message"]


def test_nesting_inside_a_string_is_text_not_structure(server):
    r = server.post("/v1/completions", {"model": "qa", "prompt": "[{" * 40, "max_tokens": 2})
    assert r.status_code == 200, r.text


def test_an_unknown_url_is_a_404_in_openai_shape(server):
    r = requests.get(server.url + "/v1/engines", headers=AUTH)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "unknown_url")


def test_a_wrong_method_is_a_405_in_openai_shape(server):
    r = requests.get(server.url + "/v1/completions", headers=AUTH)
    assert r.status_code == 405 and "error" in r.json()


# ---------------------------------------------------------------------- monitoring


def _families(url: str) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    text = requests.get(url + "/metrics").text
    return {f.name: f for f in text_string_to_metric_families(text)}


def _count(families: dict, status: str) -> float:
    return sum(
        s.value
        for s in families["llmops_requests"].samples
        if s.name == "llmops_requests_total" and s.labels["status"] == status and s.labels["endpoint"] == "completions"
    )


def test_metrics_parse_and_count_requests_by_status(server):
    before = _families(server.url)
    server.complete(prompt="The flag of", max_tokens=2)
    server.post("/v1/completions", {"model": "nope", "prompt": "x"})
    after = _families(server.url)
    assert _count(after, "200") - _count(before, "200") == 1
    assert _count(after, "404") - _count(before, "404") == 1


def test_metrics_expose_latency_ttft_tokens_batch_size_and_queue_depth(server):
    server.complete(prompt="The flag of", max_tokens=2)
    families = _families(server.url)
    expected = {
        "gen_ai_server_request_duration_seconds": "histogram",
        "gen_ai_server_time_to_first_token_seconds": "histogram",
        "gen_ai_server_time_per_output_token_seconds": "histogram",
        "llmops_request_queue_time_seconds": "histogram",
        "llmops_tokens": "counter",
        "llmops_batch_size": "histogram",
        "llmops_queue_depth": "gauge",
    }
    assert {name: families[name].type for name in expected} == expected


def test_every_request_is_logged_with_latency_tokens_status_version_and_text(server):
    from llmops_magics.serving.requestlog import read_requests

    rid = server.post("/v1/completions", {"model": "qa", "prompt": "People in", "max_tokens": 3}).headers[
        "X-Request-Id"
    ]
    deadline = time.monotonic() + 20  # the log writer flushes every 0.25 s
    while not (
        rows := [r for r in read_requests(server.handle.state["monitor_db"], with_text=True) if r["request_id"] == rid]
    ):
        assert time.monotonic() < deadline, "the request never reached the log"
        time.sleep(0.05)
    row = rows[0]
    assert (row["status"], row["version"], row["input_text"]) == (200, server.refs.adapter, "People in")
    assert row["latency_ms"] > 0 and row["prompt_tokens"] > 0 and row["ts"] > time.time() - 60


# ---------------------------------------------------------------------- batching, load, fuzz


async def _concurrent(url: str, bodies: list[dict]) -> list:
    import httpx

    async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=120) as client:
        return await asyncio.gather(*(client.post("/v1/completions", json=b) for b in bodies))


def test_concurrent_greedy_answers_equal_one_at_a_time_answers(server):
    bodies = [{"model": "qa", "prompt": p, "max_tokens": 10, "temperature": 0} for p in PROMPTS]
    alone = [server.complete(**{k: v for k, v in b.items() if k != "model"}) for b in bodies]
    together = asyncio.run(_concurrent(server.url, bodies))
    assert max(int(r.headers["X-LLMOps-Batch-Size"]) for r in together) > 1
    assert [r.json()["choices"][0]["text"] for r in together] == [a["choices"][0]["text"] for a in alone]


def test_sixteen_concurrent_clients_finish_a_fixed_request_count_without_errors(server):
    import httpx

    async def client_loop(client, i):
        statuses = []
        for j in range(6):
            prompt = PROMPTS[(i + j) % len(PROMPTS)]
            r = await client.post("/v1/completions", json={"model": "qa", "prompt": prompt, "max_tokens": 8})
            statuses.append(r.status_code)
        return statuses

    async def run():
        async with httpx.AsyncClient(base_url=server.url, headers=AUTH, timeout=120) as client:
            return await asyncio.gather(*(client_loop(client, i) for i in range(16)))

    statuses = [s for per_client in asyncio.run(run()) for s in per_client]
    assert (len(statuses), set(statuses)) == (96, {200})


def _mutations(rng: random.Random) -> list[bytes]:
    valid = {"model": "qa", "prompt": "The capital of", "max_tokens": 4, "temperature": 0}
    values = [None, True, -1, 0, 10**12, 2**70, 1.5e308, "", [""], "x" * 50, [], {}, [1, "a"], {"a": {"b": []}}]
    values += ["\u0000", "😀", "\udcff", [{"role": "user", "content": ""}], [{"role": "user", "content": "\udcff"}]]
    bodies = [b"", b"null", b"{", b"}", b"[]", b'"str"', b"\xff\xfe\x00", b"{" * 5000 + b"}" * 5000, b"NaN"]
    for _ in range(150):
        body = dict(valid)
        for _ in range(rng.randint(1, 3)):
            key = rng.choice([*valid, "messages", "stop", "n", "stream", "variables", "user", "seed", "top_p"])
            if rng.random() < 0.2:
                body.pop(key, None)
            else:
                body[key] = rng.choice(values)
        raw = json.dumps(body).encode()
        if rng.random() < 0.2:
            cut = rng.randrange(len(raw))
            raw = raw[:cut] + bytes([rng.randrange(256)]) + raw[cut + 1 :]
        bodies.append(raw)
    return bodies


@pytest.mark.parametrize("prompt", ["", [""]])
def test_an_empty_prompt_is_continued_from_the_start_token(server, prompt):
    resp = server.post("/v1/completions", {"model": "qa", "prompt": prompt, "max_tokens": 3})
    assert resp.status_code == 200 and resp.json()["usage"]["prompt_tokens"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {"model": "qa", "prompt": "\udcff"},
        {"model": "qa", "prompt": "x", "user": "\udcff"},
        {"model": "qa", "messages": [{"role": "user", "content": "\udcff"}]},
        {"model": "qa", "prompt": "x", "temperature": 1, "seed": 2**70},
    ],
    ids=["surrogate-prompt", "surrogate-user", "surrogate-chat", "huge-seed"],
)
def test_text_no_encoder_can_take_and_seeds_torch_cannot_take_are_400s(server, body):
    path = "/v1/chat/completions" if "messages" in body else "/v1/completions"
    resp = server.post(path, body)
    assert resp.status_code == 400 and resp.json()["error"]["type"] == "invalid_request_error"


def test_fuzzed_bodies_never_get_a_5xx_and_the_server_keeps_answering(server):
    rng = random.Random(5)
    statuses = []
    for raw in _mutations(rng):
        for path in ("/v1/completions", "/v1/chat/completions"):
            statuses.append(server.post(path, raw, timeout=60).status_code)
    assert max(statuses) < 500 and requests.get(server.url + "/health").status_code == 200
