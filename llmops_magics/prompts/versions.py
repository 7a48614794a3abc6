"""Versioned prompts on top of the registry: save, get, tag, render, history.

A prompt version's content is its template and its params; saving the same pair
again returns the existing version (moving any aliases given, and ``latest``: going
back to an older template makes that version the one a bare name means). The
description is metadata: changing only it makes no new version.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from ..context.workspaces import Workspace, current
from ..errors import ValidationError
from ..kinds.prompt import FILENAME, decode, encode
from ..recording.publish import mirror, publish
from ..store import Artifact, Registry
from ..store.records import thaw
from .template import ParsedTemplate, parse_template

if TYPE_CHECKING:
    from ..ops.catalog import Call
    from ..ops.prompts import PromptSpec

KIND = "prompt"

__all__ = [
    "PromptVersion",
    "run_save",
    "get_prompt",
    "tag_prompt",
    "render_prompt",
    "prompt_history",
    "list_prompts",
]


@dataclass(frozen=True)
class PromptVersion:
    """One immutable prompt version. ``created`` says whether the save that returned it made it,
    ``latest_moved`` whether that save moved ``latest`` to it."""

    artifact: Artifact
    template: str
    params: Mapping[str, Any] = field(default_factory=dict)
    created: bool | None = None
    latest_moved: bool = False

    @cached_property
    def parsed(self) -> ParsedTemplate:
        return parse_template(self.template)

    name = property(lambda self: self.artifact.name)
    version = property(lambda self: self.artifact.version)
    digest = property(lambda self: self.artifact.digest)
    aliases = property(lambda self: self.artifact.aliases)
    ref = property(lambda self: self.artifact.ref)
    description = property(lambda self: self.artifact.metadata.get("description"))

    @property
    def format(self) -> str:
        return self.parsed.format

    @property
    def variables(self) -> tuple[str, ...]:
        return self.parsed.variables

    @property
    def required_variables(self) -> tuple[str, ...]:
        return self.parsed.required(self.params)

    def render(self, values: Mapping[str, Any] | None = None, /, **kw: Any) -> str | list[dict[str, str]]:
        """Text for a text prompt, a list of ``{"role", "content"}`` messages for a chat prompt.

        Variables come as keywords, as a mapping, or both (keywords win); ``values`` is
        positional-only so a variable may have any name, ``values`` included.
        ``params`` act as defaults for variables of the same name. The result carries
        ``prompt_ref`` (this version), so a traced call it is passed to names the version.
        """
        from .views import RenderedChat, RenderedText

        out = self.parsed.render({**self.params, **(values or {}), **kw}, where=self.ref)
        return RenderedChat(out, self.ref) if isinstance(out, list) else RenderedText(out, self.ref)

    def messages(self, values: Mapping[str, Any] | None = None, /, **kw: Any) -> list[dict[str, str]]:
        out = self.render(values, **kw)
        return out if isinstance(out, list) else [{"role": "user", "content": out}]

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.artifact.to_dict(),
            "template": self.template,
            "params": thaw(self.params),
            "variables": list(self.variables),
            "format": self.format,
        }

    def _summary(self) -> dict[str, Any]:
        status = {True: "new version", False: "unchanged (existing version)", None: ""}[self.created]
        if self.created is False and self.latest_moved:
            status = f"unchanged: same as version {self.version}; latest now points to it"
        out = {
            "prompt": self.ref,
            "digest": self.artifact.short_digest,
            "aliases": ", ".join(self.aliases),
            "variables": ", ".join(self.variables) or "(none)",
            "format": self.format,
        }
        if self.params:
            out["params"] = json.dumps(thaw(self.params), sort_keys=True)
        if status:
            out["status"] = status
        return out

    def __str__(self) -> str:
        return "  ".join(f"{k}: {v}" for k, v in self._summary().items())

    def _repr_mimebundle_(self, include=None, exclude=None):
        from ..display.html import esc, kv_html, mimebundle

        body = kv_html(self._summary()) + f"<pre style='margin:4px 0'>{esc(self.template)}</pre>"
        return mimebundle(str(self), body, {"ref": self.ref, "digest": self.digest})


def _load(art: Artifact, reg: Registry, created: bool | None = None, latest_moved: bool = False) -> PromptVersion:
    template, params = decode(reg.read_bytes(art))
    return PromptVersion(art, template, params, created, latest_moved)


def _normalize(template: str) -> str:
    lines = [ln.rstrip() for ln in template.strip("\n").splitlines()]
    return "\n".join(lines)


def _check_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    params = dict(params or {})
    for key in params:
        if not isinstance(key, str) or not key.isidentifier():
            raise ValidationError(f"param names must be identifiers, found {key!r}")
    try:
        json.dumps(params)
    except TypeError as exc:
        raise ValidationError(f"params must be JSON values: {exc}") from None
    return params


def run_save(spec: PromptSpec, call: Call) -> PromptVersion:
    """Run a ``PromptSpec`` (see ``llmops_magics.save_prompt``): a new version unless the content is stored."""
    ws = call.ws
    template = _normalize(spec.template)
    parsed = parse_template(template)
    params = _check_params(spec.params)
    meta = {
        "description": spec.description,
        "variables": list(parsed.variables),
        "format": parsed.format,
        "params": params,
        "filename": FILENAME,
    }
    stored = spec.replace(template=template, params=params)
    result = publish(
        ws, KIND, spec.name, spec=stored, call=call, data=encode(template, params), metadata=meta, aliases=spec.aliases
    )
    return _load(result.artifact, ws.registry, result.created, result.latest_moved)


def get_prompt(ref: str, *, workspace: Workspace | None = None) -> PromptVersion:
    """``"qa"``, ``"qa/3"``, ``"qa@production"`` or ``"prompt://qa/3"``."""
    reg = (workspace or current()).registry
    return _load(reg.resolve(ref, KIND), reg)


def tag_prompt(
    ref: str, alias: str, *, override_policy: str | None = None, workspace: Workspace | None = None
) -> PromptVersion:
    """Point ``alias`` at this version, moving it from wherever it was (mirrored to W&B).

    ``[tool.llmops.policy]`` may refuse it (``PolicyError``); ``override_policy`` is the audited reason to go ahead.
    """
    ws = workspace or current()
    art = ws.registry.set_alias(ref, alias, KIND, override_policy=override_policy)
    mirror(ws, art)
    return _load(art, ws.registry)


def render_prompt(
    ref: str, values: Mapping[str, Any] | None = None, /, *, workspace: Workspace | None = None, **kw: Any
):
    """Render the version ``ref`` names: ``render_prompt("qa", question="…")`` or ``render_prompt("qa", {…})``.

    ``ref`` and ``values`` are positional-only so a template variable may be called
    ``ref`` or ``values``; one called ``workspace`` must go in the ``values`` mapping.
    """
    return get_prompt(ref, workspace=workspace).render(values, **kw)


def prompt_history(name: str, *, workspace: Workspace | None = None):
    from .views import PromptHistory

    reg = (workspace or current()).registry
    ref = reg.resolve(name, KIND)
    return PromptHistory(ref.name, [_load(a, reg) for a in reg.versions(KIND, ref.name)])


def list_prompts(search: str | None = None, *, workspace: Workspace | None = None):
    from ..display.listing import NameList

    reg = (workspace or current()).registry
    return NameList(reg.names(KIND, search))
