"""Every tracker call goes through one background thread, bounded in time.

Callers never wait on W&B except where they ask to (``flush``, or the bounded
``start_run``), and every exception becomes a ``RecordingWarning``. The single
worker keeps W&B calls in order and off the notebook's thread.
"""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import threading
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..store.records import Artifact
from .base import LineageLink, Recorder, RecordingWarning, Run, Tables

__all__ = ["SafeRecorder", "SafeRun"]


def _warn(what: str, exc: BaseException) -> None:
    warnings.warn(
        f"W&B {what} failed ({type(exc).__name__}: {exc}); the local registry is unaffected",
        RecordingWarning,
        stacklevel=3,
    )


class SafeRun(Run):
    """A run whose calls are queued to the recorder's worker; ``None`` inner means a failed start."""

    def __init__(self, owner: SafeRecorder, future: cf.Future) -> None:
        self._owner = owner
        self._future = future

    def _inner(self) -> Run | None:
        try:
            return self._future.result(timeout=self._owner.timeout)
        except BaseException:  # already warned by the worker
            return None

    @property
    def id(self) -> str:  # type: ignore[override]
        inner = self._inner()
        return inner.id if inner else ""

    @property
    def info(self) -> Mapping[str, Any]:  # type: ignore[override]
        inner = self._inner()
        return dict(inner.info) if inner else {}

    def _submit(self, what: str, fn: Callable[[Run], Any]) -> cf.Future:
        def call() -> Any:
            inner = self._future.result()
            return fn(inner)

        return self._owner._submit(what, call)

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        metrics = dict(metrics)
        self._submit("log", lambda r: r.log(metrics, step))

    def log_table(self, key: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        rows = [list(r) for r in rows]
        self._submit("table", lambda r: r.log_table(key, columns, rows))

    def summary(self, values: Mapping[str, Any]) -> None:
        values = dict(values)
        self._submit("summary", lambda r: r.summary(values))

    def log_artifact(
        self, artifact: Artifact, path: Path | None, inputs: Sequence[LineageLink] = (), tables: Tables | None = None
    ) -> dict[str, Any]:
        fut = self._submit("log_artifact", lambda r: r.log_artifact(artifact, path, inputs, tables))
        return self._owner._wait(fut, "log_artifact") or {}

    def log_artifact_async(
        self,
        artifact: Artifact,
        path: Path | None,
        inputs: Sequence[LineageLink] = (),
        on_done: Callable[[dict[str, Any]], None] | None = None,
        tables: Tables | None = None,
    ) -> cf.Future:
        def call(r: Run) -> dict[str, Any]:
            info = r.log_artifact(artifact, path, inputs, tables)
            if on_done:
                on_done(info)
            return info

        return self._submit("log_artifact", call)

    def finish(self, exit_code: int = 0) -> None:
        self._submit("finish", lambda r: r.finish(exit_code))


class SafeRecorder:
    """Wraps a ``Recorder``; see the module docstring. ``timeout`` bounds each wait."""

    def __init__(self, inner: Recorder | None, timeout: float = 60.0) -> None:
        self.inner = inner
        self.timeout = timeout
        self._pool: cf.ThreadPoolExecutor | None = None
        self._pending: set[cf.Future] = set()
        self._lock = threading.Lock()
        atexit.register(self.flush, 15.0)

    @property
    def enabled(self) -> bool:
        return self.inner is not None

    def _submit(self, what: str, fn: Callable[[], Any]) -> cf.Future:
        def guarded() -> Any:
            try:
                return fn()
            except BaseException as exc:
                _warn(what, exc)
                raise

        with self._lock:
            if self._pool is None:
                self._pool = cf.ThreadPoolExecutor(max_workers=1, thread_name_prefix="llmops-recorder")
            fut = self._pool.submit(guarded)
            self._pending.add(fut)
        fut.add_done_callback(lambda f: self._pending.discard(f))
        return fut

    def _wait(self, fut: cf.Future, what: str) -> Any:
        try:
            return fut.result(timeout=self.timeout)
        except cf.TimeoutError:
            warnings.warn(
                f"W&B {what} took longer than {self.timeout:.0f}s; it goes on in the background",
                RecordingWarning,
                stacklevel=3,
            )
        except BaseException:
            pass  # warned in the worker
        return None

    def start_run(
        self, *, job_type: str, name: str | None = None, config: Mapping[str, Any] | None = None
    ) -> Run | None:
        """A queued run, or ``None`` when recording is disabled."""
        if self.inner is None:
            return None
        inner = self.inner
        config = dict(config or {})
        fut = self._submit("init", lambda: inner.start_run(job_type=job_type, name=name, config=config))
        return SafeRun(self, fut)

    def record_artifact(
        self,
        artifact: Artifact,
        path: Path | None,
        inputs: Sequence[LineageLink] = (),
        on_done: Callable[[dict[str, Any]], None] | None = None,
        tables: Tables | None = None,
    ) -> cf.Future | None:
        """Mirror one artifact in a short run of its own, in the background."""
        if self.inner is None:
            return None
        inner = self.inner

        def call() -> dict[str, Any]:
            info = inner.record_artifact(artifact, path, inputs, tables=tables)
            if on_done:
                on_done(info)
            return info

        return self._submit("artifact", call)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait for queued work; True when everything finished within ``timeout``."""
        pending = list(self._pending)
        _done, not_done = cf.wait(pending, timeout=self.timeout if timeout is None else timeout)
        return not not_done
