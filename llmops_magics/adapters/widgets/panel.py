"""What every composed panel shares: it displays as its root box, and closing it closes every widget in it.

A panel is a plain class holding stock ipywidgets (STYLE: compose, do not subclass). Its
``close()`` unhooks its own observers and handlers first, then calls ``close_tree`` so no
widget of it stays alive in the kernel's comm table.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Panel", "close_tree"]


def close_tree(root: Any) -> None:
    """Close ``root`` and every widget below it (``children`` of boxes, depth first)."""
    stack = [root]
    while stack:
        widget = stack.pop()
        stack.extend(getattr(widget, "children", ()))
        widget.close()


class Panel:
    """Mixin: ``self.root`` is the box shown; ``_repr_mimebundle_`` delegates to it."""

    root: Any

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.root._repr_mimebundle_(include=include, exclude=exclude)
