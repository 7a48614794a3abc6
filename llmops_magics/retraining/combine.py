"""New rows + the deployed adapter's training set → the dataset a retrain fine-tunes on.

Rows are compared by their *question*: the values of the variables the adapter's prompt
template reads (``question`` for ``Question: {{ question }}``). That is what the model is
asked, so two rows with the same question and different answers are two judgements of one
case, and the newer one (the new data) wins.

Rows logged by a server (``%dataset from-log``) hold the model input as served, the template
already applied, in a ``prompt`` column. A text template with one free variable can be read
backwards (render it around a marker: what precedes and follows the marker must frame the
logged text), so those rows get the adapter's own columns back; fine-tuning then renders
them exactly as the old rows, and the adapter keeps its template. Rows that do not fit the
template are counted and left out.

The combined dataset has a ``train`` split and, when anything is held out, a ``validation``
split: the old validation rows (unless a new row asks the same question) plus the new
held-out rows. It is linked to both parents with the rule in the relation
(``append-old``/``append-new``, ``replace-old``/``replace-new``) and to the deployment.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError

if TYPE_CHECKING:
    from ..datasets import DatasetVersion
    from ..ops.catalog import Call

__all__ = ["Combined", "combine", "template_reader", "LOGGED_INPUT"]

LOGGED_INPUT = "prompt"  # the column from-log puts the served input in
_MARKER = "\x00llmops-marker\x00"


def template_reader(template: str, params: Mapping[str, Any]) -> Callable[[str], dict[str, str] | None] | None:
    """A function from a rendered prompt back to its one variable, or None when the template cannot be inverted."""
    from ..prompts.template import parse_template

    parsed = parse_template(template)
    free = parsed.required(params)
    if parsed.format != "text" or len(free) != 1:
        return None
    rendered = parsed.render({**params, free[0]: _MARKER})
    if not isinstance(rendered, str) or rendered.count(_MARKER) != 1:
        return None
    head, tail = rendered.split(_MARKER)

    def read(text: str) -> dict[str, str] | None:
        if len(text) < len(head) + len(tail) or not (text.startswith(head) and text.endswith(tail)):
            return None
        return {free[0]: text[len(head) : len(text) - len(tail)]}

    return read


@dataclass(frozen=True)
class Combined:
    """The combined dataset version and what went into it."""

    version: DatasetVersion
    counts: dict[str, int]
    rule: str

    @property
    def ref(self) -> str:
        return self.version.ref

    @property
    def has_validation(self) -> bool:
        return bool(self.counts["validation"])

    def describe(self) -> str:
        return describe(self.rule, self.counts)


def describe(rule: str, c: Mapping[str, int]) -> str:
    """``append: 32 old + 40 new training rows; 16 held out (8 new)``: what a combination did, in words."""
    old = "" if rule == "replace" else f"{c['old_train']} old + "
    text = f"{rule}: {old}{c['new_train']} new training rows"
    if c["replaced"]:
        text += f" ({c['replaced']} old rows replaced by new answers)"
    text += f"; {c['validation']} held out ({c['new_validation']} new)"
    if c["unreadable"]:
        text += f"; {c['unreadable']} new rows left out (their input does not fit the adapter's prompt)"
    return text


class _Rows:
    """The adapter's view of rows: which variables make a question, and how logged rows are read back."""

    def __init__(self, template: str, params: Mapping[str, Any], target_column: str) -> None:
        from ..prompts.template import parse_template

        self.variables = parse_template(template).required(params)
        self.reader = template_reader(template, params)
        self.target = target_column
        self.template = template

    def key(self, row: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(str(row.get(v)) for v in self.variables)

    def adopt(self, rows: Sequence[Mapping[str, Any]], where: str) -> tuple[list[dict[str, Any]], int]:
        """The new rows in the adapter's columns, and how many could not be read."""
        out, unreadable = [], 0
        for row in rows:
            if all(v in row for v in self.variables):
                out.append(dict(row))
                continue
            if LOGGED_INPUT not in row:
                raise ValidationError(
                    f"{where} has neither the column(s) {', '.join(self.variables)} the adapter's prompt "
                    f"{self.template!r} reads nor a logged input ({LOGGED_INPUT}); its columns are {', '.join(row)}"
                )
            if self.reader is None:
                raise ValidationError(
                    f"{where} holds logged inputs, but the adapter's prompt {self.template!r} cannot be read "
                    f"backwards (it needs one variable in a text template); give rows with {', '.join(self.variables)}"
                )
            values = self.reader(str(row[LOGGED_INPUT]))
            if values is None:
                unreadable += 1
                continue
            out.append({**{k: v for k, v in row.items() if k != LOGGED_INPUT}, **values})
        missing = [i for i, r in enumerate(out) if r.get(self.target) in (None, "")]
        if missing:
            raise ValidationError(
                f"{where}: {len(missing)} row(s) have no {self.target!r}, the adapter's target column"
            )
        return out, unreadable

    def latest(self, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """One row per question, the last one given (later judgements win)."""
        return list({self.key(r): r for r in rows}.values())


def _new_splits(new: DatasetVersion, rows: _Rows, holdout: float, seed: int) -> tuple[list, list, int]:
    from ..datasets.tables import split_rows

    splits = new.splits
    if "validation" in splits:
        train_rows = [r for s in splits if s != "validation" for r in new.records(s)]
        train, bad_t = rows.adopt(train_rows, new.ref)
        held, bad_v = rows.adopt(new.records("validation"), f"{new.ref} [validation]")
        return rows.latest(train), rows.latest(held), bad_t + bad_v
    every, bad = rows.adopt([r for s in splits for r in new.records(s)], new.ref)
    every = rows.latest(every)
    if holdout <= 0 or len(every) < 2:
        return every, [], bad
    parts = split_rows(every, holdout, seed)
    return parts["train"], parts["validation"], bad


def combine(
    call: Call,
    *,
    name: str,
    rule: str,
    old: DatasetVersion,
    old_train_split: str,
    old_validation_split: str | None,
    new: DatasetVersion,
    holdout: float,
    seed: int,
    template: str,
    params: Mapping[str, Any],
    target_column: str,
    parents: Sequence[tuple[Any, str]] = (),
) -> Combined:
    """Save the combined dataset ``name`` (see the module docstring); ``parents``: more lineage edges."""
    from ..datasets.versions import save_rows
    from ..ops.datasets import DatasetSpec

    rows = _Rows(template, params, target_column)
    new_train, new_val, unreadable = _new_splits(new, rows, holdout, seed)
    if not new_train and not new_val:
        raise ValidationError(f"none of the rows of {new.ref} fit the adapter's prompt {template!r}")
    new_keys = {rows.key(r) for r in [*new_train, *new_val]}
    old_train = old.records(old_train_split)
    kept = [r for r in old_train if rows.key(r) not in new_keys] if rule == "append" else []
    old_val = old.records(old_validation_split) if old_validation_split in old.splits else []
    kept_val = [r for r in old_val if rows.key(r) not in new_keys]
    splits = {"train": kept + new_train}
    if kept_val or new_val:
        splits["validation"] = kept_val + new_val
    counts = {
        "old_train": len(kept),
        "new_train": len(new_train),
        "replaced": len(old_train) - len(kept) if rule == "append" else 0,
        "validation": len(splits.get("validation", [])),
        "new_validation": len(new_val),
        "unreadable": unreadable,
    }
    if not splits["train"]:
        raise ValidationError(f"no training rows are left: every new row of {new.ref} was held out")
    description = describe(rule, counts)
    version = save_rows(
        name,
        splits,
        spec=DatasetSpec(name=name, data=splits, description=description),
        call=call,
        metadata={"description": description, "combine": {"rule": rule, "old": old.ref, "new": new.ref, **counts}},
        parents=[(old.artifact, f"{rule}-old"), (new.artifact, f"{rule}-new"), *parents],
    )
    return Combined(version, counts, rule)
