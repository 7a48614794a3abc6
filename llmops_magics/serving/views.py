"""What ``%deploy`` returns: handles and reports that display themselves in a notebook.

Plain data plus ``_repr_mimebundle_`` (text/plain and escaped text/html); reading
them never changes anything. Actions (``stop``, ``promote``…) are explicit
method calls on the ``Deployment`` handle.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..display.html import esc, format_time, kv_html, mimebundle, money, table_html, text_table
from ..store import Artifact

__all__ = ["Deployment", "DeploymentList", "DeploymentStatus", "LogTail", "StopResult"]


def _fmt(value: Any, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def _canary(state: Mapping[str, Any]) -> str:
    c = state.get("canary")
    return f"{c['target']} ({c['weight']:g}%)" if c else ""


@dataclass
class Deployment:
    """A running deployment: its URL, and shortcuts to call, watch and manage it."""

    name: str
    state: Mapping[str, Any]
    artifact: Artifact | None = None
    workspace: Any = None
    api_key: str | None = field(default=None, repr=False)

    url = property(lambda self: self.state.get("url"))
    ref = property(lambda self: self.state.get("ref"))
    pid = property(lambda self: self.state.get("pid"))
    port = property(lambda self: self.state.get("port"))

    @property
    def base_url(self) -> str:
        """What OpenAI clients take as ``base_url``."""
        return f"{self.url}/v1"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def client(self, api_key: str | None = None, **kwargs: Any):
        """An ``openai.OpenAI`` client pointed at this deployment."""
        from openai import OpenAI

        return OpenAI(base_url=self.base_url, api_key=api_key or self.api_key or "none", **kwargs)

    def complete(self, prompt: str | None = None, *, variables: Mapping[str, Any] | None = None, **params: Any):
        """``POST /v1/completions``; returns the decoded JSON (raises ``DeploymentError`` on a 4xx/5xx)."""
        body = {"model": self.name, "max_tokens": 32, "temperature": 0.0, **params}
        if variables is not None:
            body["variables"] = dict(variables)
        if prompt is not None:
            body["prompt"] = prompt
        return self._post("/v1/completions", body)

    def chat(self, message: str | Sequence[Mapping[str, str]], **params: Any):
        """``POST /v1/chat/completions`` with one user message or a list of messages."""
        messages = [{"role": "user", "content": message}] if isinstance(message, str) else list(message)
        return self._post(
            "/v1/chat/completions", {"model": self.name, "temperature": 0.0, "messages": messages, **params}
        )

    def _post(self, path: str, body: Mapping[str, Any]):
        from ..errors import DeploymentError
        from .launcher import http_json

        status, payload = http_json(self.url + path, method="POST", body=body, headers=self._headers(), timeout=120)
        if status >= 400:
            message = payload.get("error", {}).get("message") if isinstance(payload, dict) else payload
            raise DeploymentError(f"{self.name} answered {status}: {message}")
        return payload

    def status(self, window_s: float = 300.0):
        from .status import deployment_status

        return deployment_status(self.name, window_s=window_s, workspace=self.workspace)

    def logs(self, lines: int = 50):
        from .status import deployment_logs

        return deployment_logs(self.name, lines=lines, workspace=self.workspace)

    def monitor(self, **kwargs: Any):
        """The live monitor panel (a view the notebook extension installs)."""
        from ..display.views import require_view

        return require_view(
            "deployment-monitor", self.name, workspace=self.workspace, what="the deployment monitor", **kwargs
        )

    def drift(self, **kwargs: Any):
        from .drift import deployment_drift

        return deployment_drift(self.name, workspace=self.workspace, **kwargs)

    def stop(self):
        from .control import stop_deployment

        return stop_deployment(self.name, workspace=self.workspace)

    def _summary(self) -> dict[str, Any]:
        s = self.state
        out = {
            "deployment": self.name,
            "url": s.get("url"),
            "status": s.get("status"),
            "serves": s.get("target"),
            "prompt": s.get("prompt") or "",
            "canary": _canary(s),
            "engine": s.get("engine"),
            "pid": s.get("pid"),
            "artifact": s.get("ref"),
            "auth": "API key" if s.get("auth") else "none",
            "log": s.get("log_path"),
        }
        return {k: v for k, v in out.items() if v not in ("", None)}

    def __str__(self) -> str:
        return "\n".join(f"{k}: {v}" for k, v in self._summary().items())

    def _repr_mimebundle_(self, include=None, exclude=None):
        example = (
            f"from openai import OpenAI\nclient = OpenAI(base_url={self.base_url!r}, api_key=...)\n"
            f"client.completions.create(model={self.name!r}, prompt='…', max_tokens=32)"
        )
        body = kv_html(self._summary()) + f"<pre style='margin:4px 0'>{esc(example)}</pre>"
        return mimebundle(str(self), body, {"ref": self.ref, "url": self.url})


@dataclass(frozen=True)
class DeploymentList:
    rows: Sequence[Mapping[str, Any]]

    COLUMNS = ("name", "status", "url", "serves", "canary", "engine", "pid", "started")

    def _rows(self):
        for s in self.rows:
            started = format_time(s["started_at"]) if s.get("started_at") else ""
            yield (
                s["name"],
                s.get("status"),
                s.get("url"),
                s.get("target"),
                _canary(s),
                s.get("engine"),
                s.get("pid"),
                started,
            )

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __str__(self) -> str:
        return text_table(self.COLUMNS, self._rows()) if self.rows else "(no deployments)"

    def _repr_mimebundle_(self, include=None, exclude=None):
        return mimebundle(str(self), table_html(self.COLUMNS, self._rows()) if self.rows else "<i>(no deployments)</i>")


@dataclass(frozen=True)
class DeploymentStatus:
    """Liveness plus what the request log says about the last ``window_s`` seconds."""

    name: str
    state: Mapping[str, Any]
    status: str
    health: Mapping[str, Any] | None
    summary: Mapping[str, Any]
    window_s: float
    timeline: Mapping[str, Any] | None = None  # ``display.result_charts.request_timeline`` of the window
    note: str | None = None  # why there are no figures (a deployment without a request log), shown instead

    COLUMNS = (
        "arm",
        "requests",
        "errors",
        "req/s",
        "p50 ms",
        "p95 ms",
        "ttft p50 ms",
        "tokens in",
        "tokens out",
        "cost",
    )

    @property
    def alive(self) -> bool:
        return self.status == "running"

    def _rows(self):
        parts = [("all", self.summary["all"]), *self.summary["arms"].items()]
        for arm, v in parts:
            yield (
                arm,
                v["requests"],
                v["errors"],
                _fmt(v["throughput_rps"], digits=2),
                _fmt(v["p50_ms"]),
                _fmt(v["p95_ms"]),
                _fmt(v["ttft_p50_ms"]),
                v["tokens_in"],
                v["tokens_out"],
                money(v.get("cost_usd")),
            )

    def _head(self) -> dict[str, Any]:
        versions = ", ".join(
            f"{a['arm']}={a['version']} ({a['weight']:g}%)" for a in (self.health or {}).get("arms", [])
        )
        return {
            "deployment": self.name,
            "status": self.status,
            "url": self.state.get("url"),
            "pid": self.state.get("pid"),
            "versions": versions or self.state.get("target"),
            "window": f"last {self.window_s:g}s",
        }

    def __str__(self) -> str:
        head = "  ".join(f"{k}: {v}" for k, v in self._head().items())
        return head + "\n" + (self.note or text_table(self.COLUMNS, self._rows()))

    def charts(self) -> list:
        """Latency (p50, p95) and throughput over the window, in time slices."""
        from ..display.result_charts import deployment_charts

        return deployment_charts(self.timeline)

    def _repr_mimebundle_(self, include=None, exclude=None):
        from ..display.charts import with_charts

        if self.note:
            return mimebundle(str(self), kv_html(self._head()) + f"<p><i>{esc(self.note)}</i></p>")
        bundle = mimebundle(str(self), kv_html(self._head()) + table_html(self.COLUMNS, self._rows()))
        return with_charts(bundle, self.charts())


@dataclass(frozen=True)
class LogTail:
    name: str
    path: str
    text: str

    def __str__(self) -> str:
        return self.text or f"(the log of {self.name} is empty: {self.path})"

    def _repr_mimebundle_(self, include=None, exclude=None):
        return mimebundle(str(self), f"<div><code>{esc(self.path)}</code></div><pre>{esc(str(self))}</pre>")


@dataclass(frozen=True)
class StopResult:
    name: str
    pid: int | None
    url: str | None
    outcome: str  # "stopped", "killed" or "not running"

    def __str__(self) -> str:
        return f"deployment {self.name}: {self.outcome} (pid {self.pid}, {self.url})"

    def _repr_mimebundle_(self, include=None, exclude=None):
        return mimebundle(str(self), f"<p>{esc(str(self))}</p>")
