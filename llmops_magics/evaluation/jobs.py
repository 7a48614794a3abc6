"""The job an eval runs as: ``%eval`` and ``evaluate()`` return it at once."""

from __future__ import annotations

from typing import Any

from ..ops.jobs import Job

__all__ = ["EvalJob"]


class EvalJob(Job):
    """A running eval whose result is an ``EvalResult``.

    It stands for its result: ``result = %eval …`` then ``result.summary`` waits for the
    eval and reads the summary there (see ``Job.__getattr__``).
    """

    def __init__(self, target, *, name: str, spec: Any, rows: int) -> None:
        super().__init__(target, name=name, kind="eval")
        self.spec = spec
        self.rows = rows
