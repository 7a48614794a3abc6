"""``%%prompt`` and ``%prompt list|show|diff|tag|render|history``."""

from __future__ import annotations

from IPython.core.magic import Magics, line_cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ...errors import PolicyError
from .base import call, parse, parse_pairs, parse_spec, route, spec_arguments, split, usage_errors

__all__ = ["PromptMagics"]


@magic_arguments()
@argument("search", nargs="?", help="Show only names containing this text.")
def _list(line):
    """%prompt list [SEARCH]"""


@magic_arguments()
@argument("ref", help="Prompt reference: name, name/3, name@alias or prompt://name/3.")
def _show(line):
    """%prompt show REF"""


@magic_arguments()
@argument("ref_a")
@argument("ref_b")
def _diff(line):
    """%prompt diff REF_A REF_B"""


@magic_arguments()
@argument("ref")
@argument("alias", help="Alias to point at REF (moved if it exists), e.g. production.")
@argument("--override-policy", metavar="REASON", help=PolicyError.OVERRIDE_HELP)
def _tag(line):
    """%prompt tag REF ALIAS [--override-policy REASON]"""


@magic_arguments()
@argument("ref")
@argument("values", nargs="*", help="Template variables as key=value.")
def _render(line):
    """%prompt render REF key=value ..."""


@magic_arguments()
@argument("name")
def _history(line):
    """%prompt history NAME"""


@magics_class
class PromptMagics(Magics):
    @spec_arguments("llmops_magics.ops.prompts:PromptSpec")
    @line_cell_magic
    @usage_errors
    def prompt(self, line, cell=None):
        """Version a Jinja2 prompt template (cell), or manage prompts (line).

        Cell:  %%prompt NAME [--alias A ...] [--param key=value ...] [--description TEXT]
        Line:  %prompt list [SEARCH] | show REF | diff REF_A REF_B | tag REF ALIAS
               | render REF key=value ... | history NAME

        A new version is saved only when the template or params changed. A cell whose
        first line is ``system:``, ``user:`` or ``assistant:`` is a chat prompt.

        IPython expands ``{expr}`` and ``$name`` in the line first: ``render qa q='{{ x }}'``
        passes ``{ x }``; write ``{{{{ x }}}}`` or use ``llmops_magics.render_prompt``.
        """
        if cell is not None:
            from ...ops.prompts import PROMPT

            spec, _ = parse_spec(self.prompt, split(line), template=cell)
            return PROMPT.run(spec, call(f"%%prompt {line}"))
        commands = ("list", "show", "diff", "tag", "render", "history")
        return route(line, {c: getattr(self, f"_{c}") for c in commands}, "prompt")

    def _list(self, rest):
        return _prompts().list_prompts(parse(_list, rest).search)

    def _show(self, rest):
        return _prompts().get_prompt(parse(_show, rest).ref)

    def _diff(self, rest):
        args = parse(_diff, rest)
        return _prompts().diff_prompts(args.ref_a, args.ref_b)

    def _tag(self, rest):
        args = parse(_tag, rest)
        return _prompts().tag_prompt(args.ref, args.alias, override_policy=args.override_policy)

    def _render(self, rest):
        args = parse(_render, rest)
        return _prompts().render_prompt(args.ref, parse_pairs(args.values, "render variable"))

    def _history(self, rest):
        return _prompts().prompt_history(parse(_history, rest).name)


def _prompts():
    from ... import prompts

    return prompts
