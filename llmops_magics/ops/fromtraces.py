"""A dataset from traced model calls: ``%dataset from-traces NAME``, ``dataset_from_traces(name)``, ``llmops from-traces``.

The rows are the model calls stored in the workspace's traces (``traces.db``) that
captured their content (``[tool.llmops.tracing] capture_content``, or ``%trace on --content``):
each call's input and output, with the ids of its trace and span kept on the row so it can
be looked up (``%trace show TRACE``). ``--prompt`` keeps the calls a prompt version made
(and links the dataset to that version), ``--where`` narrows by model, operation or finish
reason, and ``--field COLUMN=SOURCE`` says which column gets what. The window is stored as
two Unix times, so a replay reads the same calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from .catalog import Operation
from .spec import Spec, option

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from ..datasets import DatasetVersion

__all__ = ["FromTracesSpec", "dataset_from_traces", "FROM_TRACES", "WHERE", "SOURCES", "DEFAULT_FIELDS"]

WHERE = ("model", "operation", "finish_reason", "provider")
# where a column's values come from: the call's text, its messages, its ids, or any span attribute (attr:NAME)
SOURCES = ("input", "output", "messages", "system", "trace_id", "span_id", "prompt_ref", "model", "finish_reason")
DEFAULT_FIELDS = {"prompt": "input", "answer": "output"}


def _when(value: Any) -> float:
    """Unix seconds from a number, a duration back from now (``30m``, ``2d``) or a date/time."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        return float(str(value).strip())
    except ValueError:
        from ..tracing.read import since_ns

        return since_ns(str(value)) / 1e9  # type: ignore[operator]


def _dataset_name(value: str) -> str:
    from ..store.refs import validate_name

    return validate_name(value, "dataset name")


def _where(value: Mapping[str, Any]) -> dict[str, str]:
    bad = [k for k in value if k not in WHERE]
    if bad:
        raise ValidationError(f"where takes KEY=VALUE with KEY among {', '.join(WHERE)}, found {', '.join(bad)}")
    return {k: str(v) for k, v in value.items()}


def _fields(value: Mapping[str, Any]) -> dict[str, str]:
    from ..store.refs import validate_name

    out = {}
    for column, source in value.items():
        validate_name(str(column), "column name")
        text = str(source)
        if text not in SOURCES and not (text.startswith("attr:") and len(text) > 5):
            raise ValidationError(
                f"field {column}= must be one of {', '.join(SOURCES)} or attr:ATTRIBUTE, found {source!r}"
            )
        out[str(column)] = text
    return out


@dataclass(frozen=True, kw_only=True)
class FromTracesSpec(Spec):
    """Which traced calls, over which window, mapped to which columns, under which dataset name."""

    op = "from-traces"

    name: str = option(positional=True, check=_dataset_name, help="Dataset name for the calls' rows.")
    prompt: str | None = option(
        None, help="Only calls made with this prompt: qa (any version), qa/3, qa@production (pinned when run)."
    )
    since: float | None = option(
        None,
        kind="any",
        check=_when,
        metavar="WHEN",
        help="Only calls from WHEN on: a duration back from now (30m, 2h, 7d), a date/time or Unix seconds.",
    )
    until: float | None = option(
        None,
        kind="any",
        check=_when,
        metavar="WHEN",
        help="Only calls before WHEN (default: now; stored as a time, so replay reads the same calls).",
    )
    where: Mapping[str, str] | None = option(
        None,
        check=_where,
        help="Keep calls where KEY=VALUE (repeatable): model=, operation=, finish_reason=, provider=.",
    )
    field: Mapping[str, str] | None = option(
        None,
        check=_fields,
        help="COLUMN=SOURCE (repeatable; default prompt=input answer=output): input, output, messages, system, "
        "trace_id, span_id, prompt_ref, model, finish_reason or attr:ATTRIBUTE. trace_id and span_id are always kept.",
    )
    aliases: tuple[str, ...] = option(
        (), flag="--alias", short="-a", help="Alias to point at this version (repeatable)."
    )
    description: str | None = option(None, short="-d", help="What this version is (metadata, not content).")


def dataset_from_traces(
    name: str,
    *,
    prompt: str | None = None,
    since: float | str | None = None,
    until: float | str | None = None,
    where: Mapping[str, str] | None = None,
    field: Mapping[str, str] | None = None,
    aliases: Sequence[str] = (),
    description: str | None = None,
    workspace: Workspace | None = None,
) -> DatasetVersion:
    """A dataset version of the traced model calls that kept their content (see the module docstring)."""
    return FROM_TRACES.call(locals())


FROM_TRACES = Operation(
    "from-traces",
    FromTracesSpec,
    "llmops_magics.datasets.fromtraces:run",
    "dataset_from_traces",
    "register traced model calls (their inputs and outputs, with their trace ids) as a dataset version",
)
