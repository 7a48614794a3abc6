"""The metric registry: every metric, built-in or yours, is one function with one signature.

A metric receives all examples of one target at once (so embedding, scoring and
judging run batched) and returns one value per example::

    @llmops_magics.metric(higher_is_better=True, needs=("reference",))
    def first_word(examples, ctx):
        return [float(ex.output.split()[:1] == ex.reference.split()[:1]) for ex in examples]

The return value is a sequence of ``float | None`` (``None``: not applicable to that
example, left out of means and comparisons), or a mapping of column name to such a
sequence whose first column is the metric's primary value (compared in A/B tests) and
the rest auxiliary columns (reported only), as ``judge`` does with ``judge_std``.

A reference that is missing or blank (empty once stripped) makes every built-in
reference metric not applicable (``None``) for that example: an empty reference is a
data gap, not an answer that any output contains or that an empty output matches.
``reference_text(ex)`` applies the same rule in your own metrics.

``needs`` lets bad input fail before any generation: ``"reference"`` (a target
column), ``"context"`` (a ``context`` column), ``"model"`` (a local model target, not
an endpoint), ``"judge"`` (a judge model).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import ValidationError

__all__ = [
    "Example",
    "MetricContext",
    "MetricSpec",
    "MetricCall",
    "metric",
    "get_metric",
    "list_metrics",
    "parse_metric_specs",
    "reference_text",
    "split_metric_specs",
    "run_metric",
]

NEEDS = ("reference", "context", "model", "judge")


@dataclass(frozen=True)
class Example:
    """One example of one target, as a metric sees it."""

    index: int
    row: Mapping[str, Any]
    prompt: str  # the rendered prompt (chat prompts: one ``role: content`` line per message)
    output: str
    reference: str | None
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    finish_reason: str
    cached: bool
    messages: tuple[Mapping[str, str], ...] | None = None
    ttft_s: float | None = None  # time to first token: streamed endpoint answers only

    @property
    def context(self) -> str | None:
        value = self.row.get("context")
        return None if value is None or value == "" else str(value)


def reference_text(ex: Example) -> str | None:
    """The example's reference with surrounding whitespace stripped; ``None`` when missing or blank."""
    if ex.reference is None:
        return None
    text = str(ex.reference).strip()
    return text or None


@dataclass
class MetricContext:
    """What a metric may use besides the examples.

    ``target`` is the evaluated target (``target.score(prompts, continuations)`` gives
    log-likelihoods for local models), ``arg`` the text after ``name:`` in the metric
    spec, ``judges`` the shared judge runner, ``notes`` counters that end up in the
    summary (say ``ctx.count("judge_parse_failures", 3)``). One context serves every
    metric of one target: ``shared`` holds what several metrics reuse (answers sampled
    once for both consistency checks), ``details`` per-example values that are not
    numbers (``ctx.detail("support_verdicts", [...])``), kept in the eval's records.
    """

    target: Any
    options: Any
    arg: str | None = None
    judges: Any = None
    notes: dict[str, float] = field(default_factory=dict)
    shared: dict[Any, Any] = field(default_factory=dict)
    details: dict[str, list[Any]] = field(default_factory=dict)

    def count(self, key: str, value: float = 1) -> None:
        self.notes[key] = self.notes.get(key, 0) + value

    def detail(self, column: str, values: Sequence[Any]) -> None:
        """Store one JSON-able value per example (``None`` where there is none) in the records' ``column``."""
        self.details[column] = list(values)


MetricFn = Callable[[Sequence[Example], MetricContext], Any]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    fn: MetricFn
    higher_is_better: bool | None = True  # None: informative only (token counts)
    needs: tuple[str, ...] = ()
    gate: bool = True  # may a regression on it fail --fail-on-regression?
    description: str = ""

    @property
    def direction(self) -> str:
        return {True: "higher is better", False: "lower is better", None: "neutral"}[self.higher_is_better]


@dataclass(frozen=True)
class MetricCall:
    """A metric as asked for: ``rouge_l`` or ``regex:^\\d+$`` (``arg`` is what follows the first colon)."""

    spec: MetricSpec
    arg: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def __str__(self) -> str:
        return self.name if self.arg is None else f"{self.name}:{self.arg}"


_REGISTRY: dict[str, MetricSpec] = {}


def metric(
    fn: MetricFn | None = None,
    *,
    name: str | None = None,
    higher_is_better: bool | None = True,
    needs: Sequence[str] = (),
    gate: bool | None = None,
    description: str | None = None,
    replace: bool = False,
):
    """Register a metric (usable bare, ``@metric``, or with options, ``@metric(needs=("reference",))``).

    Registering a name that exists raises unless ``replace=True``: silently changing what
    ``rouge_l`` means would make old and new evals incomparable.
    """

    def register(f: MetricFn) -> MetricFn:
        key = name or f.__name__
        if not key.isidentifier():
            raise ValidationError(f"metric name must be an identifier, found {key!r}")
        unknown = [n for n in needs if n not in NEEDS]
        if unknown:
            raise ValidationError(f"metric {key!r}: unknown needs {unknown}; expected some of {', '.join(NEEDS)}")
        if key in _REGISTRY and not replace and _REGISTRY[key].fn is not f:
            raise ValidationError(f"metric {key!r} is already registered; pass replace=True to redefine it")
        doc = description if description is not None else (f.__doc__ or "").strip().split("\n")[0]
        _REGISTRY[key] = MetricSpec(
            key,
            f,
            higher_is_better,
            tuple(needs),
            (higher_is_better is not None) if gate is None else gate,
            doc,
        )
        return f

    return register(fn) if fn is not None else register


def _ensure_builtins() -> None:
    from . import hallucination, judge, model_metrics, text_metrics  # noqa: F401  (registration side effect)


def get_metric(name: str) -> MetricSpec:
    _ensure_builtins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValidationError(f"unknown metric {name!r}; known metrics: {', '.join(sorted(_REGISTRY))}") from None


class MetricList(list):
    """Rows of ``(metric, direction, needs, description)`` that display as a table."""

    COLUMNS = ("metric", "direction", "needs", "description")

    def __str__(self) -> str:
        from ..display.html import text_table

        return text_table(self.COLUMNS, self)

    def _repr_mimebundle_(self, include=None, exclude=None):
        from ..display.html import mimebundle, table_html

        return mimebundle(str(self), table_html(self.COLUMNS, self))


def list_metrics() -> MetricList:
    """Every registered metric, built-in or yours, with its direction and what it needs."""
    _ensure_builtins()
    specs = sorted(_REGISTRY.values(), key=lambda s: s.name)
    return MetricList((s.name, s.direction, ", ".join(s.needs), s.description) for s in specs)


def split_metric_specs(text: str) -> list[str]:
    """``"exact_match,regex:^\\d{1,3}$"`` to ``["exact_match", "regex:^\\d{1,3}$"]``.

    Commas separate metrics, but an argument may hold commas too (a regex's ``{1,3}``): a
    comma starts a new metric only when a registered metric name follows it, otherwise it
    belongs to the argument before it. A pattern with a comma followed by a metric name
    (``regex:a,tokens``) must be passed as a list item instead, which is never split.
    """
    _ensure_builtins()
    items: list[str] = []
    for piece in text.split(","):
        head = piece.partition(":")[0].strip()
        if items and ":" in items[-1] and head not in _REGISTRY:
            items[-1] += "," + piece
        else:
            items.append(piece)
    return [m.strip() for m in items if m.strip()]


def parse_metric_specs(metrics: str | Sequence[str]) -> list[MetricCall]:
    """``"exact_match,rouge_l"`` or ``["exact_match", "regex:^[A-Z]"]`` to metric calls, validated.

    A string is split with ``split_metric_specs``; list items are taken whole.
    """
    if isinstance(metrics, str):
        items = split_metric_specs(metrics)
    else:
        items = [str(m).strip() for m in metrics]
    items = [m for m in items if m]
    if not items:
        raise ValidationError("metrics must name at least one metric, found none")
    calls, seen = [], set()
    for item in items:
        name, sep, arg = item.partition(":")
        spec = get_metric(name.strip())
        if spec.name in seen:
            raise ValidationError(f"metric {spec.name!r} is given twice")
        seen.add(spec.name)
        calls.append(MetricCall(spec, arg if sep else None))
    return calls


def _check_values(name: str, column: str, values: Any, n: int) -> list[float | None]:
    try:
        values = list(values)
    except TypeError:
        raise ValidationError(
            f"metric {name!r} must return a sequence of numbers, found {type(values).__name__}"
        ) from None
    if len(values) != n:
        raise ValidationError(f"metric {name!r} returned {len(values)} value(s) for column {column!r}; expected {n}")
    out: list[float | None] = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise ValidationError(
                f"metric {name!r} returned {v!r} in column {column!r}; expected a number or None"
            ) from None
        out.append(None if math.isnan(f) else f)
    return out


def run_metric(call: MetricCall, examples: Sequence[Example], ctx: MetricContext) -> dict[str, list[float | None]]:
    """Run one metric; returns ``{column: values}`` with the primary column first."""
    ctx.arg = call.arg
    raw = call.spec.fn(examples, ctx)
    n = len(examples)
    if isinstance(raw, Mapping):
        if not raw:
            raise ValidationError(f"metric {call.name!r} returned no columns")
        return {str(col): _check_values(call.name, str(col), vals, n) for col, vals in raw.items()}
    return {call.name: _check_values(call.name, call.name, raw, n)}
