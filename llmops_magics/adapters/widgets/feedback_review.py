"""Reviewing a deployment's answers: ``%monitor review NAME``.

Steps through the newest answered requests of the deployment's log (texts are needed, so
only a deployment with ``log_text=True``), newest first. Each answer sits in an editable
box: thumbs up or down rates it through ``feedback()`` (the running server, or the log file
once it is stopped), and an answer edited before the click is sent as the correction, which
``%dataset from-log --with-corrections`` then trains on. A rating moves on to the next
request. Stock ipywidgets in a plain class; ``close()`` unhooks every button.
"""

from __future__ import annotations

from typing import Any

from ...display.html import esc
from ...errors import LLMOpsError

__all__ = ["FeedbackReview"]

_BOX = "white-space:pre-wrap;font-family:monospace;max-height:12em;overflow:auto"


class FeedbackReview:
    def __init__(self, name: str, *, limit: int = 100, workspace: Any = None) -> None:
        import ipywidgets as w

        from ...context.workspaces import current
        from ...serving.feedback import traffic_source
        from ...serving.requestlog import read_requests

        self.name, self.workspace = name, workspace
        source = traffic_source(workspace or current(), name)
        source.require_text("there are no answers to review")
        logged = read_requests(source.log, limit=limit, with_text=True, with_feedback=True)
        self.rows = [r for r in reversed(logged) if (r.get("status") or 0) < 400 and r.get("output_text") is not None]
        self.index = 0
        self.rated: list[Any] = []  # the Feedback records this review stored, in order
        self.title = w.HTML(f"<b>review {esc(name)}</b> ({esc(source.ref)})")
        self.position = w.HTML()
        self.prompt = w.HTML()
        self.answer = w.Textarea(layout=w.Layout(width="100%", height="6em"), description="answer")
        self.up = w.Button(description="👍 good", tooltip="rate up (an edited answer is sent as the correction)")
        self.down = w.Button(description="👎 bad", tooltip="rate down (an edited answer is sent as the correction)")
        self.prev = w.Button(description="◀ newer")
        self.next = w.Button(description="older ▶")
        self.status = w.HTML()
        self.out = w.Output()
        self._handlers = [
            (self.up, self.out.capture()(lambda _b: self.rate("up"))),
            (self.down, self.out.capture()(lambda _b: self.rate("down"))),
            (self.prev, lambda _b: self.go(-1)),
            (self.next, lambda _b: self.go(+1)),
        ]
        for button, handler in self._handlers:
            button.on_click(handler)
        buttons = w.HBox([self.up, self.down, self.prev, self.next])
        self.root = w.VBox([self.title, self.position, self.prompt, self.answer, buttons, self.status, self.out])
        self._show()

    @property
    def current(self) -> dict[str, Any] | None:
        return self.rows[self.index] if self.rows else None

    def go(self, step: int) -> None:
        """Move ``step`` requests (positive: older); stays within the list."""
        if self.rows:
            self.index = min(max(self.index + step, 0), len(self.rows) - 1)
        self._show()

    def rate(self, label: str):
        """Rate the current answer ``up``/``down``; an edited answer goes with it as the correction."""
        from ...serving.feedback import feedback

        row = self.current
        if row is None:
            return None
        text = self.answer.value
        correction = text if text.strip() != (row["output_text"] or "").strip() else None
        try:
            result = feedback(
                self.name, row["request_id"], label=label, correction=correction, workspace=self.workspace
            )
        except LLMOpsError as exc:
            self.status.value = f'<span style="color:#c62828">{esc(exc)}</span>'
            return None
        row["feedback"], row["correction"] = result.score, result.correction
        self.rated.append(result)
        note = f"rated {label}" + (" with a correction" if result.correction else "")
        at_end = self.index == len(self.rows) - 1
        self.go(+1)
        self.status.value = esc(note + (" (that was the oldest request loaded)" if at_end else ""))
        return result

    def _show(self) -> None:
        row = self.current
        for button in (self.up, self.down, self.prev, self.next):
            button.disabled = row is None
        if row is None:
            self.position.value = "<i>no answered requests with logged text yet</i>"
            self.prompt.value, self.answer.value = "", ""
            return
        score = row.get("feedback")
        rating = "unrated" if score is None else f"rated {score:g}" + (" · corrected" if row.get("correction") else "")
        self.position.value = (
            f"{self.index + 1} / {len(self.rows)} · <code>{esc(row['request_id'])}</code> · {esc(rating)}"
        )
        self.prompt.value = f'<div style="{_BOX}">{esc(row["input_text"])}</div>'
        self.answer.value = row.get("correction") or row["output_text"]
        self.status.value = ""

    def close(self) -> None:
        for button, handler in self._handlers:
            button.on_click(handler, remove=True)
        for widget in (self.title, self.position, self.prompt, self.answer, self.up, self.down, self.prev,
                       self.next, self.status, self.out):  # fmt: skip
            widget.close()
        self.root.close()

    def __str__(self) -> str:
        return f"review {self.name}: {len(self.rows)} answered request(s), {len(self.rated)} rated here"

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = self.root._repr_mimebundle_(include=include, exclude=exclude)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        data["text/plain"] = str(self)
        return bundle
