"""Background jobs: long work (fine-tuning, evaluation) that leaves the notebook usable.

A ``Job`` runs a function in a daemon thread and hands the caller a handle:
``status``, ``wait(timeout)``, ``cancel()``, ``result``, ``error``, and a stream
of progress events (plain dicts) that listeners receive as they happen and that
late listeners can replay from ``events``. Cancellation is cooperative: the
function polls ``ctx.cancelled`` (a fine-tune's ``TrainerCallback`` does, and
saves a checkpoint before stopping) and raises ``JobCancelledError`` to say it
stopped early. Work that runs in a subprocess (a ``torchrun`` launch) is driven
from the job's thread, which forwards the child's events and its cancel.

The core knows nothing of widgets: a job displays as the ``"job"`` view when a UI
installed one (``display.views``; the IPython extension installs the live ipywidgets
panel), and as text otherwise.
"""

from __future__ import annotations

import contextvars
import itertools
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import JobCancelledError, JobError, JobTimeoutError, LLMOpsError

__all__ = ["Job", "JobContext", "list_jobs", "STATUSES"]

STATUSES = ("pending", "running", "cancelling", "succeeded", "failed", "cancelled")
FINAL = frozenset({"succeeded", "failed", "cancelled"})
MAX_EVENTS = 10_000

Listener = Callable[["Job", Mapping[str, Any]], None]

_jobs: deque[Job] = deque(maxlen=100)
_ids = itertools.count(1)


def list_jobs() -> list[Job]:
    """Jobs started in this process, oldest first (the last 100)."""
    return list(_jobs)


class JobContext:
    """What the job's function sees: the cancel flag and the event sink."""

    def __init__(self, job: Job) -> None:
        self._job = job

    @property
    def cancelled(self) -> bool:
        return self._job._cancel.is_set()

    def emit(self, event: Mapping[str, Any]) -> None:
        """Publish one event (``{"type": "progress"|"log"|"message", ...}``) to every listener."""
        self._job._publish(dict(event))


class Job:
    """A handle on work running in a background thread; see the module docstring."""

    def __init__(self, target: Callable[[JobContext], Any], *, name: str, kind: str = "job") -> None:
        self.id = f"{kind}-{next(_ids)}-{int(time.time())}"
        self.name = name
        self.kind = kind
        self._target = target
        self._status = "pending"
        self._result: Any = None
        self._error: BaseException | None = None
        self._traceback: str | None = None
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._lock = threading.RLock()
        self._events: deque[dict[str, Any]] = deque(maxlen=MAX_EVENTS)
        self._progress: dict[str, Any] = {}
        self._listeners: list[Listener] = []
        self._thread: threading.Thread | None = None
        self._view: Any = None
        self.started_at: float | None = None
        self.finished_at: float | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> Job:
        with self._lock:
            if self._thread is not None:
                return self
            # the caller's context goes with the work: a job started inside a traced block
            # (``with llmops_magics.trace(...)``) makes its spans children of that block's span
            context = contextvars.copy_context()
            self._thread = threading.Thread(
                target=context.run, args=(self._run,), name=f"llmops-{self.id}", daemon=True
            )
            self.started_at = time.time()
            self._set_status("running")
            _jobs.append(self)
            self._thread.start()
        return self

    def _run(self) -> None:
        ctx = JobContext(self)
        try:
            result = self._target(ctx)
        except JobCancelledError as exc:
            self._finish("cancelled", error=exc)
        except BaseException as exc:
            self._traceback = traceback.format_exc()
            self._finish("failed", error=exc)
        else:
            self._finish("succeeded", result=result)

    def _finish(self, status: str, result: Any = None, error: BaseException | None = None) -> None:
        with self._lock:
            self._result, self._error = result, error
            self.finished_at = time.time()
            self._set_status(status)
        self._done.set()

    def _set_status(self, status: str) -> None:
        self._status = status
        event: dict[str, Any] = {"type": "status", "status": status}
        if status in FINAL and self._error is not None:
            event["error"] = f"{type(self._error).__name__}: {self._error}"
        elif status == "succeeded":
            event["result"] = str(self._result)
        self._publish(event)

    def cancel(self, wait: float | None = None) -> bool:
        """Ask the job to stop (it keeps its last checkpoint). True once it has stopped.

        ``wait`` seconds to block for it to stop; by default return at once.
        """
        with self._lock:
            if self._status in FINAL:
                return True
            self._cancel.set()
            if self._status == "running":
                self._set_status("cancelling")
        if wait:
            self._done.wait(wait)
        return self._done.is_set()

    # ------------------------------------------------------------------ events

    def _publish(self, event: dict[str, Any]) -> None:
        event.setdefault("time", time.time())
        with self._lock:
            self._events.append(event)
            if event.get("type") == "progress":
                self._progress.update({k: v for k, v in event.items() if k not in ("type", "time")})
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(self, event)
            except Exception:  # a broken display must never break the job
                continue

    def add_listener(self, listener: Listener, replay: bool = True) -> Callable[[], None]:
        """Call ``listener(job, event)`` for each event (past ones first if ``replay``); returns an unsubscribe."""
        with self._lock:
            past = list(self._events) if replay else []
            self._listeners.append(listener)
        for event in past:
            listener(self, event)

        def remove() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return remove

    @property
    def events(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._events)

    @property
    def progress(self) -> dict[str, Any]:
        """The latest progress fields (``step``, ``max_steps``, ``eta_seconds``, …)."""
        with self._lock:
            return dict(self._progress)

    # ------------------------------------------------------------------ outcome

    @property
    def status(self) -> str:
        return self._status

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def error(self) -> BaseException | None:
        return self._error

    @property
    def traceback(self) -> str | None:
        return self._traceback

    @property
    def result(self) -> Any:
        """The function's return value; raises ``JobError`` while running or when it failed or was cancelled."""
        if self._status not in FINAL:  # set (with the result) before waiters are woken and listeners told
            raise JobError(f"job {self.name!r} is {self._status}; call .wait() for its result")
        return self._outcome()

    def _outcome(self) -> Any:
        if self._status == "succeeded":
            return self._result
        if isinstance(self._error, LLMOpsError):  # ours already say what happened (a RegressionError keeps its result)
            raise self._error
        raise JobError(f"job {self.name!r} failed: {type(self._error).__name__}: {self._error}") from self._error

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the job ends and return its result (raising as ``result`` does)."""
        if not self._done.wait(timeout):
            raise JobTimeoutError(f"job {self.name!r} still {self._status} after {timeout:g}s")
        return self._outcome()

    def __getattr__(self, name: str) -> Any:
        """A public attribute the job lacks is read on its result, waiting for it: ``job.summary``.

        Private and dunder names are never forwarded (IPython and pickle probe for those),
        so asking for one cannot block.
        """
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.wait(), name)

    # ------------------------------------------------------------------ display

    def __repr__(self) -> str:
        return f"<Job {self.name!r} {self._status}>"

    def overview(self) -> dict[str, Any]:
        out: dict[str, Any] = {"job": self.name, "status": self._status}
        p = self.progress
        if p.get("max_steps"):
            out["step"] = f"{p.get('step', 0)}/{p['max_steps']}"
        if self._status in FINAL and self.started_at and self.finished_at:
            out["seconds"] = round(self.finished_at - self.started_at, 1)
        if self._error is not None:
            out["error"] = str(self._error)
        elif self._status == "succeeded" and self._result is not None:
            out["result"] = str(self._result)
        return out

    def __str__(self) -> str:
        return "  ".join(f"{k}: {v}" for k, v in self.overview().items())

    def _repr_mimebundle_(self, include=None, exclude=None):
        if self._view is None:
            from ..display.views import make_view

            self._view = make_view("job", self)
        if self._view is not None:
            return self._view._repr_mimebundle_(include=include, exclude=exclude)
        from ..display.html import kv_html, mimebundle

        return mimebundle(str(self), kv_html(self.overview()))
