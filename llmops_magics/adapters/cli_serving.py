"""``llmops deployments|stop|promote|rollback|add-adapter|remove-adapter|traces|trace``.

What ``%deploy list|stop|promote|rollback|add-adapter|remove-adapter`` and ``%trace list|show``
do in a notebook, from a terminal or cron, with the same functions behind them. They act on
records and running servers rather than making one artifact from a spec, so they are plain
commands here, not catalog operations. Exit status: 0 done, 2 bad input (``cli.main``).
"""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import PolicyError

__all__ = ["add_commands"]


def _with_workspace(fn):
    def run(args) -> int:
        from .cli import _workspace

        ws = _workspace(args)
        try:
            out = fn(args, ws)
            print(out)
            return 0
        finally:
            ws.close()

    return run


def _serving():
    from .. import serving

    return serving


@_with_workspace
def _deployments(args, ws) -> Any:
    return _serving().list_deployments(workspace=ws)


@_with_workspace
def _stop(args, ws) -> Any:
    return _serving().stop_deployment(args.name, workspace=ws)


def _call(ws, line: str):
    from ..ops.catalog import Call

    return Call(workspace=ws, command=line)


@_with_workspace
def _promote(args, ws) -> Any:
    handle = _serving().promote_deployment(args.name, override_policy=args.override_policy, call=_call(ws, args.typed))
    return handle.artifact.ref


@_with_workspace
def _rollback(args, ws) -> Any:
    return _serving().rollback_deployment(args.name, call=_call(ws, args.typed)).artifact.ref


@_with_workspace
def _add_adapter(args, ws) -> Any:
    handle = _serving().add_adapter(args.name, args.ref, as_name=args.as_name, override_policy=args.override_policy,
                                    call=_call(ws, args.typed))  # fmt: skip
    return handle.artifact.ref


@_with_workspace
def _remove_adapter(args, ws) -> Any:
    return _serving().remove_adapter(args.name, args.adapter, call=_call(ws, args.typed)).artifact.ref


@_with_workspace
def _traces(args, ws) -> Any:
    from ..tracing import list_traces

    return list_traces(prompt=args.prompt, since=args.since, limit=args.limit, workspace=ws)


@_with_workspace
def _trace(args, ws) -> Any:
    from ..tracing import get_trace

    return get_trace(args.trace_id, workspace=ws)


def add_commands(sub: argparse._SubParsersAction) -> None:
    """The deployment and trace commands, on the ``llmops`` parser."""
    s = sub.add_parser("deployments", help="every recorded deployment with whether it is alive now")
    s.set_defaults(fn=_deployments)
    for name, fn, text in (
        ("stop", _stop, "stop a deployment's server and forget its record"),
        ("promote", _promote, "make the canary the only version (it and the deployment get production)"),
        ("rollback", _rollback, "drop the canary: the primary serves all traffic again"),
    ):
        s = sub.add_parser(name, help=text)
        s.add_argument("name", help="deployment name")
        if name == "promote":
            s.add_argument("--override-policy", metavar="REASON", help=PolicyError.OVERRIDE_HELP)
        s.set_defaults(fn=fn)
    s = sub.add_parser("add-adapter", help="serve another adapter of the same base by name, without a restart")
    s.add_argument("name", help="deployment name")
    s.add_argument("ref", help="adapter reference (adapter://sql-lora/2, sql-lora@production)")
    s.add_argument("--as", dest="as_name", help="the name clients ask for (default: the adapter's name)")
    s.add_argument("--override-policy", metavar="REASON", help=PolicyError.OVERRIDE_HELP)
    s.set_defaults(fn=_add_adapter)
    s = sub.add_parser("remove-adapter", help="stop serving an adapter loaded by name (its requests finish first)")
    s.add_argument("name", help="deployment name")
    s.add_argument("adapter", help="the name the adapter is served under")
    s.set_defaults(fn=_remove_adapter)
    s = sub.add_parser("traces", help="the latest traces, newest first")
    s.add_argument("--prompt", help="only calls whose input came from this prompt (name, version or alias)")
    s.add_argument("--since", help="only traces since then (2h, an ISO time)")
    s.add_argument("--limit", type=int, default=20)
    s.set_defaults(fn=_traces)
    s = sub.add_parser("trace", help="one trace as a tree with its timeline, tokens and latency")
    s.add_argument("trace_id", nargs="?", default="last", help="'last' or a trace id (a unique prefix is enough)")
    s.set_defaults(fn=_trace)
