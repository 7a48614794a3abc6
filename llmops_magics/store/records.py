"""The registry's records: frozen, so a cached version can be handed out safely."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

__all__ = ["Artifact", "Edge", "freeze"]


def freeze(value: Any) -> Any:
    """A read-only view of decoded JSON, so records stay immutable all the way down."""
    if isinstance(value, dict):
        return MappingProxyType({k: freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


@dataclass(frozen=True)
class Artifact:
    """One immutable version of a named artifact.

    ``payload`` is the blob digest of its content (a single file, or a manifest
    for a folder); ``digest`` is the content identity used for deduplication.
    Only ``aliases`` and ``wandb`` change after creation, and a fresh record is
    read for them.
    """

    id: int
    kind: str
    name: str
    version: int
    digest: str
    payload: str
    is_tree: bool
    size: int
    created_at: float
    metadata: Mapping[str, Any] = field(default_factory=dict)
    source: Mapping[str, Any] = field(default_factory=dict)
    spec: Mapping[str, Any] = field(default_factory=dict)
    wandb: Mapping[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.kind}://{self.name}/{self.version}"

    @property
    def short_digest(self) -> str:
        return self.digest[:12]

    @property
    def created(self) -> datetime:
        return datetime.fromtimestamp(self.created_at, tz=UTC)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (CLI ``--json``, REST routes)."""
        return {
            "ref": self.ref,
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "digest": self.digest,
            "size": self.size,
            "is_tree": self.is_tree,
            "aliases": list(self.aliases),
            "created_at": self.created.isoformat(),
            "metadata": thaw(self.metadata),
            "source": thaw(self.source),
            "spec": thaw(self.spec),
            "wandb": thaw(self.wandb),
        }

    def __str__(self) -> str:
        aliases = f" [{', '.join(self.aliases)}]" if self.aliases else ""
        return f"{self.ref} {self.short_digest}{aliases}"


@dataclass(frozen=True)
class Edge:
    """``source`` was used to make ``target`` (``relation`` says how: base, data, prompt, …)."""

    source: str
    target: str
    relation: str

    def to_dict(self) -> dict[str, str]:
        return {"source": self.source, "target": self.target, "relation": self.relation}


def dumps(value: Any) -> str:
    return json.dumps(thaw(value), sort_keys=True, separators=(",", ":"), default=str)
