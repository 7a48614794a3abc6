"""Read-only views of the registry for browsers: the JupyterLab sidebar, its REST routes, scripts.

Every method returns plain JSON-ready dicts and raises only ``llmops_magics.errors``
(``ValidationError`` for a bad kind, name, version or page; ``NotFoundError`` for
something that does not exist), so an adapter can translate them without knowing
the registry. Names arriving from URLs are validated before they reach a query,
which is what keeps ``..``, ``/`` and other path tricks out.

A ``Browser`` opens its registry lazily and only once the folder holds a registry:
browsing never creates ``.llmops/`` in a folder that has none.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ...context.home import resolve_home
from ...errors import NotFoundError, ValidationError
from ...kinds import codec
from ...monitoring.history import latest_monitor
from ...serving.liveness import describe
from ...store import KINDS, Artifact, Reference, Registry
from ...store.records import thaw
from ...store.refs import LATEST, MAX_NAME, validate_kind, validate_name, version_number

__all__ = ["Browser", "DEFAULT_PAGE", "MAX_PAGE"]

DEFAULT_PAGE = 100
MAX_PAGE = 500
MAX_DEPTH = 50


def _int(value: Any, what: str, low: int, high: int, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{what} must be an integer, found {value!r}") from None
    if not low <= number <= high:
        raise ValidationError(f"{what} must be between {low} and {high}, found {number}")
    return number


def _reference(kind: str, name: str, version: str | int) -> Reference:
    """A reference from three URL segments, each validated on its own."""
    validate_kind(kind)
    validate_name(name)
    text = str(version)
    if text.isdigit():
        number = version_number(text)
        if number is None:
            raise ValidationError(f"version must be a positive integer, found {text!r}")
        return Reference(kind, name, version=number)
    if text != LATEST:
        validate_name(text, "version or alias")
    return Reference(kind, name, alias=text)


class Browser:
    """Queries over one registry folder, safe to call from several threads."""

    def __init__(self, home: str | os.PathLike | None = None, *, start: str | os.PathLike | None = None) -> None:
        self.home: Path = resolve_home(start=start, explicit=home)
        self._registry: Registry | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Browser({str(self.home)!r})"

    def registry(self) -> Registry | None:
        """The registry, or None while the folder holds none yet."""
        with self._lock:
            if self._registry is None and Registry.found_at(self.home):
                self._registry = Registry(self.home)
            return self._registry

    def _require(self) -> Registry:
        reg = self.registry()
        if reg is None:
            raise NotFoundError(f"no registry at {self.home} yet: save an artifact from a notebook first")
        return reg

    def close(self) -> None:
        with self._lock:
            if self._registry is not None:
                self._registry.close()
                self._registry = None

    # ------------------------------------------------------------------ listing

    def changes(self) -> dict[str, Any]:
        """The registry's change counter: pollers refetch only when it moved."""
        reg = self.registry()
        return {"changes": reg.change_counter() if reg else 0, "home": str(self.home)}

    def list_artifacts(
        self, kind: str | None = None, search: str | None = None, limit: Any = None, offset: Any = None
    ) -> dict[str, Any]:
        """One page of artifact names (ordered by kind, then name) and the count per kind."""
        kind = validate_kind(kind) if kind else None
        search = (search or "").strip() or None
        if search is not None and len(search) > MAX_NAME:
            raise ValidationError(f"search must be at most {MAX_NAME} characters, found {len(search)}")
        page = _int(limit, "limit", 0, MAX_PAGE, DEFAULT_PAGE)
        start = _int(offset, "offset", 0, 10**9, 0)
        reg = self.registry()
        if reg is None:
            counts = dict.fromkeys(KINDS, 0)
            return self._page([], 0, counts, kind, search, page, start, 0)
        changes = reg.change_counter()
        counts = {k: reg.count_names(k, search) for k in KINDS}
        total = counts[kind] if kind else sum(counts.values())
        items = [s.to_dict() for s in reg.names(kind, search, page, start)] if page else []
        return self._page(items, total, counts, kind, search, page, start, changes)

    @staticmethod
    def _page(items, total, counts, kind, search, limit, offset, changes) -> dict[str, Any]:
        return {
            "items": items,
            "total": total,
            "counts": counts,
            "kind": kind,
            "search": search,
            "limit": limit,
            "offset": offset,
            "changes": changes,
        }

    # ------------------------------------------------------------------ one artifact

    def artifact(self, kind: str, name: str) -> dict[str, Any]:
        """Everything about one name: its versions (newest first), aliases, and the latest in full."""
        validate_kind(kind)
        validate_name(name)
        reg = self._require()
        versions = reg.versions(kind, name)
        latest = reg.get(kind, name, reg.latest_version(kind, name))  # not always the newest: see Registry
        return {
            "kind": kind,
            "name": name,
            "ref": f"{kind}://{name}",
            "aliases": {LATEST: latest.version, **reg.aliases(kind, name)},
            "versions": [_version_summary(a) for a in reversed(versions)],
            "latest": self._detail(reg, latest),
        }

    def version(self, kind: str, name: str, version: str | int) -> dict[str, Any]:
        """One version with its metadata, spec, provenance, code snippets and kind-specific extras."""
        reg = self._require()
        return self._detail(reg, reg.resolve(_reference(kind, name, version)))

    def _detail(self, reg: Registry, art: Artifact) -> dict[str, Any]:
        kind = codec(art.kind)
        out = art.to_dict()
        out["code"] = kind.snippets(art)
        out["parents"] = [e.to_dict() for e in reg.upstream(art, depth=1)]
        out["children"] = [e.to_dict() for e in reg.downstream(art, depth=1)]
        out.update(kind.details(art, reg))
        return out

    def lineage(self, kind: str, name: str, version: str | int, depth: Any = None) -> dict[str, Any]:
        """Upstream and downstream of one version as nodes and edges, each node with its kind."""
        levels = _int(depth, "depth", 1, MAX_DEPTH, MAX_DEPTH)
        reg = self._require()
        art = reg.resolve(_reference(kind, name, version))
        graph = reg.lineage(art, levels)
        graph["upstream"] = [e.to_dict() for e in reg.upstream(art, levels)]
        graph["downstream"] = [e.to_dict() for e in reg.downstream(art, levels)]
        return graph

    def graph(self, kind: str, name: str, version: str | int, depth: Any = None) -> dict[str, Any]:
        """The lineage graph around one version (``store.graph``): every node once, with its kind and aliases."""
        from ...store.graph import graph

        levels = _int(depth, "depth", 1, MAX_DEPTH, MAX_DEPTH)
        reg = self._require()
        return graph(reg, reg.resolve(_reference(kind, name, version)), levels)

    def tag(self, kind: str, name: str, version: str | int, alias: Any) -> dict[str, Any]:
        """Point ``alias`` at one version (moving it), then return that version as ``version`` does."""
        from ...store.refs import validate_alias

        reg = self._require()
        art = reg.resolve(_reference(kind, name, version))
        reg.set_alias(art, validate_alias(alias))
        return self._detail(reg, reg.get(art.kind, art.name, art.version))

    def audit(self, kind: str, name: str, version: str | int, limit: Any = None) -> dict[str, Any]:
        """The audit events naming one version (alias moves to or from it, deployments serving it), newest first."""
        reg = self._require()
        art = reg.resolve(_reference(kind, name, version))
        events = reg.audit_events(art)[::-1][: _int(limit, "limit", 1, MAX_PAGE, DEFAULT_PAGE)]
        return {"ref": art.ref, "items": [e.to_dict() for e in events]}

    def prompt(self, name: str, version: str | int) -> dict[str, Any]:
        """A prompt version's template text and params, as stored."""
        reg = self._require()
        art = reg.resolve(_reference("prompt", name, version))
        return {"ref": art.ref, **codec("prompt").details(art, reg)}

    def eval_summary(self, name: str, version: str | int) -> dict[str, Any]:
        """An eval's ``metadata["summary"]`` (metric → value), whatever dict is there."""
        reg = self._require()
        art = reg.resolve(_reference("eval", name, version))
        return {"ref": art.ref, **codec("eval").details(art, reg), "metadata": thaw(art.metadata)}

    def traces(self, prompt: str | None = None, since: str | None = None, limit: Any = None) -> dict[str, Any]:
        """The latest traces in ``traces.db`` next to the registry (``tracing.read.trace_listing``), newest first."""
        from ...tracing.read import trace_listing

        prompt = (prompt or "").strip() or None
        if prompt is not None and len(prompt) > 2 * MAX_NAME:
            raise ValidationError(f"prompt must be at most {2 * MAX_NAME} characters, found {len(prompt)}")
        return trace_listing(
            self.home, self.registry(), prompt=prompt, since=since, limit=_int(limit, "limit", 1, MAX_PAGE, 50)
        )

    def trace(self, trace_id: str, max_spans: Any = None) -> dict[str, Any]:
        """One trace as a span tree with offsets and durations (``tracing.read.trace_tree``)."""
        from ...tracing.read import trace_tree

        return trace_tree(self.home, trace_id, max_spans=_int(max_spans, "max_spans", 1, 2000, 200))

    def charts(self, kind: str, name: str, version: str | int) -> dict[str, Any]:
        """The pictures of one version (``display.charts``): an eval's metric CIs, a fine-tune's loss curves…"""
        from ...display.result_charts import artifact_charts

        reg = self._require()
        art = reg.resolve(_reference(kind, name, version))
        return {"ref": art.ref, "charts": [c.to_dict() for c in artifact_charts(art, reg)]}

    def deployments(self, probe_timeout: float = 0.5) -> dict[str, Any]:
        """Every recorded deployment with its liveness (``serving.liveness``: the answer ``%deploy list`` gives)."""
        reg = self.registry()
        records = reg.list_state("deployments") if reg else {}
        pairs = [(key, rec) for key, rec in records.items() if isinstance(rec, dict)]
        if not pairs:
            return {"items": []}
        with ThreadPoolExecutor(max_workers=min(8, len(pairs))) as pool:
            items = list(pool.map(lambda kv: describe(kv[1], probe_timeout, key=kv[0]), pairs))
        for item in items:  # the newest monitor run, so the sidebar can mark a failing deployment
            item["monitor"] = latest_monitor(reg, item["name"]) if isinstance(item.get("name"), str) else None
        return {"items": items}


def _version_summary(art: Artifact) -> dict[str, Any]:
    return {
        "version": art.version,
        "ref": art.ref,
        "digest": art.short_digest,
        "created_at": art.created.isoformat(),
        "aliases": list(art.aliases),
        "size": art.size,
    }
