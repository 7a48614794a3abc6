"""One ``APIHandler`` per resource; each is one call into ``llmops_magics.adapters.jupyter.browse`` and one ``finish``.

``GET /llmops/artifacts?kind=&search=&limit=&offset=``    a page of names, counts per kind
``GET /llmops/artifacts/KIND/NAME``                       versions, aliases, latest in full
``GET /llmops/artifacts/KIND/NAME/VERSION``               one version (VERSION: 3, or an alias)
``GET /llmops/lineage/KIND/NAME/VERSION?depth=``          upstream and downstream edges
``GET /llmops/graph/KIND/NAME/VERSION?depth=``            the lineage graph: nodes (kind, aliases) and edges
``GET /llmops/prompts/NAME/VERSION``                      a prompt version's template and params
``GET /llmops/evals/NAME/VERSION``                        an eval's summary metrics
``GET /llmops/audit/KIND/NAME/VERSION?limit=``            the audit events naming that version, newest first
``GET /llmops/deployments``                               deployments with live status
``GET /llmops/traces?prompt=REF&since=1h&limit=``         the latest traces, newest first
``GET /llmops/traces/ID?max_spans=``                      one trace's span tree (ID: ``last`` or a unique prefix)
``GET /llmops/charts/KIND/NAME/VERSION``                  a version's pictures as SVG text
``GET /llmops/changes``                                   the change counter, with an ETag
``POST /llmops/aliases/KIND/NAME/VERSION`` ``{"alias"}``   point an alias at that version

Errors are JSON ``{"message", "reason"}`` with 400 (bad input), 404 (not found), 413 (a body
over ``MAX_BODY_BYTES``) or 500/503, never a traceback. Bodies are bounded in size and
nesting before they are parsed (``llmops_magics.inputs``).
"""

from __future__ import annotations

import asyncio
import json
from functools import partial
from typing import Any

import tornado
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from ...errors import LLMOpsError, NotFoundError, RegistryError, ValidationError
from ...inputs import TooLarge, loads
from .browse import Browser

NAMESPACE = "llmops"
MAX_BODY_BYTES = 64 * 1024  # the routes take small JSON objects
_SEGMENT = r"([^/]+)"

__all__ = ["setup_route_handlers", "NAMESPACE"]


def _status_of(exc: LLMOpsError) -> tuple[int, str]:
    if isinstance(exc, TooLarge):
        return 413, "too large"
    if isinstance(exc, ValidationError):
        return 400, "invalid"
    if isinstance(exc, NotFoundError):
        return 404, "not found"
    if isinstance(exc, RegistryError):
        return 503, "registry unavailable"
    return 500, "error"


class _Handler(APIHandler):
    """Runs the core call off the event loop and turns the exception tree into JSON statuses."""

    def initialize(self, browser: Browser) -> None:
        self.browser = browser

    def prepare(self):
        length = self.request.headers.get("Content-Length", "")
        if (length.isdigit() and int(length) > MAX_BODY_BYTES) or len(self.request.body or b"") > MAX_BODY_BYTES:
            self._error(413, f"request body is larger than {MAX_BODY_BYTES} bytes", "too large")
            return None
        return super().prepare()

    def _error(self, status: int, message: str, reason: str) -> None:
        self.set_status(status)
        self.finish(json.dumps({"message": message, "reason": reason}))

    def json_body(self) -> dict[str, Any]:
        """The body as a JSON object, bounded in size and nesting before it is parsed."""
        data = loads(self.request.body or b"{}", max_bytes=MAX_BODY_BYTES, what="the request body")
        if not isinstance(data, dict):
            raise ValidationError(f"the request body must be a JSON object, found {type(data).__name__}")
        return data

    async def reply(self, method: Any, *args: Any, **kwargs: Any) -> None:
        loop = asyncio.get_running_loop()
        try:
            body = await loop.run_in_executor(None, partial(method, *args, **kwargs))
        except LLMOpsError as exc:
            status, reason = _status_of(exc)
            self.log.info("llmops %s %s: %s", self.request.path, status, exc)
            self._error(status, str(exc), reason)
            return
        self.finish(json.dumps(body))

    def arg(self, name: str) -> str | None:
        return self.get_query_argument(name, None)


class ArtifactsHandler(_Handler):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self.reply(
            self.browser.list_artifacts, self.arg("kind"), self.arg("search"), self.arg("limit"), self.arg("offset")
        )


class ArtifactHandler(_Handler):
    @tornado.web.authenticated
    async def get(self, kind: str, name: str) -> None:
        await self.reply(self.browser.artifact, kind, name)


class VersionHandler(_Handler):
    @tornado.web.authenticated
    async def get(self, kind: str, name: str, version: str) -> None:
        await self.reply(self.browser.version, kind, name, version)


class LineageHandler(_Handler):
    @tornado.web.authenticated
    async def get(self, kind: str, name: str, version: str) -> None:
        await self.reply(self.browser.lineage, kind, name, version, self.arg("depth"))


class GraphHandler(_Handler):
    @tornado.web.authenticated
    async def get(self, kind: str, name: str, version: str) -> None:
        await self.reply(self.browser.graph, kind, name, version, self.arg("depth"))


class AuditHandler(_Handler):
    @tornado.web.authenticated
    async def get(self, kind: str, name: str, version: str) -> None:
        await self.reply(self.browser.audit, kind, name, version, self.arg("limit"))


class PromptHandler(_Handler):
    @tornado.web.authenticated
    async def get(self, name: str, version: str) -> None:
        await self.reply(self.browser.prompt, name, version)


class EvalHandler(_Handler):
    @tornado.web.authenticated
    async def get(self, name: str, version: str) -> None:
        await self.reply(self.browser.eval_summary, name, version)


class TracesHandler(_Handler):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self.reply(self.browser.traces, self.arg("prompt"), self.arg("since"), self.arg("limit"))


class TraceHandler(_Handler):
    @tornado.web.authenticated
    async def get(self, trace_id: str) -> None:
        await self.reply(self.browser.trace, trace_id, self.arg("max_spans"))


class ChartsHandler(_Handler):
    @tornado.web.authenticated
    async def get(self, kind: str, name: str, version: str) -> None:
        await self.reply(self.browser.charts, kind, name, version)


class DeploymentsHandler(_Handler):
    @tornado.web.authenticated
    async def get(self) -> None:
        await self.reply(self.browser.deployments)


class ChangesHandler(_Handler):
    """The cheap poll: 304 while ``If-None-Match`` still names the current counter."""

    @tornado.web.authenticated
    async def get(self) -> None:
        state = await asyncio.get_running_loop().run_in_executor(None, self.browser.changes)
        etag = f'"{state["changes"]}"'
        self.set_header("ETag", etag)
        self.set_header("Cache-Control", "no-cache")
        if self.request.headers.get("If-None-Match") == etag:
            self.set_status(304)
            self.finish()
            return
        self.finish(json.dumps(state))


class AliasHandler(_Handler):
    @tornado.web.authenticated
    async def post(self, kind: str, name: str, version: str) -> None:
        try:
            alias = self.json_body().get("alias")
        except LLMOpsError as exc:
            status, reason = _status_of(exc)
            self._error(status, str(exc), reason)
            return
        await self.reply(self.browser.tag, kind, name, version, alias)


class NotFoundHandler(_Handler):
    """Any other path under ``/llmops/``: a JSON 404 rather than an HTML page."""

    @tornado.web.authenticated
    def get(self, path: str) -> None:
        self.set_status(404)
        self.finish(json.dumps({"message": f"no route /{NAMESPACE}/{path}", "reason": "not found"}))


def setup_route_handlers(web_app: Any, browser: Browser) -> None:
    base_url = web_app.settings["base_url"]

    def route(*parts: str) -> str:
        return url_path_join(base_url, NAMESPACE, *parts)

    handlers = [
        (route("artifacts"), ArtifactsHandler),
        (route("artifacts", _SEGMENT, _SEGMENT), ArtifactHandler),
        (route("artifacts", _SEGMENT, _SEGMENT, _SEGMENT), VersionHandler),
        (route("lineage", _SEGMENT, _SEGMENT, _SEGMENT), LineageHandler),
        (route("graph", _SEGMENT, _SEGMENT, _SEGMENT), GraphHandler),
        (route("prompts", _SEGMENT, _SEGMENT), PromptHandler),
        (route("audit", _SEGMENT, _SEGMENT, _SEGMENT), AuditHandler),
        (route("evals", _SEGMENT, _SEGMENT), EvalHandler),
        (route("deployments"), DeploymentsHandler),
        (route("traces"), TracesHandler),
        (route("traces", _SEGMENT), TraceHandler),
        (route("charts", _SEGMENT, _SEGMENT, _SEGMENT), ChartsHandler),
        (route("changes"), ChangesHandler),
        (route("aliases", _SEGMENT, _SEGMENT, _SEGMENT), AliasHandler),
        (route("(.*)"), NotFoundHandler),
    ]
    web_app.add_handlers(".*$", [(pattern, handler, {"browser": browser}) for pattern, handler in handlers])
