"""The server process: ``python -m llmops_magics.modelserver.server --config RUN_DIR/config.json``.

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

__all__ = ["bind_socket", "main", "steer_port", "write_ready"]


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if hasattr(socket, "SO_REUSEPORT"):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


_SO_ATTACH_REUSEPORT_CBPF = 51  # Linux <asm-generic/socket.h>; Python's socket module lacks the name


def steer_port(sock: socket.socket, index: int) -> bool:
    """Send every new connection on this port to listener ``index`` (0: the oldest, 1: the next).

    With ``SO_REUSEPORT`` the kernel spreads connections over every listener on the port,
    and a listener that closes resets the connections still queued on it. A replacement
    server therefore steers to the running one (0) while it loads and to itself (1) once it
    accepts, so the old server drains before it is stopped. An index past the last listener
    makes the kernel fall back to its usual choice. False where the kernel refuses it.
    """
    import ctypes
    import struct

    if not sys.platform.startswith("linux"):
        return False
    ret_k = (ctypes.c_ubyte * 8).from_buffer_copy(struct.pack("HBBI", 0x06, 0, 0, index))  # BPF_RET|BPF_K
    prog = struct.pack("HxxxxxxQ", 1, ctypes.addressof(ret_k))
    try:
        sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_REUSEPORT_CBPF, prog)
    except OSError:
        return False
    return True


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

    from ..ops.deploy import DeploySpec
    from .app import build_app
    from .service import Service

    spec = DeploySpec.from_dict(cfg["spec"])
    sock = bind_socket(spec.host, spec.port)
    sock.listen(2048)
    steer_port(sock, 0)  # while this one loads, a server it replaces keeps every new connection
    port = sock.getsockname()[1]
    print(f"llmops: bound {spec.host}:{port}; loading {spec.target}", flush=True)
    service = Service.from_config(cfg)

    def ready() -> None:
        steer_port(sock, 1)  # now take them all; a server this replaces drains and is stopped
        write_ready(run_dir, spec.host, port, "builtin")

    from .spans import traced_app

    app = traced_app(build_app(service, on_startup=ready), service.ref)
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
    parser = argparse.ArgumentParser(prog="python -m llmops_magics.modelserver.server")
    parser.add_argument("--config", required=True, help="runtime config written by llmops_magics.deploy")
    args = parser.parse_args(argv)
    path = Path(args.config)
    cfg = json.loads(path.read_text())
    engine = cfg["spec"].get("engine", "builtin")
    if engine == "ray":
        from .engines.ray import run_ray

        run_ray(cfg, path.parent)
    else:
        run_builtin(cfg, path.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
