"""What every magic shares: parsers made from specs, error translation, splitting, subcommand routing.

An operation's magic parser is built from its spec on first use, not at ``%load_ext``:
IPython asks an object for ``getdoc()`` before reading ``__doc__``, so ``%finetune?`` still
shows the complete help, built when it is asked for.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Mapping
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import MagicArgumentParser, real_name
from IPython.utils.process import arg_split

from ...errors import LLMOpsError

__all__ = ["parse", "parse_pairs", "parse_spec", "parse_values", "route", "spec_arguments", "split", "usage_errors"]


def usage_errors(fn: Callable) -> Callable:
    """Turn our errors into a plain ``UsageError``: IPython shows it as one line, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LLMOpsError as exc:
            raise UsageError(str(exc)) from None

    return wrapper


def spec_arguments(spec: str, *extra: tuple[tuple[str, ...], dict[str, Any]]) -> Callable:
    """``@magic_arguments`` for an operation, built on first use.

    ``spec`` is ``"module:SpecClass"``; the parser holds its options, then the ``extra``
    front-only flags (``(("--wait",), {"action": "store_true", "help": …})``).
    ``func.parts()`` returns ``{"parser", "spec", "doc"}``; ``func.getdoc()`` the help.
    """

    def decorate(func: Callable) -> Callable:
        state: dict[str, Any] = {}
        doc = func.__doc__

        def parts() -> dict[str, Any]:
            if not state:
                from ...ops.argv import add_options

                module, _, name = spec.partition(":")
                cls = getattr(importlib.import_module(module), name)
                parser = MagicArgumentParser(prog=real_name(func), description=doc)
                add_options(parser, cls, "magic")
                for names, kw in extra:
                    parser.add_argument(*names, **kw)
                help_text = parser.format_help()
                help_text = help_text.replace("usage: ", "", 1) if help_text.startswith("usage: ") else help_text
                state.update(parser=parser, spec=cls, doc=help_text)
            return state

        func.parts = parts
        func.getdoc = lambda: parts()["doc"]
        return func

    return decorate


def split(line: str) -> list[str]:
    """Shell-style words with quotes removed (``--description 'two words'`` is one value)."""
    try:
        return arg_split(line, posix=True, strict=True)
    except ValueError as exc:
        raise UsageError(f"cannot split the arguments: {exc}") from None


def parse_values(fn: Callable, words: list[str]) -> tuple[dict[str, Any], dict[str, Any], type]:
    """``(spec keyword arguments given, the front's own flags, the spec class)`` of a magic line."""
    from ...ops.argv import parse_line

    parts = fn.parts()
    values, extra = parse_line(parts["parser"], words, parts["spec"])
    return values, extra, parts["spec"]


def parse_spec(fn: Callable, words: list[str], **fixed: Any) -> tuple[Any, dict[str, Any]]:
    """The spec a magic line describes (plus ``fixed`` values such as a cell body), and the front's own flags."""
    values, extra, spec = parse_values(fn, words)
    return spec.from_dict({**values, **fixed}), extra


def parse_pairs(items, what: str = "value") -> dict[str, Any]:
    from ...ops.spec import parse_value

    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{what} must be written key=value, found {item!r}")
        out[key.strip()] = parse_value(value)
    return out


def route(line: str, commands: Mapping[str, Callable[[str], Any]], magic: str) -> Any:
    """Dispatch ``%magic SUBCOMMAND rest…`` to ``commands[SUBCOMMAND](rest)``."""
    head, _, rest = line.strip().partition(" ")
    if head not in commands:
        known = "|".join(commands)
        found = f"found {head!r}" if head else "found nothing"
        raise UsageError(f"%{magic} expects a subcommand {known}, {found}")
    return commands[head](rest.strip())


def parse(fn: Callable, line: str):
    """Parse ``line`` with the ``@magic_arguments`` parser of ``fn``; errors arrive as ``UsageError``."""
    return fn.parser.parse_args(split(line))


def call(command: str):
    """The ``Call`` a magic passes to its operation: the line the person typed."""
    from ...ops.catalog import Call

    return Call(command=command.strip())
