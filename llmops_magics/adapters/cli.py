"""``llmops``: every operation from a terminal, cron or CI, and the registry's maintenance commands.

``llmops prompt|dataset|model|finetune|eval|deploy …`` take the same flags as the magics
(both are made from the operation's spec) and print the reference of what they made on
their last line. ``list``, ``show``, ``lineage``, ``tag``, ``doctor``, ``gc`` and ``run``
(replay) work on the registry; ``deployments``, ``stop``, ``promote``, ``rollback``,
``add-adapter``, ``remove-adapter``, ``traces`` and ``trace`` are in ``cli_serving.py``.
Exit status: 0 done, 1 a check failed (an eval's regression gate, a monitor's failed check,
``doctor``), 2 bad input or nothing to work on.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..errors import LLMOpsError, PolicyError, RegistryError, RegressionError, ValidationError
from ..ops.argv import add_options, spec_values
from ..ops.catalog import CATALOG, Call, get

__all__ = ["main", "build_parser"]


def _home(args):
    """The registry folder at ``--home`` (or the default folder), which must already hold a registry.

    The CLI never makes a registry from a maintenance command: opening one creates it, so a
    mistyped ``--home`` would otherwise leave a new empty registry behind and ``doctor``
    would call it healthy. Operations (``llmops prompt …``) may create it, as a save does.
    """
    from ..context.home import resolve_home
    from ..store import Registry

    home = resolve_home(explicit=args.home)
    if not Registry.found_at(home):
        raise RegistryError(f"no registry at {home}: check --home or $LLMOPS_HOME (a first save creates one)")
    return home


def _workspace(args, *, must_exist: bool = True):
    from ..context.home import resolve_home
    from ..context.workspaces import Workspace, default_settings

    home = _home(args) if must_exist else resolve_home(explicit=args.home)
    return Workspace(replace(default_settings(), home=str(home)))


def _registry(args):
    from ..store import Registry

    return Registry(_home(args))


# ---------------------------------------------------------------------- registry commands


def _list(args) -> int:
    reg = _registry(args)
    items = reg.names(args.kind, args.search)
    if args.json:
        print(json.dumps([s.to_dict() for s in items], indent=1))
    else:
        print(reg.list(args.kind, args.search))
    return 0


def _show(args) -> int:
    from ..kinds.prompt import decode

    reg = _registry(args)
    art = reg.resolve(args.ref, args.kind)
    data = art.to_dict()
    if not args.code:
        data["source"].pop("code", None)
    if art.kind == "prompt":
        template, params = decode(reg.read_bytes(art))
        data["content"] = {"template": template, "params": params}
    data["lineage"] = reg.lineage(art)["edges"]
    print(json.dumps(data, indent=1, default=str))
    return 0


def _lineage(args) -> int:
    print(json.dumps(_registry(args).lineage(args.ref), indent=1))
    return 0


def _tag(args) -> int:
    print(_registry(args).set_alias(args.ref, args.alias, args.kind, override_policy=args.override_policy))
    return 0


def _doctor(args) -> int:
    from ..errors import IntegrityError

    home = _home(args)
    print(f"registry: {home}")
    try:
        report = _registry(args).verify(rehash=not args.quick)
    except IntegrityError as exc:  # damaged where SQLite reads first: nothing else can be checked
        print(f"PROBLEMS: the database cannot be opened\n  problem: {exc}")
        print(f"  restore {home / 'registry.db'} from a backup; the blobs under {home / 'blobs'} are untouched")
        return 1
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


def _sync(args) -> int:
    from ..recording.sync import sync

    ws = _workspace(args)
    try:
        report = sync(args.kind, timeout=args.timeout, workspace=ws)
    finally:
        ws.close()
    print(report)
    return 0 if report.ok else 1


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
    from ..ops.replay import plan_replay

    ws = _workspace(args)
    try:
        plan = plan_replay(args.spec, workspace=ws, overrides=_overrides(args.set), command=args.typed)
        print(plan.call, flush=True)
        if args.dry_run:
            print("dry run: nothing was run or written")
            return 0
        return _finish(plan.execute, lambda result: result.ref)
    finally:
        ws.close()


# ---------------------------------------------------------------------- operations


def _progress(job: Any, event: dict) -> None:
    """A long operation's log lines and status changes, on stderr (stdout ends with the reference)."""
    kind = event.get("type")
    if kind == "log":
        shown = {k: v for k, v in event.items() if k not in ("type", "time")}
        print("  " + "  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()),
              file=sys.stderr, flush=True)  # fmt: skip
    elif kind == "status":
        print(f"{job.name}: {event.get('status')}", file=sys.stderr, flush=True)


def _operation(args) -> int:
    op = get(args.op_name)
    spec = op.spec.from_dict(spec_values(args, op.spec))
    ws = _workspace(args, must_exist=False)
    try:

        def make():
            value = op.run(spec, Call(workspace=ws, command=args.typed))
            if op.long:
                value.add_listener(_progress)
            return op.finish(value)

        return _finish(make, lambda value: op.ref_of(value, {}), op.failed)
    finally:
        ws.close()


def _finish(make, ref_of, failed=lambda value: False) -> int:
    """Print what was made and its reference last; a failed gate (an eval's regression, a monitor's check) exits 1."""
    try:
        value = make()
    except RegressionError as exc:  # the eval was saved; its gate failed, as it would in CI
        print(f"llmops: {exc}", file=sys.stderr)
        print(exc.result.ref)
        return 1
    text = str(getattr(value, "value", value))
    ref = ref_of(value)
    if text and text != ref:
        print(text)
    print(ref)
    return 1 if failed(value) else 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="llmops",
        description="The llmops-magics operations from a terminal, and the registry's maintenance commands.",
    )
    p.add_argument("--home", help="registry folder (default: $LLMOPS_HOME, [tool.llmops] home, ./.llmops)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for name in CATALOG:
        op = get(name)
        s = sub.add_parser(name, help=op.summary, description=(op.spec.__doc__ or "").strip())
        add_options(s, op.spec, "cli")
        s.set_defaults(fn=_operation, op_name=name)

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
    s.add_argument("--override-policy", metavar="REASON", help=PolicyError.OVERRIDE_HELP)
    s.set_defaults(fn=_tag)

    s = sub.add_parser("doctor", help="check the registry's integrity (exit 1 on problems)")
    s.add_argument("--quick", action="store_true", help="check blobs exist without re-hashing them")
    s.set_defaults(fn=_doctor)

    s = sub.add_parser("gc", help="show (and with --yes delete) garbage left by interrupted saves")
    s.add_argument("--yes", action="store_true")
    s.add_argument("--grace", type=float, default=3600.0, help="keep garbage younger than this many seconds")
    s.set_defaults(fn=_gc)

    s = sub.add_parser(
        "sync", help="mirror to W&B every version that has no W&B record yet (exit 1 if some did not finish)"
    )
    s.add_argument("--kind")
    s.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for the mirroring")
    s.set_defaults(fn=_sync)

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

    from .cli_serving import add_commands

    add_commands(sub)  # deployments, stop, promote, rollback, add-adapter, remove-adapter, traces, trace
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.typed = "llmops " + shlex.join(argv)
    try:
        return args.fn(args)
    except LLMOpsError as exc:
        print(f"llmops: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
