"""Reading deployments: list, status, logs, and the snapshot the monitor panel polls.

Everything here works from a fresh process (a restarted kernel, the CLI): the
state record says where the server is, the request log what it has done.
"""

from __future__ import annotations

import time
from typing import Any

from ..context.workspaces import Workspace, current
from ..display.result_charts import request_timeline
from .launcher import tail
from .liveness import liveness
from .records import NAMESPACE, require_state
from .requestlog import logs_requests, no_log_message, read_requests
from .stats import summarize
from .views import Deployment, DeploymentList, DeploymentStatus, LogTail

__all__ = ["list_deployments", "deployment_status", "deployment_logs", "get_deployment", "monitor_snapshot"]


def _refresh(ws: Workspace, state: dict[str, Any], timeout: float = 2.0) -> tuple[dict[str, Any], dict | None]:
    """The state with ``status`` set to what the process says now (and stored if it changed)."""
    live = liveness(state, timeout)
    status, health = live.state, live.health
    if state.get("status") != status and state.get("status") != "starting":
        state = {**state, "status": status}
        ws.registry.put_state(NAMESPACE, state["name"], state)
    return {**state, "status": status}, health


def list_deployments(*, workspace: Workspace | None = None) -> DeploymentList:
    """Every deployment the registry knows, with whether it is alive now."""
    ws = workspace or current()
    return DeploymentList([_refresh(ws, s, 1.0)[0] for s in ws.registry.list_state(NAMESPACE).values()])


def get_deployment(name: str, *, api_key: str | None = None, workspace: Workspace | None = None) -> Deployment:
    """A handle on a deployment started earlier (in this kernel or another)."""
    ws = workspace or current()
    state, _ = _refresh(ws, require_state(ws.registry, name))
    art = ws.registry.resolve(state["ref"]) if state.get("ref") else None
    return Deployment(name, state, art, ws, api_key)


def deployment_status(name: str, *, window_s: float = 300.0, workspace: Workspace | None = None) -> DeploymentStatus:
    """Alive or not, the versions served, and latency/throughput/errors over the last ``window_s`` seconds."""
    ws = workspace or current()
    state, health = _refresh(ws, require_state(ws.registry, name))
    now = time.time()
    if not logs_requests(state):
        note = no_log_message(name, "there are no latency, throughput or error figures")
        return DeploymentStatus(name, state, state["status"], health, summarize([], window_s), window_s, None, note)
    rows = read_requests(state["monitor_db"], since=now - window_s)
    timeline = request_timeline(rows, window_s, now=now)
    summary = summarize(rows, window_s, fallback=state.get("target"))  # old rows: the target, as the monitor does
    return DeploymentStatus(name, state, state["status"], health, summary, window_s, timeline)


def deployment_logs(name: str, *, lines: int = 50, workspace: Workspace | None = None) -> LogTail:
    """The last ``lines`` of the server's stdout/stderr."""
    ws = workspace or current()
    state = require_state(ws.registry, name)
    return LogTail(name, state["log_path"], tail(state["log_path"], lines))


def monitor_snapshot(name: str, *, window_s: float = 60.0, workspace: Workspace | None = None) -> dict[str, Any]:
    """What the monitor panel shows: liveness, and the summary of the last ``window_s`` seconds."""
    ws = workspace or current()
    state = ws.registry.get_state(NAMESPACE, name)
    if state is None:
        return {"name": name, "status": "stopped", "state": None, "summary": summarize([], window_s)}
    live = liveness(state, timeout=1.0)
    status, health = live.state, live.health
    logged = logs_requests(state)
    rows = read_requests(state["monitor_db"], since=time.time() - window_s) if logged else []
    return {
        "name": name,
        "status": status,
        "state": state,
        "health": health,
        "summary": summarize(rows, window_s, fallback=state.get("target")),
        "note": None if logged else no_log_message(name, "this panel has no figures to show"),
        "window_s": window_s,
        "at": time.time(),
    }
