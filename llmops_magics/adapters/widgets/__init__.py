"""ipywidgets panels for the notebook adapter; each module imports ipywidgets itself, on first use."""

from __future__ import annotations

from typing import Any

__all__ = ["eval_panel"]


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
