"""Is a deployment alive? One answer for ``%deploy list``, ``deployment_status`` and the sidebar.

A state record names a pid, the pid's start time and a URL. A deployment is

- ``running``: its process is ours (same pid *and* start time, so a recycled pid never
  counts) and ``/health`` answers as this deployment;
- ``unhealthy``: the process is ours but does not answer;
- ``stopped``: the process is gone (or the pid now belongs to something else);
- ``unknown``: it cannot be checked from here (another host, a malformed record).

Records written before start times were kept are proven by a ``/health`` answer that
names the deployment and the pid.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .launcher import pid_alive, probe, process_started

__all__ = ["Liveness", "liveness", "owns_pid", "describe", "STATES"]

STATES = ("running", "unhealthy", "stopped", "unknown")
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0", ""}


@dataclass(frozen=True)
class Liveness:
    state: str
    health: Mapping[str, Any] | None = None  # the /health payload when running

    @property
    def alive(self) -> bool | None:
        """True/False where the process could be checked, None where it could not."""
        return None if self.state == "unknown" else self.state != "stopped"


def _pid(record: Mapping[str, Any]) -> int | None:
    pid = record.get("pid")
    return pid if isinstance(pid, int) and not isinstance(pid, bool) and pid > 0 else None


def _local(record: Mapping[str, Any]) -> bool:
    host = record.get("host")
    return not isinstance(host, str) or host in _LOCAL_HOSTS or host == socket.gethostname()


def _served_pid(record: Mapping[str, Any]) -> int | None:
    """The pid ``/health`` must report: the built-in server answers itself; other engines do not."""
    return _pid(record) if record.get("engine", "builtin") == "builtin" else None


def owns_pid(record: Mapping[str, Any]) -> bool:
    """The recorded pid is alive and still the process this deployment started."""
    pid = _pid(record)
    if pid is None or not pid_alive(pid):
        return False
    recorded, now = record.get("pid_started"), process_started(pid)
    if recorded is not None and now is not None:
        return recorded == now
    url = record.get("url") if isinstance(record.get("url"), str) else None
    return probe(url, record.get("name"), _served_pid(record)) is not None


def liveness(record: Mapping[str, Any], timeout: float = 2.0) -> Liveness:
    if _pid(record) is None or not _local(record):
        return Liveness("unknown")
    if not owns_pid(record):
        return Liveness("stopped")
    url = record.get("url") if isinstance(record.get("url"), str) else None
    health = probe(url, record.get("name"), _served_pid(record), timeout=timeout)
    return Liveness("running", health) if health is not None else Liveness("unhealthy")


def describe(record: Mapping[str, Any], probe_timeout: float = 0.5, key: str | None = None) -> dict[str, Any]:
    """A JSON-ready record with ``state``, ``alive`` and ``health`` computed now (for browsers)."""
    live = liveness(record, probe_timeout)
    started = record.get("started_at")
    running = live.state == "running" and isinstance(started, int | float) and not isinstance(started, bool)
    return {
        "name": record.get("name") or key,
        "ref": record.get("ref"),
        "pid": record.get("pid"),
        "port": record.get("port"),
        "url": record.get("url"),
        "host": record.get("host"),
        "started_at": started,
        "uptime_s": round(time.time() - started, 1) if running else None,
        "status": record.get("status"),
        "alive": live.alive,
        "health": "ok" if live.health is not None else ("unreachable" if live.state == "unhealthy" else None),
        "state": live.state,
    }
