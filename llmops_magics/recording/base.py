"""The recording interface: what the lifecycle steps tell an experiment tracker.

``WandbRecorder`` is the real one; ``MemoryRecorder`` is its in-memory twin for
unit tests of the code above it. Both sit behind ``SafeRecorder``, which bounds
every call in time and turns any failure into a ``RecordingWarning``: a tracker
outage must never lose the local record or hang a notebook cell.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..store.records import Artifact

__all__ = ["Run", "Recorder", "RecordingWarning", "LineageLink", "Tables"]


class RecordingWarning(UserWarning):
    """Mirroring to the tracker failed or timed out; the local registry is unaffected."""


LineageLink = tuple[Artifact, str]  # (input artifact, relation)
Tables = Mapping[str, tuple[Sequence[str], Sequence[Sequence[Any]]]]  # key -> (columns, rows)


class Run(abc.ABC):
    """One tracked run (a fine-tune, an eval, a deployment's monitoring)."""

    id: str = ""
    info: Mapping[str, Any] = {}

    @abc.abstractmethod
    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None: ...

    @abc.abstractmethod
    def log_table(self, key: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None: ...

    @abc.abstractmethod
    def summary(self, values: Mapping[str, Any]) -> None: ...

    @abc.abstractmethod
    def log_artifact(
        self, artifact: Artifact, path: Path | None, inputs: Sequence[LineageLink] = (), tables: Tables | None = None
    ) -> dict[str, Any]:
        """Mirror a registry artifact (same kind, name and aliases); returns what to store in its ``wandb`` field.

        ``tables`` (``{key: (columns, rows)}``) travel inside the artifact, e.g. a dataset's preview.
        """

    @abc.abstractmethod
    def finish(self, exit_code: int = 0) -> None: ...


class Recorder(abc.ABC):
    name = "recorder"

    @abc.abstractmethod
    def start_run(self, *, job_type: str, name: str | None = None, config: Mapping[str, Any] | None = None) -> Run: ...

    def record_artifact(
        self,
        artifact: Artifact,
        path: Path | None,
        inputs: Sequence[LineageLink] = (),
        job_type: str | None = None,
        tables: Tables | None = None,
    ) -> dict[str, Any]:
        """Mirror one artifact in a short run of its own (for saves that are not part of a longer run)."""
        run = self.start_run(job_type=job_type or f"register-{artifact.kind}", name=f"{artifact.kind}-{artifact.name}")
        try:
            info = run.log_artifact(artifact, path, inputs, tables)
        except BaseException:
            run.finish(exit_code=1)
            raise
        run.finish()
        return info

    def close(self) -> None:
        """Release resources; pending work is flushed by ``SafeRecorder``."""

    def abandon(self, timeout: float = 2.0) -> None:
        """Give up on work still in flight so the process can exit now (``SafeRecorder`` calls it at
        exit when its deadline passed). The default has nothing to give up."""
