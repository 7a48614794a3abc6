"""Adapters of a running deployment, added and removed without a restart.

``add_adapter("qa", "adapter://sql-lora/2", as_name="sql")`` asks the server to load the
adapter onto the base it already holds (``POST /v1/load_lora_adapter``), then records a new
deployment version whose spec lists it (``--adapter sql=adapter://sql-lora/2``, with an
``adapter`` lineage edge), so ``%deploy list``, the sidebar, a restart and replay all see
what is served. ``remove_adapter`` is the reverse; the server lets the adapter's requests in
flight finish first.

The kernel reaches these admin routes with the deployment's admin token: a random secret in
``run_dir/admin.token`` (mode 0600, next to the server's log and config), whose SHA-256 the
server is started with. Whoever can read the registry folder can administer its servers; the
API key clients use is never needed for it.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from ..errors import DeploymentError, ValidationError
from ..ops.catalog import Call
from ..ops.deploy import DeploySpec, split_adapter
from ..store import Artifact

__all__ = ["add_adapter", "remove_adapter", "pin_adapters", "admin_token"]


def admin_token(folder: Path) -> str:
    """The deployment's admin token, created on first use (readable by its owner only)."""
    path = folder / "admin.token"
    if path.is_file():
        return path.read_text().strip()
    folder.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token)
    return token


def _base_digest(art: Artifact) -> str | None:
    return art.digest if art.kind == "model" else art.metadata.get("base_digest")


def pin_adapters(ws: Any, entries: tuple[str, ...], target: Artifact) -> tuple[str, ...]:
    """``NAME=REF`` entries with every reference pinned, each checked to be an adapter of the target's base."""
    out = []
    for entry in entries:
        name, ref = split_adapter(entry)
        art = ws.registry.resolve(ref)
        if art.kind != "adapter":
            raise ValidationError(f"--adapter {entry}: {art.ref} is a {art.kind}, not an adapter")
        base, served = _base_digest(art), _base_digest(target)
        if base and served and base != served:
            raise ValidationError(
                f"--adapter {entry}: {art.ref} was trained on {art.metadata.get('base_model')}, "
                f"not on the base {target.ref} is served on"
            )
        out.append(f"{name or art.name}={art.ref}")
    return tuple(out)


def _post(state: dict[str, Any], folder: Path, path: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    import httpx

    url = state.get("url")
    if not url or state.get("engine") != "builtin":
        raise DeploymentError(f"deployment {state['name']!r} is not a running builtin server; adapters need one")
    headers = {"Authorization": f"Bearer {admin_token(folder)}"}
    try:
        r = httpx.post(url.rstrip("/") + path, json=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise DeploymentError(f"deployment {state['name']!r} did not answer at {url}: {exc}") from None
    try:
        payload = r.json()
    except ValueError:
        payload = {}
    if r.status_code >= 400:
        message = (payload.get("error") or {}).get("message") or r.text[:300]
        if r.status_code == 404:
            raise ValidationError(message)
        raise (ValidationError if r.status_code < 500 else DeploymentError)(message)
    return payload


def _change(name: str, *, call: Call, action: Any, timeout: float):
    """Apply ``change`` to the running server, then record the new deployment version."""
    from .control import _handle_key, _runtime, _save
    from .records import load_config, require_state, run_dir
    from .views import Deployment

    ws = call.ws
    reg = ws.registry
    state = require_state(reg, name)
    config = load_config(state)
    old = DeploySpec.from_dict(config["spec"])
    new = action(old, state, run_dir(reg, name), timeout)
    art = _save(ws, new, call)
    runtime = _runtime(ws, art, new, config["runtime"].get("api_key_sha256"))
    config_path = run_dir(reg, name) / f"config-v{art.version}.json"
    config_path.write_text(json.dumps(runtime, indent=1))
    state = {**state, "ref": art.ref, "config_path": str(config_path), "adapters": list(new.adapters)}
    reg.put_state("deployments", name, state)
    art = reg.set_alias(art, "production" if new.canary_arm is None else "canary")
    return Deployment(name, state, art, ws, _handle_key(name, runtime["runtime"].get("api_key_sha256"), None))


def add_adapter(
    name: str,
    ref: str,
    *,
    as_name: str | None = None,
    override_policy: str | None = None,
    timeout: float = 120.0,
    workspace: Any = None,
    call: Call | None = None,
):
    """Serve another adapter of the same base from deployment ``name``'s running process, by name.

    Clients then ask for ``model=as_name`` (default: the adapter's name); the deployment's
    split is unchanged. Serving an adapter is deploying it: ``[tool.llmops.policy.deploy]``
    is checked first (``override_policy``: a reason, audited). Returns the deployment
    handle of the new version; the audit trail gets an ``add-adapter`` event.
    """
    from ..governance.policy import DEPLOY, require

    call = call or Call(workspace=workspace)
    added: list[str] = []

    def action(spec: DeploySpec, state, folder, timeout):
        from .control import _model_artifact

        target = _model_artifact(call.ws, spec.target, "the target")
        entry = pin_adapters(call.ws, (f"{as_name}={ref}" if as_name else ref,), target)[0]
        lora, pinned = split_adapter(entry)
        if any(split_adapter(e)[0] == lora for e in spec.adapters):
            raise ValidationError(f"deployment {name!r} already serves an adapter named {lora!r}")
        reg = call.ws.registry
        require(reg, reg.resolve(pinned), (DEPLOY,), override_policy, "add-adapter")  # before the server loads it
        _post(state, folder, "/v1/load_lora_adapter", {"lora_name": lora, "lora_path": pinned}, timeout)
        added[:] = [lora, pinned]
        return spec.replace(adapters=(*spec.adapters, entry))

    handle = _change(name, call=call, action=action, timeout=timeout)
    call.ws.registry.record_event("add-adapter", handle.artifact.ref, to_ref=added[1], detail={"lora_name": added[0]})
    return handle


def remove_adapter(name: str, adapter: str, *, timeout: float = 120.0, workspace: Any = None, call: Call | None = None):
    """Stop serving the adapter loaded as ``adapter``; its requests in flight finish first."""
    call = call or Call(workspace=workspace)
    removed: list[str] = []

    def action(spec: DeploySpec, state, folder, timeout):
        removed[:] = [split_adapter(e)[1] for e in spec.adapters if split_adapter(e)[0] == adapter]
        kept = tuple(e for e in spec.adapters if split_adapter(e)[0] != adapter)
        if len(kept) == len(spec.adapters):
            served = ", ".join(split_adapter(e)[0] for e in spec.adapters) or "none"
            raise ValidationError(f"deployment {name!r} serves no adapter named {adapter!r}; it serves {served}")
        _post(state, folder, "/v1/unload_lora_adapter", {"lora_name": adapter}, timeout)
        return spec.replace(adapters=kept)

    handle = _change(name, call=call, action=action, timeout=timeout)
    call.ws.registry.record_event("remove-adapter", handle.artifact.ref, from_ref=removed[0] if removed else None,
                                  detail={"lora_name": adapter})  # fmt: skip
    return handle
