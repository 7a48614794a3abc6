"""``GET /llmops/graph/KIND/NAME/VERSION`` against a real Jupyter server (pytest-jupyter's ``jp_fetch``).

In a file of its own: pytest-jupyter's autouse fixtures (an event loop and a ServerApp per
test) then run only for these tests.
"""

from __future__ import annotations

import json

import pytest
from route_fixtures import *  # noqa: F403
from server_samples import populate


@pytest.fixture
def refs(jp_root_dir, monkeypatch):
    monkeypatch.delenv("LLMOPS_HOME", raising=False)
    return populate(jp_root_dir / ".llmops")


def test_the_graph_of_an_adapter_holds_its_lineage_both_ways(refs, send):
    code, body = send("/llmops/graph/adapter/qa-lora/1")

    assert code == 200, body
    assert body["focus"] == refs["adapter"]
    assert {n["ref"] for n in body["nodes"]} == set(refs.values())
    assert {n["kind"] for n in body["nodes"]} == {"prompt", "dataset", "model", "adapter", "eval", "deployment"}
    assert {(e["src"], e["dst"], e["relation"]) for e in body["edges"]} == {
        (refs["prompt"], refs["adapter"], "prompt"),
        (refs["dataset"], refs["adapter"], "data"),
        (refs["model"], refs["adapter"], "base"),
        (refs["adapter"], refs["eval"], "evaluated"),
        (refs["adapter"], refs["deployment"], "serves"),
    }
    by_ref = {n["ref"]: n for n in body["nodes"]}
    assert "baseline" in by_ref[refs["eval"]]["aliases"]


def test_an_alias_names_the_version_and_depth_bounds_the_walk(refs, send):
    code, body = send("/llmops/graph/prompt/qa/production?depth=1")

    assert code == 200, body
    assert body["focus"] == "prompt://qa/2"
    assert {n["ref"] for n in body["nodes"]} == {"prompt://qa/2", refs["adapter"]}
    assert body["depth"] == 1 and body["truncated"] is True


@pytest.mark.parametrize(
    "path",
    [
        "/llmops/graph/secrets/qa/1",
        "/llmops/graph/prompt/bad%20name/1",
        "/llmops/graph/prompt/%2E%2E/1",
        "/llmops/graph/prompt/qa/0",
        "/llmops/graph/prompt/qa/2?depth=0",
        "/llmops/graph/prompt/qa/2?depth=many",
        "/llmops/graph/prompt/qa/2?depth=51",
    ],
)
def test_a_bad_reference_or_depth_is_a_json_400(refs, send, path):
    code, body = send(path)
    assert code == 400, body
    assert body["reason"] == "invalid" and "Traceback" not in json.dumps(body)


@pytest.mark.parametrize("path", ["/llmops/graph/adapter/nope/1", "/llmops/graph/adapter/qa-lora/7"])
def test_an_unknown_version_is_a_json_404(refs, send, path):
    code, body = send(path)
    assert code == 404, body
    assert body["reason"] == "not found" and body["message"]


def test_the_graph_needs_the_token(refs, send):
    code, _ = send("/llmops/graph/adapter/qa-lora/1", headers={"Authorization": ""})
    assert code == 403
