"""Deployment control on the kernel's side: start, replace, stop. What ``deploy()`` runs.

Every deployment version is a ``deployment`` artifact whose content is its stored spec,
with lineage edges from what it serves (``serves``, ``canary``) and its prompt
(``prompt``). A running deployment is a state record (``records.py``). The server
itself is another process (``llmops_magics.modelserver``), started by ``launcher.py``.

Changing a running deployment (a canary, a promotion, a rollback) saves a new version
and replaces the process on the same port: the new process binds the port next to the
old one (``SO_REUSEPORT``), and the old one is stopped only once the new one answers, so
clients see no gap.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..context.settings import resolve_mode
from ..context.workspaces import Workspace, current
from ..errors import ValidationError
from ..governance.policy import DEPLOY as DEPLOY_RULE
from ..governance.policy import require
from ..ops.catalog import Call
from ..ops.deploy import Canary, DeploySpec, parse_canary, split_adapter
from ..recording.publish import publish
from ..store import Artifact, Registry
from .hotswap import admin_token, pin_adapters
from .launcher import launch, port_free, process_started, terminate
from .liveness import liveness, owns_pid
from .records import KIND, NAMESPACE, load_config, require_state, run_dir
from .requestlog import monitor_path

__all__ = [
    "run",
    "set_canary",
    "promote_deployment",
    "rollback_deployment",
    "stop_deployment",
    "hash_api_key",
]

HANDOVER_SECONDS = 0.5

# Keys given to deploy() in this process, so the handles that --canary, promote and
# rollback return can still call the server. Only the key's hash is ever stored.
_keys: dict[str, str] = {}


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _handle_key(name: str, key_sha: str | None, given: str | None) -> str | None:
    for key in (given, _keys.get(name)):
        if key is not None and key_sha is not None and hmac.compare_digest(hash_api_key(key), key_sha):
            return key
    return None


def _model_artifact(ws: Workspace, ref: Any, what: str) -> Artifact:
    """The version to serve: a reference, or a folder, ``tiny`` or configured name (registered first)."""
    from ..models.named import model_for

    art = model_for(ref, ws) if isinstance(ref, str) else None
    art = art or ws.registry.resolve(ref)
    if art.kind not in ("model", "adapter"):
        raise ValidationError(f"{what} must be a model or adapter, found {art.ref} (a {art.kind})")
    if art.metadata.get("endpoint"):
        raise ValidationError(
            f"{what} {art.ref} is an endpoint ({art.metadata['endpoint']}), served already; deploy a model with weights"
        )
    return art


def _reference_data(reg: Registry, art: Artifact, explicit: str | None) -> str | None:
    """The data set drift is measured against: the one given, else the one the adapter was trained on."""
    if explicit:
        return reg.resolve(explicit, "dataset").ref
    for edge in reg.upstream(art, depth=3):
        if edge.source.startswith("dataset://"):
            return edge.source
    return None


def _save(ws: Workspace, spec: DeploySpec, call: Call) -> Artifact:
    parents: list[tuple[Any, str]] = [(spec.target, "serves")]
    if spec.prompt:
        parents.append((spec.prompt, "prompt"))
    if spec.canary_arm:
        parents.append((spec.canary_arm.target, "canary"))
    parents += [(split_adapter(entry)[1], "adapter") for entry in spec.adapters]
    canary = spec.canary_arm
    meta = {
        "target": spec.target,
        "prompt": spec.prompt,
        "engine": spec.engine,
        "canary": canary.to_dict() if canary else None,
        "adapters": list(spec.adapters),
        "filename": "deployment.json",
    }
    data = json.dumps(spec.to_dict(), sort_keys=True, indent=1).encode()
    # The server mirrors the deployment into its own W&B run, with its monitoring.
    return publish(
        ws, KIND, spec.name, spec=spec, call=call, data=data, digest=spec.digest(), metadata=meta, parents=parents,
        mirror_to_wandb=False,
    ).artifact  # fmt: skip


def _runtime(ws: Workspace, art: Artifact, spec: DeploySpec, key_sha: str | None) -> dict[str, Any]:
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
            "admin_sha256": hash_api_key(admin_token(run_dir(ws.registry, spec.name))),
        },
    }


def _start(
    ws: Workspace,
    art: Artifact,
    spec: DeploySpec,
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
    canary = spec.canary_arm
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
        "canary": canary.to_dict() if canary else None,
        "adapters": list(spec.adapters),
        "log_path": str(folder / "server.log"),
        "monitor_db": str(monitor_path(reg.home, spec.name)),
        "request_log": spec.request_log,  # False: monitor_db is never written (--no-request-log)
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


def run(spec: DeploySpec, call: Call):
    """Run a ``DeploySpec`` (see ``llmops_magics.deploy``)."""
    from .views import Deployment

    ws = call.ws
    reg = ws.registry
    if spec.canary is not None and reg.get_state(NAMESPACE, spec.target) is not None:
        return _canary(ws, spec.target, spec.canary, call, spec.timeout, spec.api_key, spec.override_policy)
    art = _model_artifact(ws, spec.target, "the deployment target")
    canary = spec.canary_arm
    resolved = spec.replace(
        name=spec.name or art.name,
        target=art.ref,
        prompt=reg.resolve(spec.prompt, "prompt").ref if spec.prompt else None,
        canary=str(Canary(_model_artifact(ws, canary.target, "the canary").ref, canary.weight)) if canary else None,
        reference_data=_reference_data(reg, art, spec.reference_data),
        adapters=pin_adapters(ws, spec.adapters, art),
    )
    if spec.export is not None:
        if spec.engine != "vllm":
            raise ValidationError(f"export writes a vLLM deployment; add engine='vllm' (found engine={spec.engine!r})")
        from .vllm import export_vllm

        return export_vllm(resolved, spec.export, merge=spec.merge, workspace=ws)
    served = [art] + ([_model_artifact(ws, canary.target, "the canary")] if canary else [])
    for version in served:  # before anything starts: a refusal leaves no process, record or version behind
        require(reg, version, (DEPLOY_RULE,), spec.override_policy, "deploy")
    if resolved.public and not resolved.auth:
        warnings.warn(
            f"deployment {resolved.name!r} binds {resolved.host}, reachable from other machines, without an API key; "
            "add api_key=... (--api-key)",
            UserWarning,
            stacklevel=3,
        )
    existing = reg.get_state(NAMESPACE, resolved.name)
    state = liveness(existing).state if existing is not None else None
    if state in ("running", "unhealthy"):
        raise ValidationError(
            f"deployment {resolved.name!r} is already {state} at {existing.get('url')}; stop it first "
            f"(%deploy stop {resolved.name}), give another --name, or add a --canary"
        )
    if resolved.port and not port_free(resolved.host, resolved.port):
        raise ValidationError(
            f"port {resolved.port} on {resolved.host} is already in use; choose another or use port 0 (any free one)"
        )
    if resolved.engine == "vllm":
        from .vllm import check_vllm_available

        check_vllm_available()
    if existing is not None:  # a server that died without being stopped: its record goes
        reg.delete_state(NAMESPACE, resolved.name)
    art_dep = _save(ws, resolved, call)
    key_sha = hash_api_key(spec.api_key) if spec.api_key is not None else None
    record = _start(ws, art_dep, resolved, key_sha, spec.timeout, api_key=spec.api_key)
    if spec.api_key is not None:
        _keys[resolved.name] = spec.api_key
    art_dep = reg.set_alias(art_dep, "canary" if canary else "production")
    _event(reg, "deploy", resolved.name, art_dep, None, resolved.target, [v.ref for v in served])
    return Deployment(resolved.name, record, art_dep, ws, spec.api_key)


def _event(reg: Registry, action: str, name: str, dep: Artifact, old: str | None, new: str | None, refs: list) -> None:
    """One audit event of a deployment: what it served before and after, and its version (``detail``)."""
    reg.record_event(action, f"{KIND}://{name}", from_ref=old, to_ref=new,
                     detail={"deployment": dep.ref, "refs": [dep.ref, *refs]})  # fmt: skip


def _relaunch(
    ws: Workspace,
    name: str,
    change: Callable[[DeploySpec], DeploySpec],
    *,
    alias: str,
    call: Call,
    timeout: float,
    api_key: str | None = None,
):
    """Serve a changed spec in place of the running one, on the same port."""
    from .views import Deployment

    reg = ws.registry
    state = require_state(reg, name)
    config = load_config(state)
    old = DeploySpec.from_dict(config["spec"])
    key_sha = config["runtime"].get("api_key_sha256")
    new = change(old).replace(port=int(state.get("port") or old.port or 0))
    art = _save(ws, new, call)
    status = liveness(state).state
    overlap = status != "stopped" and new.engine == "builtin" and old.engine == "builtin"
    if not overlap and owns_pid(state):
        terminate(state.get("pid"))
        if new.port and not port_free(new.host, new.port):
            new = new.replace(port=0)
    fresh = _start(ws, art, new, key_sha, timeout, previous=state if overlap else None)
    if overlap:
        time.sleep(HANDOVER_SECONDS)  # the new server takes every new connection now; the old queue drains
        terminate(state.get("pid"))
    art = reg.set_alias(art, alias)
    return Deployment(name, fresh, art, ws, _handle_key(name, key_sha, api_key))


def _canary(
    ws: Workspace, name: str, canary: str, call: Call, timeout: float, api_key: str | None, override: str | None = None
):
    arm = parse_canary(canary)
    version = _model_artifact(ws, arm.target, "the canary")
    target = version.ref
    require_state(ws.registry, name)
    require(ws.registry, version, (DEPLOY_RULE,), override, "canary")
    pinned = str(Canary(target, arm.weight))
    handle = _relaunch(
        ws, name, lambda s: s.replace(canary=pinned), alias="canary", call=call, timeout=timeout, api_key=api_key
    )
    _event(ws.registry, "canary", name, handle.artifact, None, target, [target])
    return handle


def set_canary(
    name: str,
    canary: str,
    *,
    timeout: float = 180.0,
    api_key: str | None = None,
    override_policy: str | None = None,
    workspace=None,
    call=None,
):
    """Send ``PERCENT%`` of ``name``'s traffic to another version: ``set_canary("qa", "adapter://qa/2:10%")``.

    ``api_key`` only goes into the returned handle (the server keeps the key it was
    deployed with); a key given to ``deploy`` in this process is remembered.
    """
    call = call or Call(workspace=workspace)
    return _canary(call.ws, name, canary, call, timeout, api_key, override_policy)


def promote_deployment(
    name: str,
    *,
    timeout: float = 180.0,
    api_key: str | None = None,
    override_policy: str | None = None,
    workspace=None,
    call=None,
):
    """Make the canary the only version: it serves all traffic and both it and the deployment get ``production``.

    The canary must meet ``[tool.llmops.policy]``'s ``deploy`` and ``production`` rules,
    checked before anything changes, unless ``override_policy`` gives a reason (audited).
    """
    call = call or Call(workspace=workspace)
    ws = call.ws
    reg = ws.registry
    spec = DeploySpec.from_dict(load_config(require_state(reg, name))["spec"])
    if spec.canary_arm is None:
        raise ValidationError(f"deployment {name!r} has no canary to promote; add one with --canary REF:10%")
    promoted = spec.canary_arm.target
    require(reg, reg.resolve(promoted), (DEPLOY_RULE, "production"), override_policy, "promote")
    handle = _relaunch(
        ws,
        name,
        lambda s: s.replace(target=promoted, canary=None),
        alias="production",
        call=call,
        timeout=timeout,
        api_key=api_key,
    )
    reg.set_alias(promoted, "production", policy=False)  # checked above, before the relaunch
    _event(reg, "promote", name, handle.artifact, spec.target, promoted, [spec.target, promoted])
    return handle


def rollback_deployment(name: str, *, timeout: float = 180.0, api_key: str | None = None, workspace=None, call=None):
    """Drop the canary: the primary version serves all traffic again."""
    call = call or Call(workspace=workspace)
    ws = call.ws
    spec = DeploySpec.from_dict(load_config(require_state(ws.registry, name))["spec"])
    if spec.canary_arm is None:
        raise ValidationError(f"deployment {name!r} has no canary to roll back")
    handle = _relaunch(
        ws, name, lambda s: s.replace(canary=None), alias="production", call=call, timeout=timeout, api_key=api_key
    )
    dropped = spec.canary_arm.target
    _event(ws.registry, "rollback", name, handle.artifact, dropped, spec.target, [dropped, spec.target])
    return handle


def stop_deployment(name: str, *, grace: float = 15.0, workspace=None):
    """Stop the server (SIGTERM, then SIGKILL after ``grace`` seconds) and forget its state record."""
    from .views import StopResult

    ws = workspace or current()
    reg = ws.registry
    state = require_state(reg, name)
    outcome = terminate(state.get("pid"), grace=grace) if owns_pid(state) else "not running"
    reg.delete_state(NAMESPACE, name)
    (run_dir(reg, name) / "ready.json").unlink(missing_ok=True)
    served = [state[k] for k in ("ref", "target") if state.get(k)]
    reg.record_event("stop", f"{KIND}://{name}", from_ref=state.get("target"),
                     detail={"deployment": state.get("ref"), "outcome": outcome, "refs": served})  # fmt: skip
    return StopResult(name, state.get("pid"), state.get("url"), outcome)
