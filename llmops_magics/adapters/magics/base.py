"""What every magic shares: error translation, ``key=value`` parsing, subcommand routing."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from IPython.core.error import UsageError
from IPython.utils.process import arg_split

from ...errors import LLMOpsError

__all__ = ["parse", "parse_pairs", "route", "split", "usage_errors"]


def usage_errors(fn: Callable) -> Callable:
    """Turn our errors into a plain ``UsageError``: IPython shows it as one line, no traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except LLMOpsError as exc:
            raise UsageError(str(exc)) from None

    return wrapper


def parse_value(text: str) -> Any:
    """``0.2`` → 0.2, ``true`` → True, ``[1,2]`` → [1, 2]; anything else stays a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_pairs(items: Iterable[str], what: str = "value") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"{what} must be written key=value, found {item!r}")
        out[key.strip()] = parse_value(value)
    return out


def split(line: str) -> list[str]:
    """Shell-style words with quotes removed (``--description 'two words'`` is one value)."""
    try:
        return arg_split(line, posix=True, strict=True)
    except ValueError as exc:
        raise UsageError(f"cannot split the arguments: {exc}") from None


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
