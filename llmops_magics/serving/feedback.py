"""Rating a deployment's answers from the kernel: ``feedback("qa", request_id, label="down", correction=…)``.

One rule decides where a rating goes. When the deployment's record says a built-in server
is running here, the rating goes through that server's ``POST /v1/feedback`` (with the
deployment's admin token, so a key clients use is never needed); otherwise it is written
straight into the request log file. Why: a server writes its log in the background, so a
request it answered a moment ago may not be in the file yet, and the server flushes its log
before it stores the rating; with no server running, nothing else writes the file, and
ratings of past traffic (a review the day after) still land.

``traffic_source`` is what ``%dataset from-log`` and ``%monitor review`` also ask: which
deployment version a log belongs to, where the log is and whether it holds texts. A
stopped deployment keeps its log and its latest version in the registry, so both work on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..display.html import kv_html, mimebundle
from ..errors import DeploymentError, NotFoundError, ValidationError
from ..store import Artifact

__all__ = ["Feedback", "TrafficSource", "feedback", "traffic_source"]


@dataclass(frozen=True)
class TrafficSource:
    """A deployment's request log: its file, the deployment version it belongs to, whether it keeps texts."""

    name: str
    artifact: Artifact
    log: Path
    log_text: bool
    state: dict[str, Any] | None  # the running record; None once the deployment was stopped
    request_log: bool = True  # False: deployed with --no-request-log, the log was never written

    @property
    def ref(self) -> str:
        return self.artifact.ref

    def require_log(self, purpose: str) -> None:
        from .requestlog import no_log_message

        if not self.request_log:
            raise ValidationError(no_log_message(self.name, purpose))

    def require_text(self, purpose: str) -> None:
        self.require_log(purpose)
        if not self.log_text:
            raise ValidationError(
                f"deployment {self.name!r} ({self.ref}) logs no texts, so {purpose}; "
                f"redeploy it with --log-text (log_text=True)"
            )

    @property
    def served_here(self) -> bool:
        """A built-in server of this deployment is running on this machine (and answers)."""
        from .liveness import liveness

        state = self.state
        return bool(state) and state.get("engine", "builtin") == "builtin" and liveness(state).state == "running"


def traffic_source(ws: Any, name: str) -> TrafficSource:
    from .records import NAMESPACE
    from .requestlog import logs_requests, monitor_path

    reg = ws.registry
    state = reg.get_state(NAMESPACE, name)
    try:
        art = reg.resolve(state["ref"]) if state and state.get("ref") else reg.resolve(name, "deployment")
    except NotFoundError:
        raise NotFoundError(f"no deployment is named {name!r}") from None
    log = Path(state["monitor_db"]) if state and state.get("monitor_db") else monitor_path(reg.home, name)
    args = (art.spec or {}).get("args") or {}
    return TrafficSource(name, art, log, bool(args.get("log_text")), state, logs_requests(args))


@dataclass(frozen=True)
class Feedback:
    """One stored rating; ``via`` says whether the server stored it or the kernel wrote the log."""

    deployment: str
    request_id: str
    score: float
    label: str | None
    correction: str | None
    created: float
    via: str

    def _facts(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "request": self.request_id,
            "score": f"{self.score:g}" + (f" ({self.label})" if self.label else ""),
            "correction": self.correction or "-",
            "stored by": self.via,
        }

    def __str__(self) -> str:
        return "  ".join(f"{k}: {v}" for k, v in self._facts().items())

    def _repr_mimebundle_(self, include=None, exclude=None):
        return mimebundle(str(self), kv_html(self._facts(), title="feedback"), {"request_id": self.request_id})


def _through_server(ws: Any, source: TrafficSource, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    from .hotswap import admin_token
    from .launcher import http_json
    from .records import run_dir

    url = (source.state or {}).get("url")
    headers = {"Authorization": f"Bearer {admin_token(run_dir(ws.registry, source.name))}"}
    try:
        status, payload = http_json(f"{url}/v1/feedback", method="POST", body=body, headers=headers, timeout=timeout)
    except OSError as exc:
        raise DeploymentError(f"deployment {source.name!r} did not answer at {url}: {exc}") from None
    if status < 400 and isinstance(payload, dict):
        return payload
    message = (payload.get("error") or {}).get("message") if isinstance(payload, dict) else str(payload)[:300]
    if status == 404:
        raise NotFoundError(message)
    raise (ValidationError if status < 500 else DeploymentError)(message)


def feedback(
    deployment: str,
    request_id: str,
    *,
    score: float | None = None,
    label: str | None = None,
    correction: str | None = None,
    user: str | None = None,
    timeout: float = 10.0,
    workspace: Any = None,
) -> Feedback:
    """Rate the answer a deployment gave to request ``request_id`` (the ``id`` of its response).

    Exactly one of ``score`` (0 to 1) and ``label`` (``"up"`` = 1, ``"down"`` = 0);
    ``correction`` is the answer it should have given (kept only where the deployment logs
    texts; ``%dataset from-log --with-corrections`` trains on it); ``user`` is stored as a
    digest. A request rated again keeps the latest rating. Unknown request: ``NotFoundError``.
    """
    from ..context.workspaces import current
    from .requestlog import user_digest, write_feedback

    ws = workspace or current()
    source = traffic_source(ws, deployment)
    source.require_log("there is no logged request to rate")
    if source.served_here:
        body = {"request_id": request_id, "score": score, "label": label, "correction": correction, "user": user}
        out = _through_server(ws, source, {k: v for k, v in body.items() if v is not None}, timeout)
        return Feedback(deployment, out["request_id"], out["score"], out.get("label"), out.get("correction"),
                        float(out.get("created") or 0), "server")  # fmt: skip
    row = write_feedback(
        source.log,
        request_id,
        score=score,
        label=label,
        correction=correction,
        user=user_digest(deployment, user),
        log_text=source.log_text,
    )
    return Feedback(deployment, row["request_id"], row["score"], row["label"], row["correction"], row["ts"], "kernel")
