"""The IPython adapter: registers the magics and the cell tracker, nothing heavy.

Each magic class lives in its own module; ``MAGICS`` lists those that exist.
"""

from __future__ import annotations

from typing import Any

from ...ops import jobs
from .cells import CellTracker
from .dataset import DatasetMagics
from .deploy import DeployMagics
from .eval import EvalMagics
from .finetune import FinetuneMagics
from .prompt import PromptMagics
from .settings import LLMOps

__all__ = ["load", "unload", "LLMOps", "MAGICS"]

MAGICS = (PromptMagics, DatasetMagics, FinetuneMagics, EvalMagics, DeployMagics)

_state: dict[int, tuple[LLMOps, CellTracker]] = {}


def load(shell: Any) -> None:
    if id(shell) in _state:
        return
    settings = LLMOps(parent=shell)
    shell.configurables.append(settings)
    tracker = CellTracker(shell)
    tracker.install()
    for cls in MAGICS:
        magics = cls(shell=shell)
        magics.settings = settings
        shell.register_magics(magics)
    jobs.set_view_factory(job_panel)
    _state[id(shell)] = (settings, tracker)


def unload(shell: Any) -> None:
    settings, tracker = _state.pop(id(shell), (None, None))
    if tracker is not None:
        tracker.uninstall()
    if settings is not None and settings in shell.configurables:
        shell.configurables.remove(settings)
    jobs.set_view_factory(None)


def job_panel(job: Any) -> Any:
    """A job's live ipywidgets panel; ``None`` (text display) when ipywidgets is not installed."""
    try:
        from ..widgets.job_panel import JobPanel
    except ImportError:
        return None
    return JobPanel(job)
