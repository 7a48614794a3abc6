"""A deployment record's pid is only signalled while it still names the server that was started.

After a reboot or a crash the number can belong to any other program; ``%deploy
stop`` on such a record must forget the record and leave that program alone.
"""

from __future__ import annotations

import subprocess

import pytest

from llmops_magics.serving import stop_deployment
from llmops_magics.serving.launcher import free_port, process_started
from llmops_magics.serving.liveness import liveness
from llmops_magics.serving.records import NAMESPACE


@pytest.fixture
def stranger():
    proc = subprocess.Popen(["sleep", "300"], start_new_session=True)
    yield proc
    proc.kill()
    proc.wait()


def _record(workspace, name, pid, **extra):
    url = f"http://127.0.0.1:{free_port()}"  # nothing answers there
    state = {"name": name, "pid": pid, "url": url, "engine": "builtin", "status": "running", **extra}
    workspace.registry.put_state(NAMESPACE, name, state)
    return state


def test_stopping_a_record_whose_pid_now_names_another_process_leaves_it_running(workspace, stranger):
    state = _record(workspace, "ghost", stranger.pid, pid_started=process_started(stranger.pid) - 1)
    assert liveness(state).state == "stopped"
    result = stop_deployment("ghost", grace=1.0, workspace=workspace)
    assert result.outcome == "not running" and stranger.poll() is None
    assert workspace.registry.get_state(NAMESPACE, "ghost") is None


def test_a_record_without_a_start_time_is_trusted_only_when_the_server_answers(workspace, stranger):
    _record(workspace, "legacy", stranger.pid)
    stop_deployment("legacy", grace=1.0, workspace=workspace)
    assert stranger.poll() is None


def test_a_record_that_still_names_its_process_is_stopped(workspace, stranger):
    state = _record(workspace, "own", stranger.pid, pid_started=process_started(stranger.pid))
    assert liveness(state).state == "unhealthy"  # alive, ours, but not answering /health
    result = stop_deployment("own", grace=1.0, workspace=workspace)
    assert result.outcome in ("stopped", "killed") and stranger.wait(timeout=5) is not None
