"""The IPython adapter: registers the magics and the cell tracker, nothing heavy.

Each magic class lives in its own module; ``MAGICS`` lists those that exist.
"""

from __future__ import annotations

import sys
from typing import Any

from ...display.views import set_view
from .audit import AuditMagics
from .card import CardMagics
from .cells import CellTracker
from .dataset import DatasetMagics
from .deploy import DeployMagics
from .eval import EvalMagics
from .fairness import FairnessMagics
from .finetune import FinetuneMagics
from .model import ModelMagics
from .monitor import MonitorMagics
from .pii import PiiMagics
from .prompt import PromptMagics
from .retrain import RetrainMagics
from .settings import LLMOps
from .trace import TraceMagics

__all__ = ["load", "unload", "LLMOps", "MAGICS"]

MAGICS = (
    PromptMagics,
    DatasetMagics,
    ModelMagics,
    FinetuneMagics,
    EvalMagics,
    DeployMagics,
    MonitorMagics,
    PiiMagics,
    FairnessMagics,
    CardMagics,
    AuditMagics,
    RetrainMagics,
    TraceMagics,
)

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
    set_view("job", job_panel)
    set_view("deployment-monitor", deployment_monitor)
    set_view("leaderboard", leaderboard_panel)
    _state[id(shell)] = (settings, tracker)


def unload(shell: Any) -> None:
    settings, tracker = _state.pop(id(shell), (None, None))
    if tracker is not None:
        tracker.uninstall()
    if settings is not None and settings in shell.configurables:
        shell.configurables.remove(settings)
    set_view("job", None)
    set_view("deployment-monitor", None)
    set_view("leaderboard", None)
    if "llmops_magics.tracing.openai_client" in sys.modules:  # %trace on leaves nothing behind
        sys.modules["llmops_magics.tracing.openai_client"].uninstrument_openai()


def job_panel(job: Any) -> Any:
    """A job's live ipywidgets panel; ``None`` (text display) when ipywidgets is not installed."""
    try:
        from ..widgets.job_panel import JobPanel
    except ImportError:
        return None
    return JobPanel(job)


def deployment_monitor(name: str, **kwargs: Any) -> Any:
    """The live deployment monitor panel; ``None`` when ipywidgets is not installed."""
    try:
        from ..widgets.deploy_monitor import DeploymentMonitor
    except ImportError:
        return None
    return DeploymentMonitor(name, **kwargs)


def leaderboard_panel(board: Any) -> Any:
    """The sortable leaderboard panel of ``%model compare``; ``None`` (a table) when ipywidgets is not installed."""
    try:
        from ..widgets.leaderboard import LeaderboardPanel
    except ImportError:
        return None
    return LeaderboardPanel(board)
