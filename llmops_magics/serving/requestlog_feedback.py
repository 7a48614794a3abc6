"""Feedback on a logged answer: a rating checked field by field, then written to the request log.

Feedback lives in the request log's file (table ``feedback``, keyed by the request id the
response carried): a score in [0, 1] (``up`` is 1, ``down`` is 0), an optional corrected
answer, when, and the rater's digest. A request may be rated several times; the latest
rating wins. ``write_feedback`` is the one writer: the server calls it (``POST
/v1/feedback``) and so does the kernel when the server is not running
(``serving/feedback.py``). A rejected field raises ``ValidationError`` with ``param``
naming it, which the server turns into its 400 body. ``read_requests(with_feedback=True)``
(``requestlog.py``) joins the latest rating onto each row.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import NotFoundError, ValidationError
from .requestlog_file import SCHEMA, connect

__all__ = ["LABELS", "feedback_score", "write_feedback"]

LABELS = {"up": 1.0, "down": 0.0}


def _invalid(param: str, message: str) -> ValidationError:
    """A rejected feedback field; ``param`` names it for the server's 400 body."""
    err = ValidationError(message)
    err.param = param
    return err


def feedback_score(score: Any = None, label: Any = None) -> float:
    """The stored score of a rating: ``score`` in [0, 1], or ``label`` up (1) / down (0); exactly one."""
    if label is not None:
        if score is not None:
            raise _invalid("score", "feedback takes a score or a label, not both")
        if label not in LABELS:
            raise _invalid("label", f"label must be up or down, found {label!r}")
        return LABELS[label]
    if score is None:
        raise _invalid("score", "feedback needs a score (a number from 0 to 1) or a label (up or down), found neither")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0.0 <= score <= 1.0:
        raise _invalid("score", f"score must be a number from 0 to 1, found {score!r}")
    return float(score)


def _correction(correction: Any, log_text: bool) -> str | None:
    if correction is None:
        return None
    if not isinstance(correction, str):
        raise _invalid("correction", f"correction must be text, found {type(correction).__name__}")
    try:
        correction.encode()
    except UnicodeEncodeError:
        raise _invalid("correction", "correction holds text that is not valid Unicode (a lone surrogate)") from None
    if not correction.strip():
        return None
    if not log_text:
        raise _invalid(
            "correction",
            "this deployment logs no texts (log_text=False), so it keeps no corrections either; send a score or label",
        )
    return correction


def write_feedback(
    path: str | Path,
    request_id: str,
    *,
    score: Any = None,
    label: Any = None,
    correction: Any = None,
    user: str | None = None,
    log_text: bool = False,
    ts: float | None = None,
) -> dict[str, Any]:
    """Rate one logged request; returns the stored row. ``user`` is already a digest (``user_digest``).

    Everything is checked before anything is written: the score or label, the correction
    (kept only where the deployment keeps texts), and that the request is in the log
    (``NotFoundError`` otherwise). The caller must make sure the log's writer has flushed
    the request (the server does; the kernel writes here only when no server is running).
    """
    import time

    value = feedback_score(score, label)
    corrected = _correction(correction, log_text)
    if not isinstance(request_id, str) or not request_id.strip():
        raise _invalid("request_id", f"request_id must be the id a response carried, found {request_id!r}")
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"no request log at {path}: the deployment has not answered a request yet")
    conn = connect(path)
    try:
        conn.executescript(SCHEMA)
        if conn.execute("SELECT 1 FROM requests WHERE request_id = ? LIMIT 1", (request_id,)).fetchone() is None:
            raise NotFoundError(f"no request {request_id!r} in the request log {path.name}")
        row = {
            "ts": time.time() if ts is None else ts,
            "request_id": request_id,
            "score": value,
            "label": label if label is not None else None,
            "correction": corrected,
            "user": user,
        }
        conn.execute(
            f"INSERT INTO feedback ({', '.join(row)}) VALUES ({', '.join('?' * len(row))})", tuple(row.values())
        )
    finally:
        conn.close()
    return row
