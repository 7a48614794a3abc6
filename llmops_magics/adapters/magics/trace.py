"""``%trace on|off|show|list``: the notebook's view of ``llmops_magics.tracing``."""

from __future__ import annotations

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from .base import parse, route, usage_errors

__all__ = ["TraceMagics"]


@magic_arguments()
@argument("--content", action="store_true", help="Also record prompts and answers until %%trace off.")
def _on(line):
    """%trace on [--content]"""


@magic_arguments()
def _off(line):
    """%trace off"""


@magic_arguments()
@argument("id", nargs="?", default="last", help="'last' (the default) or a trace id; a unique prefix is enough.")
@argument("--max-spans", type=int, default=200, help="Show at most this many spans of the tree.")
@argument("--max-chars", type=int, default=2000, help="Cut each captured input or output to this many characters.")
def _show(line):
    """%trace show [last | ID] [--max-spans N] [--max-chars N]"""


@magic_arguments()
@argument("--prompt", help="Only traces made with this prompt: qa (any version), qa/3, qa@production.")
@argument("--since", help="Only traces started since: 30m, 1h, 2d, or a date/time such as 2026-12-01T10:00.")
@argument("--artifact", help="Only traces of this artifact: an eval or a deployment reference.")
@argument("--limit", type=int, default=20, help="How many traces, newest first (default 20).")
def _list(line):
    """%trace list [--prompt REF] [--since 1h] [--artifact REF] [--limit N]"""


@magics_class
class TraceMagics(Magics):
    @line_magic
    @usage_errors
    def trace(self, line):
        """Traces of model calls, stored in the workspace (traces.db next to the registry).

        %trace on [--content]   trace calls of the official openai client (--content: with prompts and answers)
        %trace off              put the openai client back exactly as it was
        %trace show [last | ID] [--max-spans N] [--max-chars N]    one trace: a tree with a timeline
        %trace list [--prompt REF] [--since 1h] [--artifact REF] [--limit N]

        The project's own model calls (generation, evals, judges, endpoints) are always traced.
        """
        return route(line, {"on": self._on, "off": self._off, "show": self._show, "list": self._list}, "trace")

    def _on(self, rest):
        from ...tracing import instrument_openai

        return instrument_openai(capture_content=True if parse(_on, rest).content else None)

    def _off(self, rest):
        from ...tracing import uninstrument_openai

        parse(_off, rest)
        return uninstrument_openai()

    def _show(self, rest):
        from ...tracing import get_trace

        args = parse(_show, rest)
        return get_trace(args.id, max_spans=args.max_spans, max_chars=args.max_chars)

    def _list(self, rest):
        from ...tracing import list_traces

        args = parse(_list, rest)
        return list_traces(prompt=args.prompt, since=args.since, artifact=args.artifact, limit=args.limit)
