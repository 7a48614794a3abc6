"""Where the registry lives and which project defaults apply.

The kernel (started in a notebook's folder) and the Jupyter server extension
(started in the server's root) are different processes with different working
directories; both must land on the same registry. ``resolve_home`` therefore walks
up from the start folder like git looks for ``.git``: the first folder holding a
``.llmops/`` directory or a ``pyproject.toml`` with a ``[tool.llmops]`` table wins.
"""

from __future__ import annotations

import os
import tomllib
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import ValidationError

HOME_ENV = "LLMOPS_HOME"
# Set by the Jupyter server extension for the kernels it starts: where a kernel whose
# folder has no registry or project config of its own writes, so the sidebar sees it.
SERVER_HOME_ENV = "LLMOPS_SERVER_HOME"
DEFAULT_DIRNAME = ".llmops"

__all__ = ["resolve_home", "project_config", "find_project_root", "ProjectConfig"]


@dataclass(frozen=True)
class ProjectConfig:
    """``[tool.llmops]`` of the nearest ``pyproject.toml``, with the folder it came from."""

    root: Path | None
    values: dict[str, Any]

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)


def _read_tool_table(pyproject: Path) -> dict[str, Any] | None:
    try:
        with pyproject.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError:
        return None
    except tomllib.TOMLDecodeError as exc:  # said once, not silently read as "no settings"
        warnings.warn(
            f"{pyproject} is not valid TOML ({exc}); its [tool.llmops] settings are ignored until it is fixed",
            UserWarning,
            stacklevel=2,
        )
        return None
    table = data.get("tool", {}).get("llmops")
    return table if isinstance(table, dict) else None


def find_project_root(start: Path | str | None = None) -> Path | None:
    """The nearest folder at or above ``start`` that holds ``.llmops/`` or ``[tool.llmops]``."""
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / DEFAULT_DIRNAME).is_dir():
            return folder
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and _read_tool_table(pyproject) is not None:
            return folder
    return None


@lru_cache(maxsize=32)
def _project_config_cached(start: str, stamp: tuple) -> ProjectConfig:
    root = find_project_root(start)
    if root is None:
        return ProjectConfig(None, {})
    table = _read_tool_table(root / "pyproject.toml") or {}
    return ProjectConfig(root, table)


def _stamp(here: Path) -> tuple:
    """Which pyproject.toml files exist at or above ``here``, and when each last changed: an edit
    to ``[tool.llmops]`` (a model named, a threshold changed) is seen by a running kernel."""
    out = []
    for folder in (here, *here.parents):
        try:
            st = (folder / "pyproject.toml").stat()
        except OSError:
            continue
        out.append((str(folder), st.st_mtime_ns, st.st_size))
    return tuple(out)


def project_config(start: Path | str | None = None) -> ProjectConfig:
    here = Path(start or os.getcwd()).resolve()
    return _project_config_cached(str(here), _stamp(here))


def resolve_home(start: Path | str | None = None, explicit: Path | str | None = None) -> Path:
    """The registry folder: ``explicit``, then ``$LLMOPS_HOME``, then the project's, then ``./.llmops``.

    A relative ``home`` in ``[tool.llmops]`` is taken relative to the ``pyproject.toml``
    that declares it, so every process in the project agrees. A kernel started by a
    Jupyter server with the extension, in a folder with neither, uses the server's
    registry (``$LLMOPS_SERVER_HOME``) rather than creating one the sidebar cannot see.
    """
    if explicit:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser().resolve()
    cfg = project_config(start)
    if cfg.root is not None:
        home = cfg.get("home", DEFAULT_DIRNAME)
        if not isinstance(home, str) or not home:
            raise ValidationError(
                f"[tool.llmops] home in {cfg.root / 'pyproject.toml'} must be a non-empty string, found {home!r}"
            )
        return (cfg.root / home).expanduser().resolve()
    server_home = os.environ.get(SERVER_HOME_ENV)
    if server_home:
        return Path(server_home).expanduser().resolve()
    return (Path(start or os.getcwd()) / DEFAULT_DIRNAME).resolve()
