"""What every magic shares: parsers made from specs, error translation, splitting, subcommand routing."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import MagicArgumentParser, real_name
from IPython.utils.process import arg_split

from ...errors import LLMOpsError
from ...ops.argv import add_options, parse_line
from ...ops.spec import Spec, parse_value

__all__ = ["parse", "parse_pairs", "parse_spec", "route", "spec_arguments", "split", "usage_errors"]


def usage_errors(fn: Callable) -> Callable:
    """Turn our errors into a plain ``UsageError``: IPython shows it as one line, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LLMOpsError as exc:
            raise UsageError(str(exc)) from None

    return wrapper


def spec_arguments(spec: type[Spec], *extra: tuple[tuple[str, ...], dict[str, Any]]) -> Callable:
    """``@magic_arguments`` for an operation: the parser holds ``spec``'s options, then ``extra``
    front-only flags (``(("--wait",), {"action": "store_true", "help": …})``).

    The magic's docstring becomes its ``%name?`` help, parser help included, as IPython's
    ``magic_arguments`` does it.
    """

    def decorate(func: Callable) -> Callable:
        parser = MagicArgumentParser(prog=real_name(func), description=func.__doc__)
        add_options(parser, spec, "magic")
        for names, kw in extra:
            parser.add_argument(*names, **kw)
        help_text = parser.format_help()
        func.__doc__ = help_text.replace("usage: ", "", 1) if help_text.startswith("usage: ") else help_text
        func.parser = parser
        func.spec = spec
        return func

    return decorate


def split(line: str) -> list[str]:
    """Shell-style words with quotes removed (``--description 'two words'`` is one value)."""
    try:
        return arg_split(line, posix=True, strict=True)
    except ValueError as exc:
        raise UsageError(f"cannot split the arguments: {exc}") from None


def parse_spec(fn: Callable, words: list[str], **fixed: Any) -> tuple[Spec, dict[str, Any]]:
    """The spec a magic line describes (plus ``fixed`` values such as a cell body), and the front's own flags."""
    values, extra = parse_line(fn.parser, words, fn.spec)
    return fn.spec.from_dict({**values, **fixed}), extra


def parse_pairs(items, what: str = "value") -> dict[str, Any]:
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
