"""One frozen spec per operation: the single place an operation's parameters are written.

An operation's spec is a frozen, keyword-only dataclass whose fields are declared with
``option(...)``: the field's name is the Python keyword, the spec key and (as
``--name-with-dashes``, unless ``flag=`` says otherwise) the flag of the magic and of the
``llmops`` subcommand; its metadata holds the help, short flag, default, choices and
check. Everything else is a view of it::

    the magic's parser and %op? help    ops.argv.add_options(parser, Spec, "magic")
    the llmops subcommand               ops.argv.add_options(parser, Spec, "cli")
    the Python function's keywords      checked against the spec by a test
    the stored spec and replay          Spec.to_dict() / Spec.from_dict(stored["args"])

Values are checked and normalised once, in ``__post_init__``, whichever front made the
spec: a number given as text from a flag and the same number given from Python make the
same spec. A bad value raises ``ValidationError`` naming the field, what it expects and
what it found; nothing has been written by then.

This module imports nothing heavy: the magics build their parsers from specs at
``%load_ext`` time.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field
from functools import cache
from typing import Any, ClassVar

from ..errors import ValidationError

__all__ = ["Option", "Spec", "option", "SECRET", "FRONTS", "NO_CONST"]

NO_CONST = type("NoConst", (), {"__repr__": lambda self: "NO_CONST"})()  # a flag that always takes a value
SECRET = "***"  # what a secret's value is stored as (only that one was given)
FRONTS = frozenset({"magic", "cli", "api"})
KINDS = ("str", "int", "float", "bool", "list", "pairs", "any")


@dataclass(frozen=True)
class Option:
    """What one spec field is, to every front. Built from the field by ``Spec.options()``."""

    name: str
    help: str
    kind: str  # one of KINDS, from the annotation unless given
    default: Any = None
    required: bool = False
    flag: str = ""  # "--max-steps"; "" for a positional
    short: str | None = None
    choices: tuple[Any, ...] | None = None
    nargs: str | None = None  # a positional's or a list flag's argparse nargs
    const: Any = NO_CONST  # a flag whose value is optional ("--resume" alone means const)
    secret: bool = False  # never stored: recorded as "***" when given
    stored: bool = True  # part of the recorded call (False: how to run it, not what it makes)
    fronts: frozenset[str] = FRONTS
    metavar: str | None = None
    check: Callable[[Any], Any] | None = None
    cell: bool = False  # the cell magic's body fills it
    repeat: bool = False  # the flag may be given several times (lists and mappings always may)
    parse: Callable[[Any], Any] | None = None  # turns what a command line gave into the value
    fallback: Any = NO_CONST  # what None (the default) resolves to when nothing else decides it

    @property
    def positional(self) -> bool:
        return not self.flag

    @property
    def label(self) -> str:
        """How errors name the field: its name, with its flag when that is spelled differently."""
        if self.flag and self.flag != "--" + self.name.replace("_", "-"):
            return f"{self.name} ({self.flag})"
        return self.name


def option(
    default: Any = MISSING,
    *,
    help: str,
    flag: str | None = None,
    short: str | None = None,
    kind: str | None = None,
    choices: Sequence[Any] | None = None,
    positional: bool = False,
    nargs: str | None = None,
    const: Any = NO_CONST,
    secret: bool = False,
    stored: bool = True,
    fronts: Sequence[str] = tuple(FRONTS),
    metavar: str | None = None,
    check: Callable[[Any], Any] | None = None,
    cell: bool = False,
    repeat: bool = False,
    parse: Callable[[Any], Any] | None = None,
    fallback: Any = NO_CONST,
) -> Any:
    """A spec field. ``default`` left out makes it required; see ``Option`` for the rest.

    ``fallback`` is for a ``None`` default that a later layer resolves (a fine-tune's base
    model may ship its own values): the value used when no layer does, written here once and
    added to the help as "(default …)".
    """
    if isinstance(default, (list, dict, set)):
        raise TypeError("a spec default must be immutable: use a tuple, or None for a mapping")
    if fallback not in (NO_CONST, None) and "default" not in help:
        help = f"{help.rstrip('.')} (default {fallback})."
    meta = {k: v for k, v in locals().items() if k != "default"}
    meta.update(choices=tuple(choices) if choices is not None else None, fronts=frozenset(fronts))
    return field(default=default, metadata={"llmops": meta})


def _kind_of(annotation: Any) -> str:
    """``int | None`` → int, ``tuple[str, ...]`` → list, ``Mapping[str, Any]`` → pairs."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    parts = [p.strip() for p in text.split("|") if p.strip() != "None"]
    head = parts[0] if len(parts) == 1 else "Any"
    if head.startswith(("tuple", "Sequence", "list")):
        return "list"
    if head.startswith(("Mapping", "dict")):
        return "pairs"
    return {"str": "str", "int": "int", "float": "float", "bool": "bool"}.get(head, "any")


@dataclass(frozen=True, kw_only=True)
class Spec:
    """Base of every operation's spec. Subclasses set ``op`` and declare fields with ``option``."""

    op: ClassVar[str] = ""

    @classmethod
    def options(cls) -> tuple[Option, ...]:
        return _options(cls)

    @classmethod
    def option_for(cls, name: str) -> Option:
        for opt in cls.options():
            if opt.name == name:
                return opt
        raise KeyError(name)

    def __post_init__(self) -> None:
        for opt in self.options():
            value = getattr(self, opt.name)
            normal = _normalise(opt, value)
            if normal is not value:
                object.__setattr__(self, opt.name, normal)

    # ------------------------------------------------------------------ conversions

    def to_dict(self, *, stored_only: bool = True) -> dict[str, Any]:
        """JSON-ready values: what is recorded with the artifact (secrets as ``"***"``)."""
        out = {}
        for opt in self.options():
            if stored_only and not opt.stored:
                continue
            value = getattr(self, opt.name)
            if opt.secret and value is not None:
                value = SECRET
            out[opt.name] = _jsonable(value)
        return out

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, origin: str = "") -> Spec:
        """The spec ``values`` describe; an unknown key is an error, never dropped."""
        known = {o.name for o in cls.options()}
        unknown = sorted(set(values) - known)
        if unknown:
            where = f"{origin}: " if origin else ""
            raise ValidationError(
                f"{where}unknown argument(s) {', '.join(unknown)} for {cls.op}; its arguments are {', '.join(sorted(known))}"
            )
        missing = [o.name for o in cls.options() if o.required and values.get(o.name) is None]
        if missing:
            where = f"{origin}: " if origin else ""
            raise ValidationError(f"{where}{cls.op} needs {', '.join(missing)}, found none")
        return cls(**dict(values))

    def replace(self, **changes: Any) -> Spec:
        return dataclasses.replace(self, **changes)

    def changed(self) -> dict[str, Any]:
        """The values that differ from the defaults, in field order (for printing a call)."""
        return {o.name: getattr(self, o.name) for o in self.options() if getattr(self, o.name) != o.default}

    def call_text(self, function: str) -> str:
        """``finetune(data='dataset://qa/1', max_steps=4)``: the Python call this spec is."""
        shown = []
        for name, value in self.changed().items():
            opt = self.option_for(name)
            shown.append(f"{name}={SECRET!r}" if opt.secret and value is not None else f"{name}={value!r}")
        return f"{function}({', '.join(shown)})"


@cache
def _options(cls: type[Spec]) -> tuple[Option, ...]:
    out = []
    for f in dataclasses.fields(cls):
        if "llmops" not in f.metadata:
            raise TypeError(f"{cls.__name__}.{f.name} must be declared with option(...)")
        meta = dict(f.metadata["llmops"])
        positional, flag, kind = meta.pop("positional"), meta.pop("flag"), meta.pop("kind") or _kind_of(f.type)
        if kind not in KINDS:
            raise TypeError(f"{cls.__name__}.{f.name}: unknown kind {kind!r}")
        required = f.default is MISSING
        out.append(
            Option(
                name=f.name,
                kind=kind,
                default=None if required else f.default,
                required=required,
                flag="" if positional else (flag or "--" + f.name.replace("_", "-")),
                **meta,
            )
        )
    return tuple(out)


# ---------------------------------------------------------------------- values


def _fail(opt: Option, expected: str, value: Any) -> ValidationError:
    return ValidationError(f"{opt.label} must be {expected}, found {value!r}")


def _normalise(opt: Option, value: Any) -> Any:
    if value is None:
        if opt.required:
            raise ValidationError(f"{opt.label} is required, found nothing")
        return None
    kind = opt.kind
    if kind == "int":
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            value = int(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(opt, "an integer", value)
    elif kind == "float":
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise _fail(opt, "a number", value) from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise _fail(opt, "a number", value)
        value = float(value)
    elif kind == "bool":
        if opt.const is not NO_CONST and isinstance(value, str):
            pass  # a flag whose value is optional: --resume RUN_ID
        elif not isinstance(value, bool):
            raise _fail(opt, "true or false", value)
    elif kind == "str":
        if not isinstance(value, str):
            raise _fail(opt, "text", value)
    elif kind == "list":
        if isinstance(value, str):
            value = (value,)
        elif isinstance(value, Sequence):
            value = tuple(value)
        else:
            raise _fail(opt, "a list", value)
    elif kind == "pairs":
        if isinstance(value, Sequence) and not isinstance(value, str):
            value = _pairs(opt, value)
        if not isinstance(value, Mapping):
            raise _fail(opt, "a mapping of names to values", value)
        value = dict(value)
    if opt.choices is not None and value not in opt.choices:
        raise ValidationError(f"{opt.label} must be one of {', '.join(map(str, opt.choices))}, found {value!r}")
    if opt.check is not None:
        value = opt.check(value)
    return value


def parse_value(text: str) -> Any:
    """``0.2`` → 0.2, ``true`` → True, ``[1,2]`` → [1, 2]; anything else stays text."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _pairs(opt: Option, items: Sequence[Any]) -> dict[str, Any]:
    """``["k=v", "n=2"]`` (from repeated flags) → ``{"k": "v", "n": 2}``."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = str(item).partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"{opt.label} takes key=value, found {item!r}")
        out[key.strip()] = parse_value(text)
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value
