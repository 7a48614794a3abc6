"""``POST /v1/feedback``: a rating of one answered request, stored beside it in the request log.

Body: ``{"request_id": "cmpl-…", "score": 0.8}`` or ``{"request_id": …, "label": "down",
"correction": "the right answer", "user": "u1"}`` — ``request_id`` is the ``id`` (and
``X-Request-Id``) of the response being rated; exactly one of ``score`` (0 to 1) and
``label`` (up or down); ``correction`` only where the deployment logs texts. The answer is
``{"object": "feedback", "request_id", "score", "label", "correction", "created"}``.

The request's own log row is written in the background; the route flushes the log first,
so feedback sent the moment a response arrives finds its request. An unknown request id is a
404, a bad field a 400 naming it, both in OpenAI's error shape. A deployment started with
``--no-request-log`` has no log to rate against: every rating is a 409 (``request_log_off``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from ..errors import NotFoundError, ValidationError
from ..serving.requestlog import no_log_message, write_feedback
from .protocol import RequestError, parse_body

__all__ = ["FeedbackRequest", "store_feedback"]


class FeedbackRequest(BaseModel):
    """Types only; the values (score range, label, correction) are checked by ``write_feedback``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    request_id: str = Field(min_length=1, max_length=200)
    score: float | None = None
    label: str | None = None
    correction: str | None = None
    user: str | None = Field(default=None, max_length=256)


def store_feedback(service: Any, raw: bytes) -> dict[str, Any]:
    """Validate, flush the log, store; runs in a worker thread (it waits on the disk)."""
    log = service.log
    if not log.enabled:
        reason = no_log_message(service.spec.name, "there is no logged request to rate")
        raise RequestError(reason, status=409, code="request_log_off")
    req = parse_body(FeedbackRequest, raw)
    log.flush()
    try:
        row = write_feedback(
            log.path,
            req.request_id,
            score=req.score,
            label=req.label,
            correction=req.correction,
            user=log.user_digest(req.user),
            log_text=log.log_text,
        )
    except NotFoundError as exc:
        raise RequestError(str(exc), status=404, param="request_id", code="request_not_found") from None
    except ValidationError as exc:
        raise RequestError(str(exc), param=getattr(exc, "param", None), code="invalid_value") from None
    return {
        "object": "feedback",
        "request_id": row["request_id"],
        "score": row["score"],
        "label": row["label"],
        "correction": row["correction"],
        "created": int(row["ts"]),
    }
