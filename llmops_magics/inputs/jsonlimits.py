"""JSON decoding with a size bound and a nesting bound, checked before the parser runs."""

from __future__ import annotations

import json
import re
from typing import Any

from ..errors import ValidationError

__all__ = ["MAX_DEPTH", "TooLarge", "check_depth", "loads"]

MAX_DEPTH = 64  # far past any real request or data row, far short of Python's recursion limit
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENING = frozenset(b"[{")


class TooLarge(ValidationError):
    """The input is bigger than the limit (an HTTP boundary answers 413)."""


def check_depth(raw: bytes | str, max_depth: int = MAX_DEPTH, *, what: str = "the JSON") -> None:
    """Refuse JSON nested deeper than ``max_depth``, before any parser recurses into it.

    Strings are cut out first (in C), so brackets inside them (``"[[["``) never count; what
    is left is reduced to its brackets, and only a body with more than ``max_depth`` opening
    brackets in all is walked bracket by bracket.
    """
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    brackets = _STRING.sub(b"", data).translate(None, _NOT_BRACKETS)
    if brackets.count(b"[") + brackets.count(b"{") <= max_depth:
        return
    depth = 0
    for ch in brackets:
        if ch in _OPENING:
            depth += 1
            if depth > max_depth:
                raise ValidationError(f"{what} is nested more than {max_depth} levels deep")
        else:
            depth -= 1


def loads(raw: bytes | str, *, max_bytes: int | None = None, max_depth: int = MAX_DEPTH, what: str = "the JSON") -> Any:
    """``json.loads`` after the size and nesting checks; every failure is a ``ValidationError``."""
    if max_bytes is not None and len(raw) > max_bytes:
        raise TooLarge(f"{what} is larger than {max_bytes} bytes")
    check_depth(raw, max_depth, what=what)
    try:
        return json.loads(raw)
    except RecursionError:  # belt and braces: the check above keeps this from happening
        raise ValidationError(f"{what} is nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{what} is not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    except ValueError as exc:
        raise ValidationError(f"{what} is not valid JSON ({exc})") from None
