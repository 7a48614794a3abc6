"""A dataset from a deployment's traffic: ``%dataset from-log NAME``, ``dataset_from_log(name)``, ``llmops from-log``.

The rows are the requests the deployment answered (status below 400) in a window, each with
its ``request_id`` and its latest feedback; ``--where feedback=down`` keeps the ones users
rated badly, ``--with-corrections`` puts a reviewer's corrected answer in place of the
model's. Only a deployment that logs texts (``log_text=True``) can give a dataset. The
version is linked to the deployment (``from_log``), so the loop's lineage reads
deployment → dataset → adapter. The window is stored as two Unix times, so replay reads the
same requests and the feedback as it stood then.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from .catalog import Operation
from .spec import Spec, option

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from ..datasets import DatasetVersion

__all__ = ["FromLogSpec", "dataset_from_log", "FROM_LOG", "WHERE"]

# --where KEY=VALUE: what each key may be
WHERE = {
    "feedback": ("up", "down", "any", "none", "corrected"),
    "arm": ("primary", "canary"),
    "endpoint": ("completions", "chat"),
    "version": None,  # any reference a row names (adapter://qa-lora/2)
}
_AGO = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)\s*$")
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _name(what: str):
    def check(value: str) -> str:
        from ..store.refs import validate_name

        return validate_name(value, what)

    return check


def when(value: Any) -> float:
    """A Unix time, a duration back from now (``30m``, ``2h``, ``7d``) or an ISO date/time (local unless zoned)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    m = _AGO.match(text)
    if m:
        return time.time() - float(m[1]) * _UNITS[m[2]]
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ValidationError(
            f"a time must be a duration back from now (30m, 2h, 7d), an ISO date/time (2025-06-01, "
            f"2025-06-01T12:00) or Unix seconds, found {value!r}"
        ) from None


def _where(value: Mapping[str, Any]) -> dict[str, str]:
    out = {}
    for key, wanted in value.items():
        if key not in WHERE:
            raise ValidationError(f"where takes KEY=VALUE with KEY among {', '.join(WHERE)}, found {key!r}")
        text = str(wanted).strip()
        allowed = WHERE[key]
        if allowed is not None and text not in allowed:
            raise ValidationError(f"where {key}= must be one of {', '.join(allowed)}, found {wanted!r}")
        out[key] = text
    return out


@dataclass(frozen=True, kw_only=True)
class FromLogSpec(Spec):
    """Which deployment's traffic, over which window, which rows, under which dataset name."""

    op = "from-log"

    deployment: str = option(
        positional=True, check=_name("deployment name"), help="Deployment whose logged traffic becomes the dataset."
    )
    name: str | None = option(
        None, short="-n", check=_name("dataset name"), help="Dataset name (default: DEPLOYMENT-traffic)."
    )
    since: float | None = option(
        None,
        kind="any",
        check=when,
        metavar="WHEN",
        help="Only requests from WHEN on: a duration back from now (30m, 2h, 7d), an ISO date/time or Unix seconds.",
    )
    until: float | None = option(
        None,
        kind="any",
        check=when,
        metavar="WHEN",
        help="Only requests before WHEN (default: now; stored as a time, so replay reads the same requests).",
    )
    where: Mapping[str, str] | None = option(
        None,
        check=_where,
        help="Keep rows where KEY=VALUE (repeatable): feedback=up|down|any|none|corrected, arm=primary|canary, "
        "endpoint=completions|chat, version=REF.",
    )
    with_corrections: bool = option(
        False, help="Where a reviewer corrected an answer, the corrected answer is the row's answer."
    )
    aliases: tuple[str, ...] = option(
        (), flag="--alias", short="-a", help="Alias to point at this version (repeatable)."
    )
    description: str | None = option(None, short="-d", help="What this version is (metadata, not content).")


def dataset_from_log(
    deployment: str,
    *,
    name: str | None = None,
    since: float | str | None = None,
    until: float | str | None = None,
    where: Mapping[str, str] | None = None,
    with_corrections: bool = False,
    aliases: Sequence[str] = (),
    description: str | None = None,
    workspace: Workspace | None = None,
) -> DatasetVersion:
    """A dataset version of deployment ``deployment``'s answered requests (see the module docstring).

    Columns: ``prompt`` (the model's input as served, template applied), ``answer`` (its
    answer, or the correction), ``request_id``, ``feedback`` (latest score or None),
    ``correction``, ``output_text`` (the answer as served), ``ts``, ``arm``, ``version``.
    ``%finetune --data NAME`` trains on ``prompt`` → ``answer`` as it is.
    """
    return FROM_LOG.call(locals())


FROM_LOG = Operation(
    "from-log",
    FromLogSpec,
    "llmops_magics.datasets.fromlog:run",
    "dataset_from_log",
    "register a deployment's logged traffic (with its feedback and corrections) as a dataset version",
)
