"""Rate-limiting redraws that are triggered from background threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["Throttle"]


class Throttle:
    """Call ``fn`` at most once per ``interval`` seconds, with a trailing call so the last state shows.

    A training loop can report hundreds of events a second; a widget redraw is a
    comm message to the browser, so a panel asks for a redraw on every event and
    this turns that into a few per second.
    """

    def __init__(self, fn: Callable[[], None], interval: float = 0.3) -> None:
        self.fn = fn
        self.interval = interval
        self._last = 0.0
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            if self._timer is not None:  # a trailing call is due; it will draw the latest state
                return
            wait = self.interval - (time.monotonic() - self._last)
            if wait > 0:
                self._timer = threading.Timer(wait, self._fire)
                self._timer.daemon = True
                self._timer.start()
                return
            self._last = time.monotonic()
        self.fn()

    def _fire(self) -> None:
        with self._lock:
            self._timer = None
            self._last = time.monotonic()
        self.fn()

    def flush(self) -> None:
        """Redraw now (for final states), dropping any pending trailing call."""
        self.cancel()
        with self._lock:
            self._last = time.monotonic()
        self.fn()

    def cancel(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
