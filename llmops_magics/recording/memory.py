"""An in-memory recorder with the same contract as the W&B one, for unit tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..store.records import Artifact
from .base import LineageLink, Recorder, Run, Tables

__all__ = ["MemoryRecorder", "MemoryRun"]


class MemoryRun(Run):
    def __init__(
        self, recorder: MemoryRecorder, run_id: str, job_type: str, name: str | None, config: Mapping[str, Any]
    ):
        self.recorder = recorder
        self.id = run_id
        self.job_type = job_type
        self.name = name
        self.config = dict(config)
        self.history: list[dict[str, Any]] = []
        self.tables: dict[str, tuple[list[str], list[list[Any]]]] = {}
        self.summary_values: dict[str, Any] = {}
        self.artifacts: list[dict[str, Any]] = []
        self.finished: int | None = None
        self.info = {"run_id": run_id, "mode": "memory"}

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        self.history.append({**metrics, **({"_step": step} if step is not None else {})})

    def log_table(self, key: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        self.tables[key] = (list(columns), [list(r) for r in rows])

    def summary(self, values: Mapping[str, Any]) -> None:
        self.summary_values.update(values)

    def log_artifact(
        self, artifact: Artifact, path: Path | None, inputs: Sequence[LineageLink] = (), tables: Tables | None = None
    ) -> dict[str, Any]:
        record = {
            "type": artifact.kind,
            "name": artifact.name,
            "version": artifact.version,
            "aliases": [a for a in artifact.aliases],
            "digest": artifact.digest,
            "inputs": [(a.ref, rel) for a, rel in inputs],
            "tables": {k: (list(cols), [list(r) for r in rows]) for k, (cols, rows) in (tables or {}).items()},
        }
        self.artifacts.append(record)
        return {"run_id": self.id, "artifact": f"{artifact.name}", "type": artifact.kind, "mode": "memory"}

    def finish(self, exit_code: int = 0) -> None:
        self.finished = exit_code


class MemoryRecorder(Recorder):
    name = "memory"

    def __init__(self) -> None:
        self.runs: list[MemoryRun] = []
        self._ids = itertools.count(1)

    def start_run(
        self, *, job_type: str, name: str | None = None, config: Mapping[str, Any] | None = None
    ) -> MemoryRun:
        run = MemoryRun(self, f"mem-{next(self._ids)}", job_type, name, config or {})
        self.runs.append(run)
        return run

    @property
    def artifacts(self) -> list[dict[str, Any]]:
        return [a for r in self.runs for a in r.artifacts]
