"""Where an artifact came from: the notebook cell (when there is one), library versions, time.

The core cannot look inside a notebook; the IPython adapter registers a *source
provider* when the extension loads, and every save asks it for the current cell.
"""

from __future__ import annotations

import getpass
import os
import platform
import sys
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from functools import lru_cache
from importlib import metadata
from typing import Any

__all__ = ["collect", "library_versions", "set_source_provider"]

TRACKED_LIBRARIES = (
    "llmops-magics",
    "jinja2",
    "torch",
    "transformers",
    "peft",
    "accelerate",
    "datasets",
    "wandb",
    "tokenizers",
    "pandas",
    "ipython",
    "ipykernel",
)
MAX_CODE = 20_000

_provider: Callable[[], Mapping[str, Any] | None] | None = None


def set_source_provider(provider: Callable[[], Mapping[str, Any] | None] | None) -> None:
    """Install the function that describes the code running now (the IPython adapter's)."""
    global _provider
    _provider = provider


@lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    """Installed versions, read from package metadata (no imports: cheap and side-effect free)."""
    out = {"python": platform.python_version()}
    for name in TRACKED_LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def collect(extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ``source`` record of a new artifact."""
    src: dict[str, Any] = {}
    cell = _provider() if _provider else None
    if cell:
        src.update(cell)
    else:
        src["script"] = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if isinstance(src.get("code"), str) and len(src["code"]) > MAX_CODE:
        src["code"] = src["code"][:MAX_CODE] + "\n# … truncated"
    src.update(
        {
            "time": datetime.fromtimestamp(time.time(), tz=UTC).isoformat(),
            "user": _user(),
            "host": platform.node(),
            "cwd": os.getcwd(),
            "libraries": library_versions(),
        }
    )
    if extra:
        src.update(extra)
    return src
