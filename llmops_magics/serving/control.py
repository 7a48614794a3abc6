"""``deploy``, ``stop_deployment``, ``promote_deployment`` …: the Python API behind ``%deploy``.

Every deployment version is a ``deployment`` artifact whose content is its spec,
with lineage edges from what it serves (``serves``, ``canary``) and its prompt
(``prompt``). A running deployment is a registry state record (namespace
``deployments``; the JupyterLab sidebar reads it)::

    {"name", "ref", "target", "prompt", "pid", "port", "url", "host", "started_at",
     "status", "engine", "canary", "log_path", "monitor_db", "config_path", "auth"}

Changing a running deployment (a canary, a promotion, a rollback) saves a new
version and replaces the process on the same port: the new process binds the
port next to the old one (``SO_REUSEPORT``), and the old one is stopped only
once the new one answers, so clients see no gap.
"""

from __future__ import annotations

import hmac
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..context.provenance import collect
from ..context.workspaces import Workspace, current
from ..errors import NotFoundError, ValidationError
from ..recording.wandb_recorder import resolve_mode
from ..store import Artifact, Registry
from .launcher import launch, pid_alive, port_free, probe, process_started, terminate
from .requestlog import monitor_path
from .spec import Canary, DeploymentSpec, hash_api_key, parse_canary

__all__ = [
    "NAMESPACE",
    "deploy",
    "stop_deployment",
    "promote_deployment",
    "rollback_deployment",
    "set_canary",
    "liveness",
    "require_state",
    "load_config",
]

NAMESPACE = "deployments"
HANDOVER_SECONDS = 0.5
KIND = "deployment"


# Keys given to deploy() in this process, so the handles that --canary, promote and
# rollback return can still call the server. Only the key's hash is ever stored.
_keys: dict[str, str] = {}


def _handle_key(name: str, key_sha: str | None, given: str | None) -> str | None:
    for key in (given, _keys.get(name)):
        if key is not None and key_sha is not None and hmac.compare_digest(hash_api_key(key), key_sha):
            return key
    return None


def run_dir(reg: Registry, name: str) -> Path:
    return reg.home / "deployments" / name


def require_state(reg: Registry, name: str) -> dict[str, Any]:
    state = reg.get_state(NAMESPACE, name)
    if state is None:
        known = ", ".join(sorted(reg.list_state(NAMESPACE))) or "none"
        raise NotFoundError(f"no deployment is named {name!r}; deployments: {known}")
    return state


def load_config(state: dict[str, Any]) -> dict[str, Any]:
    path = Path(state["config_path"])
    if not path.is_file():
        raise NotFoundError(f"deployment {state['name']!r} has lost its config file {path}")
    return json.loads(path.read_text())


def owns_pid(state: dict[str, Any]) -> bool:
    """The recorded pid is alive and still the process this deployment started (not a reused number)."""
    pid = state.get("pid")
    if not pid_alive(pid):
        return False
    recorded, now = state.get("pid_started"), process_started(pid)
    if recorded is not None and now is not None:
        return recorded == now
    # No start time to compare (a record from an older version, or no /proc): only a
    # server that answers /health as this deployment proves the pid is still ours.
    same_pid = pid if state.get("engine") == "builtin" else None
    return probe(state.get("url"), state.get("name"), same_pid) is not None


def liveness(state: dict[str, Any], timeout: float = 2.0) -> tuple[str, dict | None]:
    """``("running", health)``, ``("unhealthy", None)`` (pid alive, no answer) or ``("dead", None)``."""
    pid = state.get("pid")
    if not owns_pid(state):
        return "dead", None
    same_pid = pid if state.get("engine") == "builtin" else None
    health = probe(state.get("url"), state.get("name"), same_pid, timeout=timeout)
    return ("running", health) if health is not None else ("unhealthy", None)


def _model_artifact(reg: Registry, ref: Any, what: str) -> Artifact:
    art = reg.resolve(ref)
    if art.kind not in ("model", "adapter"):
        raise ValidationError(f"{what} must be a model or adapter, found {art.ref} (a {art.kind})")
    return art


def _reference_data(reg: Registry, art: Artifact, explicit: str | None) -> str | None:
    """The data set drift is measured against: the one given, else the one the adapter was trained on."""
    if explicit:
        return reg.resolve(explicit, "dataset").ref
    for edge in reg.upstream(art, depth=3):
        if edge.source.startswith("dataset://"):
            return edge.source
    return None


def _save(reg: Registry, spec: DeploymentSpec, source: dict[str, Any] | None) -> Artifact:
    parents: list[tuple[Any, str]] = [(spec.target, "serves")]
    if spec.prompt:
        parents.append((spec.prompt, "prompt"))
    if spec.canary:
        parents.append((spec.canary.target, "canary"))
    data = json.dumps(spec.to_dict(), sort_keys=True, indent=1).encode()
    meta = {
        "target": spec.target,
        "prompt": spec.prompt,
        "engine": spec.engine,
        "canary": spec.canary.to_dict() if spec.canary else None,
        "filename": "deployment.json",
    }
    result = reg.save(
        KIND,
        spec.name,
        data=data,
        digest=spec.digest(),
        metadata=meta,
        source=collect(source),
        spec={"op": "deploy", **spec.to_dict()},
        parents=parents,
    )
    return result.artifact


def _runtime(ws: Workspace, art: Artifact, spec: DeploymentSpec, key_sha: str | None) -> dict[str, Any]:
    s = ws.settings
    mode = "disabled" if not ws.recorder.enabled else resolve_mode(s.wandb_mode)
    return {
        "spec": spec.to_dict(),
        "runtime": {
            "home": str(ws.registry.home),
            "artifact": art.ref,
            "api_key_sha256": key_sha,
            "wandb_mode": mode,
            "wandb_project": s.wandb_project,
            "wandb_entity": s.wandb_entity,
        },
    }


def _start(
    ws: Workspace,
    art: Artifact,
    spec: DeploymentSpec,
    key_sha: str | None,
    timeout: float,
    previous: dict[str, Any] | None = None,
    api_key: str | None = None,
) -> dict:
    """Launch the process for ``spec`` and record it; returns the state record.

    If the start fails, the state goes back to ``previous`` (the process still
    serving during a replacement) or is removed.
    """
    reg = ws.registry
    folder = run_dir(reg, spec.name)
    state = {
        "name": spec.name,
        "ref": art.ref,
        "target": spec.target,
        "prompt": spec.prompt,
        "pid": None,
        "port": spec.port or None,
        "url": None,
        "host": spec.host,
        "started_at": time.time(),
        "status": "starting",
        "engine": spec.engine,
        "canary": spec.canary.to_dict() if spec.canary else None,
        "log_path": str(folder / "server.log"),
        "monitor_db": str(monitor_path(reg.home, spec.name)),
        "config_path": str(folder / f"config-v{art.version}.json"),
        "auth": spec.auth,
    }
    config = _runtime(ws, art, spec, key_sha)

    def spawned(pid: int) -> None:  # recorded before the wait, so a kernel lost mid-start can still stop it
        state.update(pid=pid, pid_started=process_started(pid))
        reg.put_state(NAMESPACE, spec.name, state)

    try:
        if spec.engine == "vllm":
            from .vllm import launch_vllm

            launched = launch_vllm(ws, spec, config, folder, timeout=timeout, on_spawn=spawned, api_key=api_key)
        else:
            launched = launch(
                config,
                folder,
                name=spec.name,
                timeout=timeout,
                expect_pid=spec.engine == "builtin",
                on_spawn=spawned,
                config_name=Path(state["config_path"]).name,
            )
    except BaseException:
        if previous is not None:
            reg.put_state(NAMESPACE, spec.name, previous)
        else:
            reg.delete_state(NAMESPACE, spec.name)
        raise
    if launched.pid != state.get("pid"):
        state["pid_started"] = process_started(launched.pid)
    state.update(pid=launched.pid, port=launched.port, url=launched.url, status="running", started_at=time.time())
    reg.put_state(NAMESPACE, spec.name, state)
    return state


def deploy(
    target: Any,
    *,
    prompt: str | None = None,
    name: str | None = None,
    port: int = 0,
    host: str = "127.0.0.1",
    api_key: str | None = None,
    canary: str | None = None,
    engine: str = "builtin",
    max_batch_size: int = 16,
    max_wait_ms: float = 10.0,
    default_max_tokens: int = 64,
    log_text: bool = False,
    reference_data: str | None = None,
    threads: int | None = None,
    metrics_interval: float = 30.0,
    ray_address: str | None = None,
    replicas: int = 1,
    export: str | None = None,
    merge: bool = False,
    timeout: float = 180.0,
    magic: str | None = None,
    source: dict[str, Any] | None = None,
    workspace: Workspace | None = None,
):
    """Serve a model or adapter over an OpenAI-compatible HTTP API in a separate process.

    Returns a ``Deployment`` handle (``.url``, ``.client()``, ``.status()``, ``.stop()``).
    With ``canary="REF:10%"`` and ``target`` naming a running deployment, that
    deployment gets a canary arm instead (see ``set_canary``). With
    ``engine="vllm", export=DIR`` nothing starts: a ``VllmExport`` folder is written.
    """
    from .views import Deployment

    ws = workspace or current()
    reg = ws.registry
    if canary is not None and isinstance(target, str) and reg.get_state(NAMESPACE, target) is not None:
        return set_canary(target, canary, magic=magic, timeout=timeout, api_key=api_key, workspace=ws)
    art = _model_artifact(reg, target, "the deployment target")
    prompt_ref = reg.resolve(prompt, "prompt").ref if prompt else None
    canary_obj = None
    if canary is not None:
        cref, weight = parse_canary(canary)
        canary_obj = Canary(_model_artifact(reg, cref, "the canary").ref, weight)
    if api_key is not None and (not isinstance(api_key, str) or not api_key.strip() or " " in api_key):
        raise ValidationError("api_key must be a non-empty string without spaces")
    spec = DeploymentSpec(
        name=name or art.name,
        target=art.ref,
        prompt=prompt_ref,
        engine=engine,
        host=host,
        port=port,
        auth=api_key is not None,
        canary=canary_obj,
        max_batch_size=max_batch_size,
        max_wait_ms=float(max_wait_ms),
        default_max_tokens=default_max_tokens,
        log_text=bool(log_text),
        reference_data=_reference_data(reg, art, reference_data),
        threads=threads,
        metrics_interval=float(metrics_interval),
        ray_address=ray_address,
        replicas=replicas,
        magic=magic,
    )
    if export is not None:
        if spec.engine != "vllm":
            raise ValidationError(f"export writes a vLLM deployment; add engine='vllm' (found engine={spec.engine!r})")
        from .vllm import export_vllm

        return export_vllm(spec, export, merge=merge, workspace=ws)
    if spec.public and not spec.auth:
        warnings.warn(
            f"deployment {spec.name!r} binds {spec.host}, reachable from other machines, without an API key; "
            "add api_key=... (--api-key)",
            UserWarning,
            stacklevel=2,
        )
    existing = reg.get_state(NAMESPACE, spec.name)
    status = liveness(existing)[0] if existing is not None else None
    if status not in (None, "dead"):
        raise ValidationError(
            f"deployment {spec.name!r} is already {status} at {existing.get('url')}; stop it first "
            f"(%deploy stop {spec.name}), give another --name, or add a --canary"
        )
    if port and not port_free(host, port):
        raise ValidationError(f"port {port} on {host} is already in use; choose another or use port 0 (any free one)")
    if spec.engine == "vllm":
        from .vllm import check_vllm_available

        check_vllm_available()
    if existing is not None:  # a server that died without being stopped: its record goes
        reg.delete_state(NAMESPACE, spec.name)
    art_dep = _save(reg, spec, source)
    key_sha = hash_api_key(api_key) if api_key is not None else None
    state = _start(ws, art_dep, spec, key_sha, timeout, api_key=api_key)
    if api_key is not None:
        _keys[spec.name] = api_key
    art_dep = reg.set_alias(art_dep, "canary" if spec.canary else "production")
    return Deployment(spec.name, state, art_dep, ws, api_key)


def _relaunch(
    ws: Workspace,
    name: str,
    change: Callable[[DeploymentSpec], DeploymentSpec],
    *,
    alias: str,
    magic: str | None,
    timeout: float,
    api_key: str | None = None,
):
    """Serve a changed spec in place of the running one, on the same port."""
    from .views import Deployment

    reg = ws.registry
    state = require_state(reg, name)
    config = load_config(state)
    old = DeploymentSpec.from_dict(config["spec"])
    key_sha = config["runtime"].get("api_key_sha256")
    new = change(old).with_changes(port=int(state.get("port") or old.port or 0), magic=magic)
    art = _save(reg, new, None)
    status, _ = liveness(state)
    overlap = status != "dead" and new.engine == "builtin" and old.engine == "builtin"
    if not overlap and owns_pid(state):
        terminate(state.get("pid"))
        if new.port and not port_free(new.host, new.port):
            new = new.with_changes(port=0)
    fresh = _start(ws, art, new, key_sha, timeout, previous=state if overlap else None)
    if overlap:
        time.sleep(HANDOVER_SECONDS)  # the new server takes every new connection now; the old queue drains
        terminate(state.get("pid"))
    art = reg.set_alias(art, alias)
    return Deployment(name, fresh, art, ws, _handle_key(name, key_sha, api_key))


def set_canary(
    name: str,
    canary: str,
    *,
    magic: str | None = None,
    timeout: float = 180.0,
    api_key: str | None = None,
    workspace=None,
):
    """Send ``PERCENT%`` of ``name``'s traffic to another version: ``set_canary("qa", "adapter://qa/2:10%")``.

    ``api_key`` only goes into the returned handle (the server keeps the key it was
    deployed with); a key given to ``deploy`` in this process is remembered.
    """
    ws = workspace or current()
    cref, weight = parse_canary(canary)
    target = _model_artifact(ws.registry, cref, "the canary").ref
    require_state(ws.registry, name)
    return _relaunch(
        ws,
        name,
        lambda s: s.with_changes(canary=Canary(target, weight)),
        alias="canary",
        magic=magic,
        timeout=timeout,
        api_key=api_key,
    )


def promote_deployment(
    name: str, *, magic: str | None = None, timeout: float = 180.0, api_key: str | None = None, workspace=None
):
    """Make the canary the only version: it serves all traffic and both it and the deployment get ``production``."""
    ws = workspace or current()
    reg = ws.registry
    spec = DeploymentSpec.from_dict(load_config(require_state(reg, name))["spec"])
    if spec.canary is None:
        raise ValidationError(f"deployment {name!r} has no canary to promote; add one with --canary REF:10%")
    promoted = spec.canary.target
    handle = _relaunch(
        ws,
        name,
        lambda s: s.with_changes(target=promoted, canary=None),
        alias="production",
        magic=magic,
        timeout=timeout,
        api_key=api_key,
    )
    reg.set_alias(promoted, "production")
    return handle


def rollback_deployment(
    name: str, *, magic: str | None = None, timeout: float = 180.0, api_key: str | None = None, workspace=None
):
    """Drop the canary: the primary version serves all traffic again."""
    ws = workspace or current()
    spec = DeploymentSpec.from_dict(load_config(require_state(ws.registry, name))["spec"])
    if spec.canary is None:
        raise ValidationError(f"deployment {name!r} has no canary to roll back")
    return _relaunch(
        ws,
        name,
        lambda s: s.with_changes(canary=None),
        alias="production",
        magic=magic,
        timeout=timeout,
        api_key=api_key,
    )


def stop_deployment(name: str, *, grace: float = 15.0, workspace=None):
    """Stop the server (SIGTERM, then SIGKILL after ``grace`` seconds) and forget its state record."""
    from .views import StopResult

    ws = workspace or current()
    reg = ws.registry
    state = require_state(reg, name)
    outcome = terminate(state.get("pid"), grace=grace) if owns_pid(state) else "not running"
    reg.delete_state(NAMESPACE, name)
    (run_dir(reg, name) / "ready.json").unlink(missing_ok=True)
    return StopResult(name, state.get("pid"), state.get("url"), outcome)
