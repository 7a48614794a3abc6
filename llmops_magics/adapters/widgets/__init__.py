"""ipywidgets panels for the notebook adapter; each module imports ipywidgets itself, on first use."""

from __future__ import annotations

from typing import Any

__all__ = ["eval_panel", "leaderboard_panel", "grid_panel", "panel_for"]


def eval_panel(result: Any, rows: int = 20):
    """A side-by-side comparison panel for an ``EvalResult``, a running eval (waited for) or a reference."""
    from ...ops.jobs import Job
    from .eval_compare import EvalPanel

    if isinstance(result, Job):
        result = result.wait()
    if isinstance(result, str):
        from ...evaluation import get_eval

        result = get_eval(result)
    return EvalPanel(result, rows=rows)


def leaderboard_panel(board: Any, rows: int = 10):
    """The sortable leaderboard of a ``compare_models`` result (``Leaderboard``), with its per-example drill-down."""
    from .leaderboard import LeaderboardPanel

    return LeaderboardPanel(board, rows=rows)


def _result(result: Any) -> Any:
    from ...ops.jobs import Job

    if isinstance(result, Job):
        result = result.wait()
    if isinstance(result, str):
        from ...evaluation import get_eval

        result = get_eval(result)
    return result


def grid_panel(result: Any, rows: int = 20):
    """A prompts x models grid of an ``EvalResult`` (or a running eval, waited for, or a reference), cell by cell."""
    from .eval_grid import GridPanel

    return GridPanel(_result(result), rows=rows)


def panel_for(result: Any):
    """The grid panel for an eval of several prompts (``--prompt P1,P2``), else the side-by-side panel."""
    result = _result(result)
    if len({t.get("prompt") for t in result.targets}) > 1:
        return grid_panel(result)
    return eval_panel(result)
