"""Side records of the registry: small mutable JSON values that are not artifacts.

Running deployments and jobs change in place (a pid, a status), which versions must
never do, so they live in their own ``state`` table keyed by ``(namespace, key)``, written
in the registry's transactions so every process sees one record. A mixin of ``Registry``
(as ``Listing``, ``Lineage`` and ``Aliases`` are): it uses ``transaction`` and ``_query``.
"""

from __future__ import annotations

import json
import time
from typing import Any

from .records import dumps

__all__ = ["State"]


class State:
    """Mutable side records; mixed into ``Registry``."""

    def put_state(self, namespace: str, key: str, value: Any) -> None:
        """Small mutable records that are not artifacts (running deployments, jobs)."""
        with self.transaction() as cur:
            cur.execute(
                "INSERT INTO state (namespace, key, value, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (namespace, key) DO UPDATE SET value=excluded.value, updated_at=excluded.updated_at",
                (namespace, key, dumps(value), time.time()),
            )

    def get_state(self, namespace: str, key: str, default: Any = None) -> Any:
        rows = self._query("SELECT value FROM state WHERE namespace=? AND key=?", (namespace, key))
        return json.loads(rows[0]["value"]) if rows else default

    def list_state(self, namespace: str) -> dict[str, Any]:
        rows = self._query("SELECT key, value FROM state WHERE namespace=? ORDER BY key", (namespace,))
        return {r["key"]: json.loads(r["value"]) for r in rows}

    def delete_state(self, namespace: str, key: str) -> None:
        with self.transaction() as cur:
            cur.execute("DELETE FROM state WHERE namespace=? AND key=?", (namespace, key))
