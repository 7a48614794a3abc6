"""The texts a PII scan reads: a dataset's text columns, an eval's outputs, a prompt, a request log.

Every source becomes a list of ``Cell`` (which row, which column, the text) with the
reference it was read from, pinned (``dataset://qa/2``, never ``qa@golden``), and the
artifact the scan links to. A bare name is looked up among the kinds a scan reads (a
``pii-scan`` of the same name never makes it ambiguous). A request log is read by
deployment name: its texts exist only when the deployment logs them (``log_text=True``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import AmbiguousReferenceError, NotFoundError, ValidationError
from ..store import parse_reference

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from ..store import Artifact

__all__ = ["Cell", "Source", "read_source", "SOURCE_KINDS", "text_columns"]

SOURCE_KINDS = ("dataset", "eval", "prompt", "deployment")
LOG_COLUMNS = ("input_text", "output_text")
EVAL_DEFAULT = ("output",)


@dataclass(frozen=True)
class Cell:
    row: str  # "train:3" (split:index), "A:12" (target:example), a request id, "template"
    column: str
    text: str


@dataclass
class Source:
    kind: str
    ref: str  # pinned: what the stored spec names
    name: str
    columns: tuple[str, ...]
    cells: list[Cell]
    rows: int  # rows read (a row may hold several text cells, or none)
    artifact: Artifact | None = field(default=None, repr=False)


def read_source(ws: Workspace, text: str, columns: Sequence[str] = (), limit: int | None = None) -> Source:
    """The cells of ``text`` (a reference or a deployment name); refuses a source with no text to scan."""
    kind, ref = _kind_of(ws, text)
    source = {"dataset": _dataset, "eval": _eval, "prompt": _prompt, "deployment": _deployment}[kind](
        ws, ref, tuple(columns), limit
    )
    if not source.cells:
        raise ValidationError(
            f"{source.ref} has no text in column(s) {', '.join(source.columns) or '(none)'}: nothing to scan"
        )
    return source


def _kind_of(ws: Workspace, text: str) -> tuple[str, Any]:
    ref = parse_reference(text)
    if ref.kind is not None:
        if ref.kind not in SOURCE_KINDS:
            raise ValidationError(
                f"a PII scan reads a dataset, an eval's outputs, a prompt or a deployment's request log, "
                f"not a {ref.kind} ({text})"
            )
        return ref.kind, ref
    reg = ws.registry
    found = [k for k in SOURCE_KINDS if reg.exists(ref.with_kind(k))]
    if "deployment" not in found and ref.version is None and reg.get_state("deployments", ref.name) is not None:
        found.append("deployment")
    if not found:
        raise NotFoundError(f"no dataset, eval, prompt or deployment is named {ref.name!r}")
    if len(found) > 1:
        raise AmbiguousReferenceError(
            f"{ref.name!r} names a {' and a '.join(found)}; write {' or '.join(f'{k}://{text}' for k in found)} to choose"
        )
    return found[0], ref.with_kind(found[0])


def text_columns(schema: dict[str, str]) -> tuple[str, ...]:
    """Columns whose values are text (``str``, or text mixed with other types)."""
    return tuple(c for c, t in schema.items() if "str" in t.split("|"))


def _pick(ref: str, asked: tuple[str, ...], available: Sequence[str], default: Sequence[str]) -> tuple[str, ...]:
    missing = [c for c in asked if c not in available]
    if missing:
        raise ValidationError(
            f"{ref} has no column(s) {', '.join(missing)}; its columns are {', '.join(available) or '(none)'}"
        )
    return asked or tuple(default)


def _cells(rows: Sequence[tuple[str, dict[str, Any]]], columns: Sequence[str]) -> list[Cell]:
    return [
        Cell(row, c, value)
        for row, values in rows
        for c in columns
        if isinstance(value := values.get(c), str) and value.strip()
    ]


def _dataset(ws: Workspace, ref: Any, columns: tuple[str, ...], limit: int | None) -> Source:
    from ..datasets import get_dataset

    version = get_dataset(str(ref), workspace=ws)
    cols = _pick(version.ref, columns, version.columns, text_columns(version.schema))
    rows = [(f"{split}:{i}", r) for split in version.splits for i, r in enumerate(version.records(split))]
    rows = rows[:limit] if limit else rows
    return Source("dataset", version.ref, version.name, cols, _cells(rows, cols), len(rows), version.artifact)


def _eval(ws: Workspace, ref: Any, columns: tuple[str, ...], limit: int | None) -> Source:
    from ..evaluation import get_eval

    result = get_eval(str(ref), workspace=ws)
    records = result.records[:limit] if limit else result.records
    available = list(dict.fromkeys(k for r in result.records for k in r))
    cols = _pick(result.ref, columns, available, EVAL_DEFAULT)
    rows = [(f"{r.get('target')}:{r.get('example')}", r) for r in records]
    art = result.artifact
    return Source("eval", art.ref, art.name, cols, _cells(rows, cols), len(rows), art)


def _prompt(ws: Workspace, ref: Any, columns: tuple[str, ...], limit: int | None) -> Source:
    from ..prompts import get_prompt

    prompt = get_prompt(str(ref), workspace=ws)
    cols = _pick(prompt.ref, columns, ("template",), ("template",))
    art = prompt.artifact
    return Source(
        "prompt", art.ref, art.name, cols, _cells([("template", {"template": prompt.template})], cols), 1, art
    )


def _deployment(ws: Workspace, ref: Any, columns: tuple[str, ...], limit: int | None) -> Source:
    from ..serving.records import require_state
    from ..serving.requestlog import logs_requests, no_log_message, read_requests

    reg = ws.registry
    state = require_state(reg, ref.name)
    if not logs_requests(state):
        raise ValidationError(no_log_message(ref.name, "there is nothing to scan"))
    art = reg.resolve(ref) if ref.version is not None or ref.alias else None
    if art is None and state.get("ref"):
        art = reg.resolve(state["ref"])
    cols = _pick(f"deployment://{ref.name}", columns, LOG_COLUMNS, LOG_COLUMNS)
    logged = read_requests(state["monitor_db"], with_text=True, limit=limit)
    if not logged:
        raise ValidationError(f"the request log of deployment {ref.name!r} is empty: nothing to scan")
    if not any(r.get(c) for r in logged for c in LOG_COLUMNS):
        raise ValidationError(
            f"deployment {ref.name!r} logs no texts (it was deployed without log_text=True): nothing to scan"
        )
    rows = [(str(r.get("request_id") or f"#{i}"), r) for i, r in enumerate(logged)]
    return Source("deployment", f"deployment://{ref.name}", ref.name, cols, _cells(rows, cols), len(rows), art)
