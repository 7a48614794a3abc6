"""Whether a process recorded earlier (a fine-tune's kernel, a model server) is still the one running.

A record that says "running" outlives the process that wrote it when a kernel is restarted
or killed. A pid alone does not name a process: after a reboot or a crash the number can
belong to anything, so records keep the kernel's start time of the pid too and a process
counts as alive only while both still match.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["process_started", "still_running"]


def _stat_fields(pid: int) -> list[str] | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_started(pid: int | None) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), or None where /proc cannot tell."""
    if not pid or pid <= 0:
        return None
    fields = _stat_fields(pid)
    try:
        return int(fields[19]) if fields else None
    except (IndexError, ValueError):
        return None


def still_running(pid: int | None, started: int | None = None) -> bool:
    """The process exists, is not a zombie, and (when ``started`` is known) is the same process."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    fields = _stat_fields(pid)
    if fields is None:
        return True  # no /proc: trust the signal check
    if fields[0] == "Z":
        return False
    return started is None or process_started(pid) == started
