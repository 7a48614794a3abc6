"""``--engine ray``: the same deployment on a real local Ray Serve (slow: Ray starts ~10 processes)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests
from deploy_support import build_folders, module_workspace, register, stop_all

pytest.importorskip("ray.serve", reason="ray[serve] is not installed (pip install 'llmops-magics[ray]')")

pytestmark = pytest.mark.slow


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` (Ray's actors run in process groups of their own)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in out:
                out.add(child)
                todo.append(child)
    return out


@pytest.fixture(scope="module")
def ray_served(tmp_path_factory):
    from llmops_magics import deploy

    folders = build_folders(str(tmp_path_factory.getbasetemp()))
    with module_workspace(tmp_path_factory.mktemp("deploy-ray") / ".llmops") as ws:
        refs = register(ws, folders)
        try:
            handle = deploy(refs.adapter, name="rayqa", engine="ray", threads=1, timeout=300, workspace=ws)
            yield {"ws": ws, "refs": refs, "handle": handle}
        finally:
            stop_all(ws)


def test_ray_serve_answers_completions_like_the_builtin_engine(ray_served):
    body = ray_served["handle"].complete(variables={"question": "What is the capital of Brailand?"}, max_tokens=6)
    assert body["model"] == ray_served["refs"].adapter and body["llmops"]["arm"] == "primary"


def test_ray_serve_health_comes_from_a_replica_not_the_driver(ray_served):
    health = requests.get(ray_served["handle"].url + "/health").json()
    assert health["engine"] == "ray" and health["pid"] != ray_served["handle"].pid


def test_the_ray_deployment_is_recorded_like_any_other(ray_served):
    state = ray_served["ws"].registry.get_state("deployments", "rayqa")
    assert (state["engine"], state["status"], state["url"]) == ("ray", "running", ray_served["handle"].url)


def test_stopping_leaves_none_of_its_ray_processes_running(ray_served):
    from llmops_magics.serving import stop_deployment

    pid = ray_served["handle"].pid
    spawned = descendants(pid)
    result = stop_deployment("rayqa", workspace=ray_served["ws"])
    alive = [p for p in spawned | {pid} if os.path.exists(f"/proc/{p}") and "Z" not in _state(p)]
    assert len(spawned) > 3 and result.outcome in ("stopped", "killed") and alive == []


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"
