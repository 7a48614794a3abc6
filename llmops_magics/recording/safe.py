"""Every tracker call goes through one background thread, bounded in time, also at exit.

Callers never wait on W&B except where they ask to (``flush``, or the bounded
``start_run``), and every exception becomes a ``RecordingWarning``. The single
worker keeps W&B calls in order and off the notebook's thread.

The worker is a daemon thread of this module's own, not a ``ThreadPoolExecutor``: the
interpreter joins executor threads at exit and would run every queued call to the end
(each ``wandb.init`` waiting a minute on an unreachable server). At exit the queue gets
one overall deadline (``exit_timeout``); what has not run by then is dropped, with one
warning that names it and says how to mirror it later (``llmops sync``; offline runs
with ``wandb sync``). The local registry is complete either way.
"""

from __future__ import annotations

import atexit
import concurrent.futures as cf
import queue
import sys
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
    """Wraps a ``Recorder``; see the module docstring. ``timeout`` bounds each wait, ``exit_timeout`` the exit."""

    def __init__(self, inner: Recorder | None, timeout: float = 60.0, exit_timeout: float = 15.0) -> None:
        self.inner = inner
        self.timeout = timeout
        self.exit_timeout = exit_timeout
        self._queue: queue.Queue[tuple[str, Callable[[], Any], cf.Future] | None] = queue.Queue()
        self._pending: dict[cf.Future, str] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        if inner is not None:
            _at_shutdown(self.close)

    @property
    def enabled(self) -> bool:
        return self.inner is not None

    def _submit(self, what: str, fn: Callable[[], Any]) -> cf.Future:
        fut: cf.Future = cf.Future()
        with self._lock:
            if self._closed:
                fut.set_exception(RuntimeError("the recorder was closed"))
                return fut
            self._pending[fut] = what
            if self._thread is None:
                self._thread = threading.Thread(target=self._work, name="llmops-recorder", daemon=True)
                self._thread.start()
        fut.add_done_callback(self._forget)
        self._queue.put((what, fn, fut))
        return fut

    def _forget(self, fut: cf.Future) -> None:
        with self._lock:
            self._pending.pop(fut, None)

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            what, fn, fut = item
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn())
            except BaseException as exc:
                _warn(what, exc)
                fut.set_exception(exc)

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
        fut = self._submit(
            f"run {name or job_type}", lambda: inner.start_run(job_type=job_type, name=name, config=config)
        )
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

        return self._submit(f"artifact {artifact.ref}", call)

    def pending(self) -> list[str]:
        """What is queued or running, oldest first (``"artifact prompt://qa/3"``, ``"run qa-lora"`` …)."""
        with self._lock:
            return list(self._pending.values())

    def flush(self, timeout: float | None = None) -> bool:
        """Wait for queued work; True when everything finished within ``timeout``."""
        with self._lock:
            pending = list(self._pending)
        _done, not_done = cf.wait(pending, timeout=self.timeout if timeout is None else timeout)
        return not not_done

    def close(self, timeout: float | None = None) -> list[str]:
        """Finish what fits in ``timeout`` (default ``exit_timeout``), drop the rest; returns what was dropped.

        Called at interpreter exit. Dropped work is reported in one warning; the worker
        (a daemon thread) is left behind if a call is still running.
        """
        bound = self.exit_timeout if timeout is None else timeout
        teardown = min(3.0, bound / 5)  # part of the bound, kept for tearing W&B's service down if needed
        finished = self.flush(bound - teardown)
        with self._lock:
            self._closed = True
            left = list(self._pending.items())
        for fut, _what in left:
            fut.cancel()  # a queued call never starts; the running one is abandoned with the daemon thread
        self._queue.put(None)
        dropped = [what for _fut, what in left]
        if not finished and dropped:
            if self.inner is not None:
                self.inner.abandon(teardown / 2)
            _report_dropped(dropped, bound)
        return dropped


def _at_shutdown(fn: Callable[[], Any]) -> None:
    """Run ``fn`` when the main thread ends, before the interpreter starts shutting threads down.

    Plain ``atexit`` runs too late: by then ``concurrent.futures`` has refused new work and
    nothing may register exit hooks, so W&B calls made in our exit window would fail.
    ``threading._register_atexit`` (CPython's hook, the one ``concurrent.futures`` uses) runs
    first; hooks run in reverse, so importing ``concurrent.futures.thread`` before registering
    puts ours ahead of its pool shutdown. Elsewhere ``atexit`` is the fallback.
    """
    import concurrent.futures.thread  # noqa: F401  registers its own hook first

    register = getattr(threading, "_register_atexit", None)
    try:
        if register is None:
            raise RuntimeError("no threading exit hook")
        register(fn)
    except RuntimeError:  # no such hook, or already shutting down
        atexit.register(fn)


def _report_dropped(dropped: list[str], bound: float) -> None:
    """One warning, on stderr even at exit, saying what was not mirrored and how to mirror it later."""
    artifacts = [w.split(" ", 1)[1] for w in dropped if w.startswith("artifact ")]
    others = len(dropped) - len(artifacts)
    parts = []
    if artifacts:
        shown = ", ".join(artifacts[:5]) + (f" and {len(artifacts) - 5} more" if len(artifacts) > 5 else "")
        parts.append(f"{len(artifacts)} artifact mirror(s) ({shown})")
    if others:
        parts.append(f"{others} other W&B call(s)")
    message = (
        f"W&B: {' and '.join(parts)} did not finish within the {bound:g} s exit bound and were left; the local registry "
        "has everything. Mirror the artifacts later with `llmops sync` (or llmops_magics.sync()); "
        "runs written offline upload with `wandb sync`."
    )
    try:
        warnings.warn(message, RecordingWarning, stacklevel=2)
    except Exception:  # warnings may be torn down at exit
        print(message, file=sys.stderr)
