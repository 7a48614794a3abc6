"""Start, probe and stop server processes. Plain stdlib: the kernel imports this, not the server stack.

A server runs in its own process session (``start_new_session``), so it outlives
the kernel that started it; what the kernel knows about it (pid, port, url) is in
the registry's ``deployments`` state, so a new kernel can find it, probe it and
stop it. Alive means the pid exists *and* ``GET /health`` answers for the same
deployment and pid (a recycled pid alone never counts).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..context.processes import process_started, still_running
from ..errors import DeploymentError

__all__ = [
    "Launched",
    "launch",
    "terminate",
    "pid_alive",
    "process_started",
    "probe",
    "http_json",
    "tail",
    "port_free",
    "free_port",
]

_children: dict[int, subprocess.Popen] = {}


@dataclass(frozen=True)
class Launched:
    pid: int
    port: int
    url: str
    log_path: Path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_free(host: str, port: int) -> bool:
    """True when nothing listens on ``host:port`` (binding without SO_REUSEPORT succeeds)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def pid_alive(pid: int | None) -> bool:
    """The process exists and is not a zombie (our own dead children are reaped here)."""
    if not pid or pid <= 0:
        return False
    child = _children.get(pid)
    if child is not None and child.poll() is not None:
        _children.pop(pid, None)
        return False
    alive = still_running(pid)
    if not alive and child is not None:  # it exited between the checks above: reap it now
        child.poll()
        _children.pop(pid, None)
    return alive


def http_json(
    url: str, *, method: str = "GET", body: Any = None, headers: Mapping[str, str] | None = None, timeout: float = 5.0
) -> tuple[int, Any]:
    """``(status, decoded JSON or text)``; connection failures raise ``OSError``."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    for key, value in (headers or {}).items():
        req.add_header(key, value)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw)
    except ValueError:
        return status, raw.decode(errors="replace")


def probe(url: str | None, name: str | None = None, pid: int | None = None, timeout: float = 2.0) -> dict | None:
    """The ``/health`` payload when the server answers as the expected deployment, else None."""
    if not url:
        return None
    try:
        status, payload = http_json(f"{url}/health", timeout=timeout)
    except (OSError, ValueError):
        return None
    if status != 200:
        return None
    if isinstance(payload, dict) and name and payload.get("deployment") not in (None, name):
        return None
    if isinstance(payload, dict) and pid and payload.get("pid") not in (None, pid):
        return None
    return payload if isinstance(payload, dict) else {"status": "ok"}


def tail(path: str | Path, lines: int = 50) -> str:
    path = Path(path)
    if not path.is_file():
        return ""
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        size = fh.tell()
        fh.seek(max(0, size - 256 * 1024))
        text = fh.read().decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:])


def launch(
    config: Mapping[str, Any],
    run_dir: Path,
    *,
    name: str,
    command: list[str] | None = None,
    timeout: float = 180.0,
    health_path: str = "/health",
    port: int | None = None,
    host: str = "127.0.0.1",
    expect_pid: bool = True,
    on_spawn: Callable[[int], None] | None = None,
    config_name: str = "config.json",
    env: Mapping[str, str] | None = None,
) -> Launched:
    """Start a server process and wait (bounded) until it answers ``/health``.

    The built-in and Ray servers report their port in ``ready.json``; a foreign
    server (``command``, e.g. ``vllm serve``) is given ``port`` up front. With
    ``expect_pid`` the health answer must come from the new process itself: during
    a replacement the old process still answers on the same port.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg_path = run_dir / config_name
    ready = run_dir / "ready.json"
    ready.unlink(missing_ok=True)
    fd = os.open(cfg_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(config, fh, indent=1, sort_keys=True)
    log_path = run_dir / "server.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    env["LLMOPS_HOME"] = str(config.get("runtime", {}).get("home", env.get("LLMOPS_HOME", "")))
    argv = command or [sys.executable, "-m", "llmops_magics.modelserver.server", "--config", str(cfg_path)]
    with log_path.open("ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} starting {name}: {' '.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
            cwd=str(run_dir),
        )
    _children[proc.pid] = proc
    if on_spawn is not None:
        on_spawn(proc.pid)
    deadline = time.monotonic() + timeout
    url = None if port is None else f"http://{host}:{port}"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            _children.pop(proc.pid, None)
            raise DeploymentError(
                f"deployment {name!r}: the server exited with status {proc.returncode} before it was ready; "
                f"last lines of {log_path}:\n{tail(log_path, 15)}"
            )
        if url is None and ready.is_file():
            info = json.loads(ready.read_text())
            port, url = int(info["port"]), info["url"]
        if url is not None:
            try:
                status, payload = http_json(url + health_path, timeout=2.0)
                same = not expect_pid or (isinstance(payload, dict) and payload.get("pid") == proc.pid)
                if status == 200 and same:
                    return Launched(proc.pid, int(port), url, log_path)
            except (OSError, ValueError):
                pass
        time.sleep(0.2)
    terminate(proc.pid, grace=5.0)
    raise DeploymentError(
        f"deployment {name!r} did not answer {health_path} within {timeout:.0f}s and was stopped; "
        f"last lines of {log_path}:\n{tail(log_path, 15)}"
    )


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def terminate(pid: int | None, grace: float = 15.0) -> str:
    """SIGTERM the server, wait ``grace`` seconds, then SIGKILL its whole process group.

    Returns ``"stopped"``, ``"killed"`` or ``"not running"``. The group (the server
    was started as its leader) also holds helpers it spawned (W&B's service, Ray).
    """
    if not pid_alive(pid):
        _reap(pid)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if pid and _group_alive(pid):
                os.killpg(pid, signal.SIGKILL)
        return "not running"
    assert pid is not None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and pid_alive(pid):
        time.sleep(0.1)
    outcome = "stopped"
    if pid_alive(pid):
        outcome = "killed"
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline and (pid_alive(pid) or _group_alive(pid)):
        time.sleep(0.05)
    if _group_alive(pid):  # helpers that outlived a clean exit (W&B's service, Ray's workers)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    _reap(pid)
    return outcome


def _reap(pid: int | None) -> None:
    child = _children.pop(pid, None) if pid else None
    if child is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(timeout=5)
