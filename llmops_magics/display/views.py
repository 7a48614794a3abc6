"""Views the UI installs and the core asks for by name: the one way core code reaches a widget.

The core never imports ipywidgets or IPython. The notebook adapter (``%load_ext``)
installs factories here (``"job"``: a job's live panel, ``"deployment-monitor"``: the
deployment monitor); a job displays as its view when there is one, and as text when
there is none.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import ValidationError

__all__ = ["set_view", "make_view", "require_view"]

_factories: dict[str, Callable[..., Any]] = {}


def set_view(name: str, factory: Callable[..., Any] | None) -> None:
    """Install (or with ``None`` remove) the factory of view ``name``."""
    if factory is None:
        _factories.pop(name, None)
    else:
        _factories[name] = factory


def make_view(name: str, *args: Any, **kwargs: Any) -> Any | None:
    """The view ``name`` of ``args``, or None when no UI installed one (or it cannot be built here)."""
    factory = _factories.get(name)
    return factory(*args, **kwargs) if factory is not None else None


def require_view(name: str, *args: Any, what: str, **kwargs: Any) -> Any:
    """Like ``make_view``, but a missing view is a ``ValidationError`` that says how to get one."""
    view = make_view(name, *args, **kwargs)
    if view is None:
        raise ValidationError(
            f"{what} is a notebook panel: run %load_ext llmops_magics in a notebook with ipywidgets installed"
        )
    return view
