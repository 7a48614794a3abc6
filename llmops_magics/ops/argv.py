"""Command-line parsers made from a spec: the same flags for ``%op`` and ``llmops op``.

``add_options`` declares one argparse argument per option the front takes, every
default ``SUPPRESS``ed: a flag left out leaves the spec's own default, so a default is
written once (in the spec). ``spec_values`` reads the parsed namespace back into the
keyword arguments of the spec. The parser class is the caller's: the magics pass
IPython's ``MagicArgumentParser`` (errors arrive as ``UsageError``), the CLI plain
``argparse``.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable
from typing import Any

from .spec import NO_CONST, Option, Spec

__all__ = ["add_options", "spec_values", "parse_line", "redact_command", "flags_of"]

_TYPES = {"int": int, "float": float}


def _help(opt: Option) -> str:
    text = opt.help
    shown = opt.default not in (None, False, (), "") and "default" not in text.lower()
    if shown:
        default = ",".join(map(str, opt.default)) if isinstance(opt.default, tuple) else opt.default
        text += f" (default: {default})"
    return text.replace("%", "%%")


def add_options(parser: argparse.ArgumentParser, spec: type[Spec], front: str, *, skip: Iterable[str] = ()) -> None:
    """One argument per option of ``spec`` that ``front`` ("magic" or "cli") takes."""
    skipped = set(skip)
    for opt in spec.options():
        if front not in opt.fronts or opt.name in skipped or (front == "magic" and opt.cell):
            continue
        kw: dict[str, Any] = {"help": _help(opt), "default": argparse.SUPPRESS}
        if opt.metavar:
            kw["metavar"] = opt.metavar
        if opt.positional:
            if opt.nargs:
                kw["nargs"] = opt.nargs
            elif not opt.required:
                kw["nargs"] = "?"
            parser.add_argument(opt.name, **kw)
            continue
        names = [opt.flag] + ([opt.short] if opt.short else [])
        kw["dest"] = opt.name
        kw.setdefault("metavar", opt.flag.lstrip("-").upper().replace("-", "_"))
        if opt.kind == "bool" and opt.const is NO_CONST:
            kw["action"] = "store_false" if opt.default is True else "store_true"
            del kw["metavar"]
        elif opt.const is not NO_CONST:
            kw.update(nargs="?", const=opt.const)
        elif opt.kind in ("list", "pairs") or opt.repeat:
            if opt.nargs:
                kw["nargs"] = opt.nargs
            else:
                kw["action"] = "append"
            if opt.kind == "pairs":
                kw["metavar"] = opt.metavar or "KEY=VALUE"
        else:
            if opt.kind in _TYPES:
                kw["type"] = _TYPES[opt.kind]
            if opt.choices is not None:
                kw["choices"] = opt.choices
                del kw["metavar"]
        parser.add_argument(*names, **kw)


def spec_values(namespace: argparse.Namespace, spec: type[Spec]) -> dict[str, Any]:
    """The spec's keyword arguments from a parsed namespace (only what was given)."""
    options = {o.name: o for o in spec.options()}
    values = {k: v for k, v in vars(namespace).items() if k in options}
    return {k: options[k].parse(v) if options[k].parse else v for k, v in values.items()}


def parse_line(parser: argparse.ArgumentParser, argv: list[str], spec: type[Spec]) -> tuple[dict[str, Any], dict]:
    """``(spec keyword arguments, the front's own extra flags)`` from ``argv``."""
    ns = parser.parse_args(argv)
    values = spec_values(ns, spec)
    extra = {k: v for k, v in vars(ns).items() if k not in values}
    return values, extra


def flags_of(parser: argparse.ArgumentParser) -> dict[str, str]:
    """``{dest: first long flag or positional name}`` of every argument (for the consistency tests)."""
    out = {}
    for action in parser._actions:  # argparse has no public listing of its arguments
        if isinstance(action, argparse._HelpAction):
            continue
        longs = [s for s in action.option_strings if s.startswith("--")]
        out[action.dest] = longs[0] if longs else action.dest
    return out


def redact_command(command: str, spec: type[Spec]) -> str:
    """The typed line as recorded: the value after any secret's flag replaced by ``***``."""
    for opt in spec.options():
        if opt.secret and opt.flag:
            flags = "|".join(re.escape(f) for f in (opt.flag, opt.short) if f)
            command = re.sub(rf"((?:{flags})(?:=|\s+))(\"[^\"]*\"|'[^']*'|\S+)", r"\1***", command)
    return command
