"""The Ray Serve engine: the same app, as a Ray Serve deployment that can scale out.

The server process becomes a Ray *driver*: it connects to ``ray_address`` (a
cluster) or starts a local Ray, starts Serve's HTTP proxy on the requested host
and port, and deploys the built-in FastAPI app through an ingress *builder*, so
each replica (``replicas`` of them) loads the models itself and runs its own
dynamic batcher. Requests, responses, metrics and the request log are the same
as the built-in engine's; ``/metrics`` reports the replica that answered.

On a cluster the replicas must reach the registry folder (a shared filesystem)
and have llmops-magics installed; a local Ray needs nothing more. SIGTERM
deletes the Serve application and, for a local Ray, shuts Ray down.
"""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from typing import Any

__all__ = ["run_ray", "build_service_app"]

_FORWARDED_ENV = ("LLMOPS_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "WANDB_MODE", "WANDB_SILENT")


def build_service_app(cfg: dict[str, Any]):
    """Runs in each replica: load the models, return the ASGI app."""
    from ..app import build_app
    from ..service import Service

    return build_app(Service.from_config(cfg))


def _builder(cfg: dict[str, Any]):
    """Ray Serve takes a builder only as a plain function (not a ``functools.partial``)."""

    def build():
        return build_service_app(cfg)

    return build


def run_ray(cfg: dict[str, Any], run_dir: Path) -> None:
    import ray
    from ray import serve

    from ...ops.deploy import DeploySpec
    from ...serving.launcher import free_port
    from ..server import write_ready

    spec = DeploySpec.from_dict(cfg["spec"])
    port = spec.port or free_port(spec.host)
    env = {
        k: os.environ[k]
        for k in _FORWARDED_ENV + tuple(k for k in os.environ if k.startswith("WANDB_"))
        if k in os.environ
    }
    init: dict[str, Any] = {
        "include_dashboard": False,
        "logging_level": "WARNING",
        "namespace": f"llmops-{spec.name}",
        "runtime_env": {"env_vars": env},
    }
    if spec.ray_address:
        init["address"] = spec.ray_address
    else:
        init.update(num_cpus=max(2, spec.replicas), object_store_memory=100 * 1024 * 1024)
    ray.init(**init)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        serve.start(http_options={"host": spec.host, "port": port})
        ingress = serve.ingress(_builder(cfg))
        server_class = ingress(type("LLMOpsServer", (), {"__doc__": f"llmops deployment {spec.name}"}))
        deployment = serve.deployment(
            server_class,
            name=spec.name,
            num_replicas=spec.replicas,
            ray_actor_options={"num_cpus": 1},
            max_ongoing_requests=max(64, spec.max_batch_size * 4),
        )
        serve.run(deployment.bind(), name=spec.name, route_prefix="/")
        write_ready(run_dir, spec.host, port, "ray")
        print(f"llmops: serving {spec.name} on Ray Serve at http://{spec.host}:{port}", flush=True)
        stop.wait()
    finally:
        try:
            serve.delete(spec.name)
            if not spec.ray_address:
                serve.shutdown()
        finally:
            ray.shutdown()
        print("llmops: stopped", flush=True)
