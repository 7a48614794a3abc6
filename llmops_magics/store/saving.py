"""Saving to the registry: a new version (or the one that already holds the content), and its edges.

A mixin of ``Registry`` (as ``Listing``, ``Lineage`` and ``Aliases`` are): these methods
use its blob store, ``transaction``, ``resolve`` and ``get``. A save is one ``BEGIN
IMMEDIATE`` transaction taken after the content is already in the blob store, so
concurrent writers (kernels, the server extension, CLI runs) serialise on the version
number and a writer killed at any point leaves either the whole version or no row at all.

``latest`` follows W&B: it points at the most recently saved version, and saving content
that an older version already holds makes no new version but moves ``latest`` back to
that one (so ``%finetune --prompt qa`` uses the template the notebook shows last).
"""

from __future__ import annotations

import json
import os
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import NotFoundError, ValidationError
from .records import Artifact, Edge, dumps
from .refs import LATEST, validate_alias, validate_kind, validate_name
from .schema import ARTIFACT_COLUMNS

__all__ = ["Saving", "SaveResult"]


@dataclass(frozen=True)
class SaveResult:
    """``created``: a new version was made. ``latest_moved``: ``latest`` now points at a
    version it did not point at before (always so for a new version; for an existing one,
    a return to older content, which a mirror must log again to move W&B's ``latest``).
    ``withheld``: a requested alias ``[tool.llmops.policy]`` refused; the version is saved anyway,
    since refusing the save would throw away what made it (a fine-tune's training)."""

    artifact: Artifact
    created: bool
    latest_moved: bool = False
    withheld: tuple[str, ...] = ()  # aliases the release policy kept off the new version, each with its reason


class Saving:
    """Writes of versions and edges; mixed into ``Registry``."""

    def save(
        self,
        kind: str,
        name: str,
        *,
        data: bytes | None = None,
        path: str | os.PathLike | None = None,
        digest: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        source: Mapping[str, Any] | None = None,
        spec: Mapping[str, Any] | None = None,
        aliases: Iterable[str] = (),
        parents: Iterable[tuple[Any, str]] = (),
    ) -> SaveResult:
        """Store content as a new version, or return the version that already holds it.

        Give ``data`` (bytes) or ``path`` (a file or a folder). ``digest`` overrides the
        content identity used for deduplication (for content whose bytes are not canonical).
        ``parents`` are ``(reference, relation)`` pairs recorded as lineage edges.
        """
        validate_kind(kind)
        validate_name(name)
        aliases = [validate_alias(a) for a in aliases]
        if (data is None) == (path is None):
            raise ValidationError("save() needs exactly one of data= or path=")
        parent_ids = [(self.resolve(ref).id, validate_name(rel, "relation")) for ref, rel in parents]
        if data is not None:
            if not data:
                raise ValidationError(f"{kind} {name!r} has empty content")
            payload, size, is_tree = self.blobs.put_bytes(data), len(data), False
        else:
            p = Path(path)  # type: ignore[arg-type]
            if p.is_dir():
                payload, size = self.blobs.put_tree(p)
                is_tree = True
            elif p.is_file():
                payload, size = self.blobs.put_file(p)
                is_tree = False
            else:
                raise ValidationError(f"path {str(p)!r} does not exist")
        identity = digest or payload
        now = time.time()
        with self.transaction() as cur:
            before = self._latest(cur, kind, name)
            row = cur.execute(
                "SELECT id, version FROM artifacts WHERE kind=? AND name=? AND digest=? ORDER BY version LIMIT 1",
                (kind, name, identity),
            ).fetchone()
            created = row is None
            if created:
                version = cur.execute(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM artifacts WHERE kind=? AND name=?", (kind, name)
                ).fetchone()[0]
                cur.execute(
                    f"INSERT INTO artifacts ({ARTIFACT_COLUMNS}) VALUES (NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '{{}}')",
                    (
                        kind,
                        name,
                        version,
                        identity,
                        payload,
                        int(is_tree),
                        size,
                        now,
                        dumps(metadata or {}),
                        dumps(source or {}),
                        dumps(spec or {}),
                    ),
                )
                art_id = cur.lastrowid
            else:
                art_id, version = row["id"], row["version"]
            self._set_alias(cur, kind, name, LATEST, version, now)
            for parent_id, relation in parent_ids:
                if parent_id == art_id:  # a replay that made the version it repeats
                    continue
                cur.execute(
                    "INSERT OR IGNORE INTO edges (source_id, target_id, relation) VALUES (?, ?, ?)",
                    (parent_id, art_id, relation),
                )
            withheld = []
            for alias in aliases:  # after the edges: the release policy reads this version's lineage
                try:
                    self._guard(cur, self.get(kind, name, version), alias, None)
                except ValidationError as exc:  # the version is kept (a fine-tune is not lost), the alias is not set
                    withheld.append(f"{kind}://{name}/{version} was saved without alias {alias!r}: {exc}")
                    continue
                self._set_alias(cur, kind, name, alias, version, now)
        for line in withheld:
            warnings.warn(line + "; tag it once the policy is met (or with --override-policy REASON)", stacklevel=2)
        return SaveResult(self.get(kind, name, version), created, before != version, tuple(withheld))

    def add_edge(self, source: Any, target: Any, relation: str) -> Edge:
        src, dst = self.resolve(source), self.resolve(target)
        validate_name(relation, "relation")
        with self.transaction() as cur:
            cur.execute(
                "INSERT OR IGNORE INTO edges (source_id, target_id, relation) VALUES (?, ?, ?)",
                (src.id, dst.id, relation),
            )
        return Edge(src.ref, dst.ref, relation)

    def update_wandb(self, artifact: Artifact, info: Mapping[str, Any]) -> Artifact:
        """Record where the artifact was mirrored in W&B (merged into what is there)."""
        with self.transaction() as cur:
            row = cur.execute("SELECT wandb FROM artifacts WHERE id=?", (artifact.id,)).fetchone()
            if row is None:
                raise NotFoundError(f"{artifact.ref} no longer exists")
            merged = {**json.loads(row["wandb"]), **dict(info)}
            cur.execute("UPDATE artifacts SET wandb=? WHERE id=?", (dumps(merged), artifact.id))
        return self.get(artifact.kind, artifact.name, artifact.version)
