"""``verify()`` (an fsck for the registry) and ``gc()`` (a plan you print, then execute).

A save writes blobs first and the row last, so an interrupted save can leave only
garbage (unreferenced blobs, temp files), never a row without content. ``verify``
reports garbage separately from problems: garbage is expected after a crash and is
what ``gc`` removes; a problem means the registry is inconsistent.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import IntegrityError, RegistryError
from .registry import Registry

__all__ = ["VerifyReport", "GcPlan", "verify", "plan_gc"]


@dataclass(frozen=True)
class VerifyReport:
    artifacts: int
    blobs: int
    problems: tuple[str, ...] = ()
    garbage: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_for_problems(self) -> None:
        if self.problems:
            raise IntegrityError(f"{len(self.problems)} problem(s): {self.problems[0]}")

    def __str__(self) -> str:
        lines = [f"{'OK' if self.ok else 'PROBLEMS'}: {self.artifacts} artifact versions, {self.blobs} blobs checked"]
        lines += [f"  problem: {p}" for p in self.problems]
        if self.garbage:
            lines.append(f"  {len(self.garbage)} garbage file(s) from interrupted saves (remove with `llmops gc`)")
        return "\n".join(lines)


def verify(reg: Registry, *, rehash: bool = True) -> VerifyReport:
    """Check SQLite's own integrity, every row's blobs (re-hashed), aliases and edges."""
    problems: list[str] = []

    def query(sql: str) -> list:
        # A damaged page fails the query that reads it; the report says so and checks the rest.
        try:
            return reg._query(sql)
        except RegistryError as exc:
            problems.append(f"database: {exc}")
            return []

    check = query("PRAGMA integrity_check")
    if check and check[0][0] != "ok":
        problems.append("sqlite integrity_check: " + "; ".join(r[0] for r in check[:5]))
    referenced: set[str] = set()
    rows = query("SELECT id, kind, name, version, payload, is_tree FROM artifacts")
    for row in rows:
        ref = f"{row['kind']}://{row['name']}/{row['version']}"
        digests = [row["payload"]]
        if row["is_tree"]:
            try:
                digests += [f["digest"] for f in reg.blobs.manifest(row["payload"])]
            except (OSError, ValueError, KeyError, LookupError, IntegrityError) as exc:
                problems.append(f"{ref}: manifest unreadable ({exc})")
        for d in digests:
            referenced.add(d)
            try:
                if rehash:
                    reg.blobs.check(d)
                elif not reg.blobs.exists(d):
                    raise IntegrityError(f"blob {d[:12]} is missing")
            except IntegrityError as exc:
                problems.append(f"{ref}: {exc}")
    for row in query("SELECT kind, name, version FROM artifacts GROUP BY kind, name HAVING COUNT(*) != MAX(version)"):
        problems.append(f"{row['kind']}://{row['name']}: version numbers have gaps")
    for row in query(
        "SELECT a.kind, a.name, a.alias, a.version FROM aliases a LEFT JOIN artifacts t "
        "ON t.kind=a.kind AND t.name=a.name AND t.version=a.version WHERE t.id IS NULL"
    ):
        problems.append(
            f"alias {row['kind']}://{row['name']}@{row['alias']} points at missing version {row['version']}"
        )
    for row in query(
        "SELECT e.source_id, e.target_id FROM edges e LEFT JOIN artifacts s ON s.id=e.source_id "
        "LEFT JOIN artifacts t ON t.id=e.target_id WHERE s.id IS NULL OR t.id IS NULL"
    ):
        problems.append(f"edge {row['source_id']}->{row['target_id']} points at a missing artifact")
    stored = set(reg.blobs.iter_digests())
    garbage = sorted(str(reg.blobs.path(d)) for d in stored - referenced)
    garbage += sorted(str(p) for p in reg.blobs.tmp.iterdir())
    return VerifyReport(len(rows), len(stored), tuple(problems), tuple(garbage))


@dataclass(frozen=True)
class GcPlan:
    """Files ``execute()`` would delete. Print it first; nothing happens until then."""

    registry: Registry
    paths: tuple[str, ...]
    grace_seconds: float

    @property
    def size(self) -> int:
        return sum(os.path.getsize(p) for p in self.paths if os.path.exists(p))

    def __str__(self) -> str:
        if not self.paths:
            return "nothing to collect"
        head = f"would delete {len(self.paths)} file(s), {self.size} bytes:"
        return "\n".join([head, *(f"  {p}" for p in self.paths[:20])] + (["  …"] if len(self.paths) > 20 else []))

    def execute(self) -> int:
        removed = 0
        for p in self.paths:
            try:
                if os.path.isdir(p):
                    shutil.rmtree(p)
                else:
                    os.unlink(p)
                removed += 1
            except FileNotFoundError:
                pass
        return removed


def plan_gc(reg: Registry, grace_seconds: float = 3600.0) -> GcPlan:
    """Garbage older than ``grace_seconds`` (younger files may belong to a save in progress)."""
    report = verify(reg, rehash=False)
    cutoff = time.time() - grace_seconds
    old = tuple(p for p in report.garbage if os.path.exists(p) and os.path.getmtime(p) < cutoff)
    checkouts = Path(reg.home) / "checkouts"
    if checkouts.exists():
        live = {row["payload"] for row in reg._query("SELECT payload FROM artifacts WHERE is_tree=1")}
        for sub in checkouts.glob("*/*"):
            if sub.parent.name + sub.name not in live:
                old += (str(sub),)
    return GcPlan(reg, old, grace_seconds)
