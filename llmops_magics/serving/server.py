"""The server process: ``python -m llmops_magics.serving.server --config RUN_DIR/config.json``.

Started by ``lifecycle.deploy`` in its own session (so a kernel restart does not
kill it), with stdout and stderr in ``RUN_DIR/server.log``. The port is bound
first (port 0 picks a free one; ``SO_REUSEPORT`` lets a replacement process bind
the same port before this one leaves, for zero-downtime restarts), then the
models load, then uvicorn starts accepting and ``ready.json`` (pid, port, url) is
written atomically for the launcher. SIGTERM finishes requests in flight, writes
the request log and the last W&B metrics, and exits.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

__all__ = ["main", "bind_socket", "write_ready"]


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def url_for(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def write_ready(run_dir: Path, host: str, port: int, engine: str) -> None:
    payload = {"pid": os.getpid(), "port": port, "host": host, "url": url_for(host, port), "engine": engine}
    tmp = run_dir / f".ready.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(payload))
    os.replace(tmp, run_dir / "ready.json")


def run_builtin(cfg: dict[str, Any], run_dir: Path) -> None:
    import uvicorn

    from .app import build_app
    from .service import Service
    from .spec import DeploymentSpec

    spec = DeploymentSpec.from_dict(cfg["spec"])
    sock = bind_socket(spec.host, spec.port)
    port = sock.getsockname()[1]
    print(f"llmops: bound {spec.host}:{port}; loading {spec.target}", flush=True)
    service = Service.from_config(cfg)
    app = build_app(service, on_startup=lambda: write_ready(run_dir, spec.host, port, "builtin"))
    config = uvicorn.Config(
        app,
        log_level=os.environ.get("LLMOPS_SERVER_LOG_LEVEL", "warning"),
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
        timeout_keep_alive=30,
    )
    print(f"llmops: serving {spec.name} at {url_for(spec.host, port)}", flush=True)
    uvicorn.Server(config).run(sockets=[sock])
    print("llmops: stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m llmops_magics.serving.server")
    parser.add_argument("--config", required=True, help="runtime config written by llmops_magics.deploy")
    args = parser.parse_args(argv)
    path = Path(args.config)
    cfg = json.loads(path.read_text())
    engine = cfg["spec"].get("engine", "builtin")
    if engine == "ray":
        from .ray_engine import run_ray

        run_ray(cfg, path.parent)
    else:
        run_builtin(cfg, path.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
