"""An OpenAI-compatible endpoint as the eval target, against a real HTTP server on 127.0.0.1 (and a real ``%deploy``)."""

from __future__ import annotations

import threading

import pytest
from eval_support import OpenAIServer

import llmops_magics
from llmops_magics import evaluate
from llmops_magics.errors import EndpointError

KEY = "sk-test-123"
OPTIONS = dict(data="qa-task", limit=6, max_new_tokens=6, metrics=["exact_match", "tokens"], prompt="qa")


class CountingServer(OpenAIServer):
    """Also counts how many requests were in flight at once."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.in_flight = 0
        self.max_in_flight = 0
        self._count_lock = threading.Lock()

    def complete(self, prompt, body):
        with self._count_lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return super().complete(prompt, body)
        finally:
            with self._count_lock:
                self.in_flight -= 1


@pytest.fixture(scope="module")
def server(eval_models):
    with CountingServer(eval_models.adapter, api_key=KEY) as s:
        yield s


@pytest.fixture
def qa_ws(eval_ws):
    llmops_magics.save_prompt("qa", "Question: {{ question }}\nAnswer:")
    llmops_magics.save_prompt("qa-chat", "system:\nAnswer in one word.\nuser:\nQuestion: {{ question }}\nAnswer:")
    return eval_ws


def test_an_endpoint_gives_the_same_answers_as_the_same_model_run_locally(qa_ws, server, eval_models):
    remote = evaluate(server.url, api_key=KEY, **OPTIONS).wait()
    local = evaluate(str(eval_models.adapter), **OPTIONS).wait()
    assert remote.df["output"].tolist() == local.df["output"].tolist()


def test_text_prompts_are_posted_to_the_completions_route_with_the_generation_parameters(qa_ws, server):
    server.requests.clear()
    evaluate(server.url, api_key=KEY, **{**OPTIONS, "limit": 1}).wait()
    (request,) = server.requests
    assert request["path"] == "/v1/completions"
    assert (request["model"], request["max_tokens"], request["temperature"]) == ("tiny", 6, 0.0)


def test_chat_prompts_are_posted_to_the_chat_completions_route_as_messages(qa_ws, server):
    server.requests.clear()
    evaluate(server.url, api_key=KEY, **{**OPTIONS, "limit": 1, "prompt": "qa-chat"}).wait()
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert [m["role"] for m in request["messages"]] == ["system", "user"]


def test_requests_run_concurrently_up_to_the_batch_size(qa_ws, server):
    server.max_in_flight = 0
    evaluate(server.url, api_key=KEY, batch_size=3, **{**OPTIONS, "limit": 12}).wait()
    assert 1 < server.max_in_flight <= 3


def test_token_counts_come_from_the_servers_usage(qa_ws, server):
    result = evaluate(server.url, api_key=KEY, **OPTIONS).wait()
    assert (result.df["prompt_tokens"] > 0).all()


def test_a_missing_api_key_is_reported_with_the_servers_answer(qa_ws, server):
    with pytest.raises(EndpointError, match=r"HTTP 401.*invalid api key"):
        evaluate(server.url, **OPTIONS).wait()


def test_endpoint_answers_are_not_cached(qa_ws, server):
    evaluate(server.url, api_key=KEY, **OPTIONS).wait()
    assert evaluate(server.url, api_key=KEY, **OPTIONS).wait().cache_hits == 0


def test_the_api_key_is_never_stored_in_the_spec(qa_ws, server):
    result = evaluate(server.url, api_key=KEY, **OPTIONS).wait()
    assert KEY not in str(result.artifact.to_dict())
    assert result.artifact.spec["args"]["api_key"] == "***"


def test_an_endpoint_base_url_with_v1_is_the_same_target(qa_ws, server):
    result = evaluate(server.url + "/v1/", api_key=KEY, **OPTIONS).wait()
    assert result.targets[0]["model"] == server.url


def test_an_endpoint_eval_has_lineage_to_its_data_and_prompt(qa_ws, server):
    result = evaluate(server.url, api_key=KEY, **OPTIONS).wait()
    edges = {(e.source, e.relation) for e in qa_ws.registry.upstream(result.ref, depth=1)}
    assert edges == {("dataset://qa-task/1", "data"), ("prompt://qa/1", "prompt")}


def test_an_eval_of_a_deployment_links_to_it_and_is_named_after_it(qa_ws):
    from llmops_magics import deploy

    handle = deploy("adapter://qa-lora", name="qa", threads=1, max_batch_size=2, default_max_tokens=4)
    try:
        result = evaluate(handle.url, **{**OPTIONS, "limit": 2, "max_new_tokens": 2}).wait()
    finally:
        handle.stop()
    edges = {(e.source, e.relation) for e in qa_ws.registry.upstream(result.ref, depth=1)}
    assert (handle.ref, "deployment") in edges
    assert result.ref == "eval://qa-task-qa.1/1"
    assert result.targets[0]["model"] == handle.url  # what a replay passes


def test_only_a_deployment_serving_this_registrys_artifacts_is_linked(qa_ws, server):
    deployment = qa_ws.registry.save("deployment", "qa", data=b'{"target": "adapter://qa-lora/1"}').artifact
    adapter = qa_ws.adapter

    def listing(digest):
        head = {"id": "qa", "object": "model", "llmops": {"deployment": deployment.ref}}
        arm = {"id": adapter.ref, "object": "model", "llmops": {"arm": "primary", "version": adapter.ref}}
        arm["llmops"]["digest"] = digest
        return [head, arm]

    linked = []
    for digest in (adapter.digest, "0" * 64):
        server.models = listing(digest)
        try:
            result = evaluate(server.url, api_key=KEY, **{**OPTIONS, "limit": 1}).wait()
        finally:
            server.models = [{"id": "tiny", "object": "model"}]
        linked.append(any(e.relation == "deployment" for e in qa_ws.registry.upstream(result.ref, depth=1)))
    assert linked == [True, False]
