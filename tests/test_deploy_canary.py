"""A/B traffic split: a canary added to a running deployment, sticky per user, then promoted."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from deploy_support import build_folders, module_workspace, register, stop_all

pytestmark = pytest.mark.slow

KEY = "ab-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


class Poller(threading.Thread):
    """Calls the deployment without pause, recording every outcome, until stopped."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.outcomes, self.halt = url, [], threading.Event()

    def run(self) -> None:
        with requests.Session() as s:
            while not self.halt.is_set():
                try:
                    body = {"model": "ab", "prompt": "The capital of", "max_tokens": 1}
                    self.outcomes.append(
                        s.post(self.url + "/v1/completions", json=body, headers=AUTH, timeout=30).status_code
                    )
                except requests.RequestException as exc:
                    self.outcomes.append(type(exc).__name__)
                time.sleep(0.02)


@pytest.fixture(scope="module")
def canary(tmp_path_factory):
    """``ab`` serving qa-lora/1, then given qa-lora/2 as a 30% canary while a client keeps calling it."""
    from llmops_magics import deploy
    from llmops_magics.serving import set_canary

    folders = build_folders(str(tmp_path_factory.getbasetemp()))
    with module_workspace(tmp_path_factory.mktemp("deploy-canary") / ".llmops") as ws:
        refs = register(ws, folders)
        try:
            first = deploy(refs.adapter, name="ab", threads=1, api_key=KEY, workspace=ws)
            poller = Poller(first.url)
            poller.start()
            second = set_canary("ab", f"{refs.adapter_v2}:30%", workspace=ws)
            time.sleep(0.5)
            poller.halt.set()
            poller.join()
            yield {"ws": ws, "refs": refs, "first": first, "handle": second, "outcomes": poller.outcomes}
        finally:
            stop_all(ws)


def call(url: str, user: str | None = None, model: str = "ab") -> requests.Response:
    body = {"model": model, "prompt": "The flag of", "max_tokens": 1, **({"user": user} if user else {})}
    r = requests.post(url + "/v1/completions", json=body, headers=AUTH, timeout=60)
    assert r.status_code == 200, r.text
    return r


def versions_for(url: str, users: list[str]) -> list[str]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda u: call(url, u).headers["X-LLMOps-Version"], users))


def test_the_handle_a_canary_returns_still_carries_the_key_it_was_deployed_with(canary):
    assert canary["handle"].api_key == KEY
    assert canary["handle"].complete("The flag of", max_tokens=1)["object"] == "text_completion"


def test_adding_a_canary_keeps_the_url(canary):
    assert canary["handle"].url == canary["first"].url


def test_clients_saw_no_failure_while_the_canary_replaced_the_process(canary):
    assert len(canary["outcomes"]) > 10 and set(canary["outcomes"]) == {200}


def test_the_canary_serves_close_to_its_share_of_users(canary):
    served = versions_for(canary["handle"].url, [f"user-{i}" for i in range(300)])
    share = served.count(canary["refs"].adapter_v2) / len(served)
    assert 0.2 < share < 0.4


def test_a_user_always_gets_the_same_version(canary):
    users = [f"sticky-{i}" for i in range(20)]
    rounds = [versions_for(canary["handle"].url, users) for _ in range(3)]
    assert rounds[0] == rounds[1] == rounds[2] and len(set(rounds[0])) == 2


def test_responses_say_which_version_served_them(canary):
    r = call(canary["handle"].url, "someone")
    body = r.json()
    assert r.headers["X-LLMOps-Version"] == body["model"] == body["llmops"]["version"]
    assert body["llmops"]["arm"] == ("canary" if body["model"] == canary["refs"].adapter_v2 else "primary")


def test_sending_a_versions_ref_as_model_pins_that_version(canary):
    versions = {call(canary["handle"].url, f"u{i}", model=canary["refs"].adapter_v2).json()["model"] for i in range(8)}
    assert versions == {canary["refs"].adapter_v2}


def test_metrics_count_requests_per_arm(canary):
    from prometheus_client.parser import text_string_to_metric_families

    versions_for(canary["handle"].url, [f"m{i}" for i in range(20)])
    text = requests.get(canary["handle"].url + "/metrics").text
    family = next(f for f in text_string_to_metric_families(text) if f.name == "llmops_requests")
    arms = {s.labels["arm"] for s in family.samples if s.name == "llmops_requests_total" and s.value > 0}
    assert arms == {"primary", "canary"}


def test_models_show_both_versions_with_their_weights(canary):
    data = requests.get(canary["handle"].url + "/v1/models", headers=AUTH).json()["data"]
    weights = {m["id"]: m["llmops"]["weight"] for m in data[1:]}
    assert weights == {canary["refs"].adapter: 70.0, canary["refs"].adapter_v2: 30.0}


def test_the_canary_version_is_a_new_deployment_version_linked_to_both_adapters(canary):
    reg = canary["ws"].registry
    edges = {(e.source, e.relation) for e in reg.upstream(canary["handle"].ref, depth=1)}
    assert canary["handle"].ref == "deployment://ab/2" and "canary" in reg.resolve("deployment://ab/2").aliases
    assert edges == {(canary["refs"].adapter, "serves"), (canary["refs"].adapter_v2, "canary")}


@pytest.fixture(scope="module")
def promoted(canary):
    from llmops_magics.serving import promote_deployment

    return promote_deployment("ab", workspace=canary["ws"])


def test_promote_serves_only_the_promoted_version(canary, promoted):
    served = versions_for(promoted.url, [f"p{i}" for i in range(30)])
    assert set(served) == {canary["refs"].adapter_v2} and promoted.url == canary["handle"].url
    assert promoted.api_key == KEY


def test_promote_moves_production_to_the_promoted_adapter_and_deployment_version(canary, promoted):
    reg = canary["ws"].registry
    assert reg.resolve("adapter://qa-lora@production").ref == canary["refs"].adapter_v2
    assert reg.resolve("deployment://ab@production").ref == promoted.ref == "deployment://ab/3"
