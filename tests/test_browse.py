"""The core queries behind the sidebar (``llmops_magics.adapters.jupyter.browse``), without a server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from llmops_magics.adapters.jupyter.browse import Browser
from llmops_magics.errors import NotFoundError, ValidationError
from llmops_magics.kinds import codec
from llmops_magics.serving.launcher import process_started
from llmops_magics.serving.liveness import describe


@pytest.fixture
def reg(workspace):
    return workspace.registry


def _codes(art):
    return {c["id"]: c["code"] for c in codec(art.kind).snippets(art)}


def test_an_eval_loads_into_a_variable_that_does_not_shadow_the_builtin(reg):
    art = reg.save("eval", "score", data=b"x").artifact
    assert 'evaluation = llmops_magics.get_eval("eval://score/1")' in _codes(art)["load"]


def test_an_artifact_with_a_recorded_call_reproduces_by_replaying_it(reg):
    spec = {"op": "prompt", "args": {"name": "p", "template": "Hi {{ x }}"}, "command": "%%prompt p --alias prod"}
    art = reg.save("prompt", "p", data=b"x", spec=spec).artifact
    assert _codes(art)["reproduce"] == 'import llmops_magics\n\nllmops_magics.replay("prompt://p/1")'


def test_an_artifact_without_a_recorded_call_offers_no_reproduce(reg):
    art = reg.save("model", "m", data=b"x").artifact
    assert set(_codes(art)) == {"load"}


def test_a_deployment_on_another_host_is_not_probed():
    status = describe({"pid": os.getpid(), "host": "gpu-box-17", "url": "http://gpu-box-17:8000"}, key="svc")
    assert status["alive"] is None and status["health"] is None and status["state"] == "unknown"


def test_a_deployment_whose_process_is_gone_is_stopped():
    pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True).stdout)
    status = describe({"pid": pid, "url": "http://127.0.0.1:9"}, key="svc")
    assert status["alive"] is False and status["state"] == "stopped" and status["health"] is None


def test_a_live_process_of_its_own_that_does_not_answer_is_unhealthy():
    status = describe({"pid": os.getpid(), "pid_started": process_started(os.getpid())}, key="svc")
    assert (status["state"], status["alive"], status["health"]) == ("unhealthy", True, "unreachable")


def test_a_live_pid_that_cannot_be_proven_its_own_counts_as_stopped():
    assert describe({"pid": os.getpid()}, key="svc")["state"] == "stopped"


def test_a_deployment_record_with_odd_fields_is_tolerated():
    status = describe({"pid": "12", "url": 5, "started_at": "yesterday"}, key="svc")
    assert status["state"] == "unknown" and status["name"] == "svc" and status["uptime_s"] is None


def test_the_sidebar_shows_latest_where_a_return_to_older_content_moved_it(reg, workspace):
    for data in (b"A", b"B", b"A"):
        reg.save("prompt", "p", data=data)
    detail = Browser(workspace.home).artifact("prompt", "p")
    assert detail["aliases"]["latest"] == detail["latest"]["version"] == 1
    assert [v["version"] for v in detail["versions"]] == [2, 1]


def test_browsing_a_folder_without_registry_creates_nothing(tmp_path):
    home = tmp_path / "nowhere" / ".llmops"
    browser = Browser(home)
    assert browser.list_artifacts()["total"] == 0
    assert browser.changes()["changes"] == 0
    assert browser.deployments() == {"items": []}
    with pytest.raises(NotFoundError):
        browser.artifact("prompt", "qa")
    assert not home.exists()


def test_pages_are_bounded(reg):
    browser = Browser(reg.home)
    with pytest.raises(ValidationError):
        browser.list_artifacts(limit=10_000)
    with pytest.raises(ValidationError):
        browser.list_artifacts(search="x" * 500)
