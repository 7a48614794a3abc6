"""Tells the core which notebook cell is running, for artifact provenance."""

from __future__ import annotations

import os
from typing import Any

from ...context import provenance

__all__ = ["CellTracker"]


class CellTracker:
    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.info: Any = None

    def pre_run_cell(self, info: Any) -> None:
        self.info = info

    def source(self) -> dict[str, Any]:
        ns = self.shell.user_ns
        notebook = ns.get("__session__") or ns.get("__vsc_ipynb_file__") or os.environ.get("JPY_SESSION_NAME")
        info = self.info
        count = self.shell.execution_count
        if getattr(info, "store_history", False):
            count -= 1  # IPython numbers the running cell before incrementing the counter
        return {
            "notebook": notebook,
            "cell_id": getattr(info, "cell_id", None),
            "execution_count": count,
            "code": getattr(info, "raw_cell", None),
        }

    def install(self) -> None:
        self.shell.events.register("pre_run_cell", self.pre_run_cell)
        provenance.set_source_provider(self.source)

    def uninstall(self) -> None:
        try:
            self.shell.events.unregister("pre_run_cell", self.pre_run_cell)
        except ValueError:
            pass
        provenance.set_source_provider(None)
