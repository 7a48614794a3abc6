"""``llmops``: the registry from a terminal or CI (list, show, lineage, tag, doctor, gc, run)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from ..errors import LLMOpsError, RegistryError, RegressionError, ValidationError

__all__ = ["main"]


def _home(args):
    """The registry folder at ``--home`` (or the default folder), which must already hold a registry.

    The CLI never makes a registry; opening one creates it, so a mistyped ``--home``
    would otherwise leave a new empty registry behind and ``doctor`` would call it healthy.
    """
    from ..context.home import resolve_home
    from ..store import Registry

    home = resolve_home(explicit=args.home)
    if not Registry.found_at(home):
        raise RegistryError(f"no registry at {home}: check --home or $LLMOPS_HOME (a first save creates one)")
    return home


def _registry(args):
    from ..store import Registry

    return Registry(_home(args))


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


def _overrides(pairs: Sequence[str]) -> dict:
    """``key=value`` pairs; a value is read as JSON when it parses (``4``, ``null``, ``["a"]``), else as text."""
    out = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise ValidationError(f"--set takes KEY=VALUE, found {pair!r}")
        try:
            out[key.strip()] = json.loads(text)
        except json.JSONDecodeError:
            out[key.strip()] = text
    return out


def _run(args) -> int:
    from dataclasses import replace

    from ..context.workspaces import Workspace, default_settings
    from ..ops.replay import plan_replay

    overrides = _overrides(args.set)
    ws = Workspace(replace(default_settings(), home=str(_home(args))))
    try:
        plan = plan_replay(args.spec, workspace=ws, overrides=overrides)
        print(plan.call, flush=True)
        if args.dry_run:
            print("dry run: nothing was run or written")
            return 0
        try:
            result = plan.execute()
        except RegressionError as exc:  # the eval was saved; its gate failed, as it would in CI
            print(f"llmops: {exc}", file=sys.stderr)
            print(exc.result.ref)
            return 1
        print(result.ref)
        return 0
    finally:
        ws.close()


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="llmops", description="Inspect and maintain the llmops-magics registry, and replay what it recorded."
    )
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

    s = sub.add_parser("run", help="replay a recorded call: a spec JSON file, or an artifact's stored spec")
    s.add_argument("spec", metavar="SPEC_OR_REF", help="spec.json, an `llmops show` record, or a reference")
    s.add_argument("--dry-run", action="store_true", help="print the call without making it")
    s.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="replace an argument (VALUE is JSON when it parses, else text); repeatable",
    )
    s.set_defaults(fn=_run)
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
