"""``GET /llmops/audit/KIND/NAME/VERSION`` and a policy refusal of the sidebar's tag route, on a real Jupyter server.

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
    monkeypatch.setenv("LLMOPS_ACTOR", "sample-writer")
    return populate(jp_root_dir / ".llmops")


def test_a_versions_audit_events_name_the_alias_moved_onto_it(refs, send):
    code, body = send("/llmops/audit/prompt/qa/2")
    assert code == 200, body
    assert body["ref"] == "prompt://qa/2"
    (event,) = body["items"]
    assert (event["action"], event["to"], event["actor"]) == ("alias-set", "prompt://qa/2", "sample-writer")
    assert event["detail"] == {"alias": "production"}
    assert send("/llmops/audit/prompt/qa/1")[1]["items"] == []


def test_the_audit_route_needs_the_token(refs, send):
    code, _ = send("/llmops/audit/prompt/qa/2", headers={"Authorization": ""})
    assert code == 403


@pytest.mark.parametrize(
    "path, status",
    [
        ("/llmops/audit/secrets/qa/1", 400),
        ("/llmops/audit/prompt/..%2Fetc/1", 400),
        ("/llmops/audit/prompt/qa/2?limit=0", 400),
        ("/llmops/audit/prompt/qa/9", 404),
        ("/llmops/audit/prompt/nope/1", 404),
    ],
)
def test_bad_audit_requests_are_json_4xx_without_traceback(refs, send, path, status):
    code, body = send(path)
    assert code == status, body
    assert body["message"] and "Traceback" not in json.dumps(body)


def test_the_sidebars_tag_is_refused_by_the_policy_in_one_json_line(refs, send, jp_root_dir, monkeypatch):
    monkeypatch.chdir(jp_root_dir)
    (jp_root_dir / "pyproject.toml").write_text('[tool.llmops.policy.production]\nkinds = ["prompt"]\ncard = true\n')
    code, body = send("/llmops/aliases/prompt/qa/1", method="POST", body=json.dumps({"alias": "production"}))
    assert code == 400, body
    assert "needs a model card" in body["message"] and "\n" not in body["message"]
    assert send("/llmops/artifacts/prompt/qa/2")[1]["aliases"][:2] == ["latest", "production"]
    assert [e["action"] for e in send("/llmops/audit/prompt/qa/1")[1]["items"]] == []
