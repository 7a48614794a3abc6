"""The deployment's W&B run, fed from inside the server process.

The server opens its own run (``job_type="deploy"``), mirrors the deployment
artifact into it with its lineage (the served model/adapter, the prompt), writes
the run's location back to the artifact's ``wandb`` field, and logs the
monitoring summary every ``interval`` seconds. Every call goes through the
workspace's ``SafeRecorder``: W&B being slow, offline or broken never delays a
request, and ``wandb_mode="disabled"`` turns all of it off.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..context.workspaces import Workspace
from ..recording.publish import mirror
from ..serving.stats import flatten, summarize
from ..store import Artifact

__all__ = ["WandbReporter"]


class WandbReporter:
    def __init__(
        self,
        ws: Workspace,
        *,
        name: str,
        artifact: Artifact | None,
        inputs: Sequence[tuple[Artifact, str]],
        config: Mapping[str, Any],
        interval: float,
    ) -> None:
        self.ws = ws
        self.interval = interval
        self.run = ws.recorder.start_run(job_type="deploy", name=name, config=dict(config))
        self._rows: list[Mapping[str, Any]] = []
        self._totals = {"requests": 0, "errors": 0, "tokens_in": 0, "tokens_out": 0}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._since = time.time()
        self._thread: threading.Thread | None = None
        if self.run is None:
            return
        if artifact is not None:
            mirror(ws, artifact, inputs, run=self.run)
        self._thread = threading.Thread(target=self._loop, name="llmops-wandb-reporter", daemon=True)
        self._thread.start()

    @property
    def enabled(self) -> bool:
        return self.run is not None

    def add(self, row: Mapping[str, Any]) -> None:
        if self.run is None:
            return
        with self._lock:
            self._rows.append(row)
            ok = (row.get("status") or 0) < 400
            self._totals["requests"] += 1
            self._totals["errors"] += 0 if ok else 1
            if ok:
                self._totals["tokens_in"] += int(row.get("prompt_tokens") or 0)
                self._totals["tokens_out"] += int(row.get("completion_tokens") or 0)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._emit()

    def _emit(self) -> None:
        with self._lock:
            rows, self._rows = self._rows, []
            totals = dict(self._totals)
        now = time.time()
        window, self._since = now - self._since, now
        metrics = {f"total/{k}": float(v) for k, v in totals.items()}
        metrics.update(flatten(summarize(rows, window_s=window)))
        if self.run is not None:
            self.run.log(metrics)

    def close(self, timeout: float = 15.0) -> None:
        """Log the last window and the totals, finish the run, wait (bounded) for W&B to write it."""
        if self.run is None:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self._emit()
        with self._lock:
            self.run.summary({f"total/{k}": v for k, v in self._totals.items()})
        self.run.finish()
        self.ws.recorder.flush(timeout)
