"""``llmops``: the registry from a terminal or CI (list, show, lineage, tag, doctor, gc)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from .errors import LLMOpsError, RegistryError

__all__ = ["main"]


def _registry(args):
    """The registry at ``--home`` (or the default folder), which must already exist.

    The CLI only inspects and maintains registries; opening one creates it, so a
    mistyped ``--home`` would otherwise leave a new empty registry behind and
    ``doctor`` would call it healthy.
    """
    from .config import resolve_home
    from .store import Registry

    home = resolve_home(explicit=args.home)
    if not (home / "registry.db").is_file():
        raise RegistryError(f"no registry at {home}: check --home or $LLMOPS_HOME (a first save creates one)")
    return Registry(home)


def _list(args) -> int:
    reg = _registry(args)
    items = reg.names(args.kind, args.search)
    if args.json:
        print(json.dumps([s.to_dict() for s in items], indent=1))
    else:
        print(reg.list(args.kind, args.search))
    return 0


def _show(args) -> int:
    reg = _registry(args)
    art = reg.resolve(args.ref, args.kind)
    data = art.to_dict()
    if not args.code:
        data["source"].pop("code", None)
    if art.kind == "prompt":
        data["content"] = json.loads(reg.read_bytes(art))
    data["lineage"] = reg.lineage(art)["edges"]
    print(json.dumps(data, indent=1, default=str))
    return 0


def _lineage(args) -> int:
    print(json.dumps(_registry(args).lineage(args.ref), indent=1))
    return 0


def _tag(args) -> int:
    art = _registry(args).set_alias(args.ref, args.alias, args.kind)
    print(art)
    return 0


def _doctor(args) -> int:
    reg = _registry(args)
    report = reg.verify(rehash=not args.quick)
    print(f"registry: {reg.home}")
    print(report)
    return 0 if report.ok else 1


def _gc(args) -> int:
    plan = _registry(args).gc(grace_seconds=args.grace)
    print(plan)
    if args.yes and plan.paths:
        print(f"deleted {plan.execute()} file(s)")
    elif plan.paths:
        print("run again with --yes to delete")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="llmops", description="Inspect and maintain the llmops-magics registry.")
    p.add_argument("--home", help="registry folder (default: $LLMOPS_HOME, [tool.llmops] home, ./.llmops)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("list", help="artifact names with version counts and aliases")
    s.add_argument("search", nargs="?")
    s.add_argument("--kind")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=_list)

    s = sub.add_parser("show", help="one artifact version as JSON (kind://name/3, name@alias, name)")
    s.add_argument("ref")
    s.add_argument("--kind")
    s.add_argument("--code", action="store_true", help="include the notebook cell's code")
    s.set_defaults(fn=_show)

    s = sub.add_parser("lineage", help="upstream and downstream edges of a version")
    s.add_argument("ref")
    s.set_defaults(fn=_lineage)

    s = sub.add_parser("tag", help="point an alias at a version")
    s.add_argument("ref")
    s.add_argument("alias")
    s.add_argument("--kind")
    s.set_defaults(fn=_tag)

    s = sub.add_parser("doctor", help="check the registry's integrity (exit 1 on problems)")
    s.add_argument("--quick", action="store_true", help="check blobs exist without re-hashing them")
    s.set_defaults(fn=_doctor)

    s = sub.add_parser("gc", help="show (and with --yes delete) garbage left by interrupted saves")
    s.add_argument("--yes", action="store_true")
    s.add_argument("--grace", type=float, default=3600.0, help="keep garbage younger than this many seconds")
    s.set_defaults(fn=_gc)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except LLMOpsError as exc:
        print(f"llmops: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
