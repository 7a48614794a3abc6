"""``%model SOURCE`` (register a base model) and ``%model list|show|tag|remove-alias``."""

from __future__ import annotations

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ...errors import PolicyError, ValidationError
from .base import call, parse_spec, spec_arguments, split, usage_errors

__all__ = ["ModelMagics"]


@magic_arguments()
@argument("ref", help="Model reference: name, name/2, name@alias or model://name/2.")
@argument("alias", nargs="?", help="For tag / remove-alias: the alias.")
@argument("--override-policy", metavar="REASON", help=PolicyError.OVERRIDE_HELP)
def _ref(line):
    """%model show REF | tag REF ALIAS [--override-policy REASON] | remove-alias NAME ALIAS"""


@spec_arguments("llmops_magics.ops.compare:CompareSpec")
def _compare(line):
    """%model compare CANDIDATE CANDIDATE... --data REF [--prompt REF] [--metrics M,...] [--select [ALIAS]]"""


@magics_class
class ModelMagics(Magics):
    @spec_arguments("llmops_magics.ops.models:ModelSpec")
    @line_magic
    @usage_errors
    def model(self, line):
        """Register a base model (a local Hugging Face folder, 'tiny', or an endpoint), or look at models.

        %model SOURCE [--name NAME] [--alias A] [--description TEXT] [--served-model ID --key-env VAR]
        %model list [SEARCH] | show REF | tag REF ALIAS | remove-alias NAME ALIAS
        %model compare A B... --data REF [--prompt REF] [--metrics M,...] [--select [ALIAS]]
        """
        words = split(line)
        if words[:1] == ["compare"]:
            from ...ops.compare import COMPARE

            return COMPARE.run(parse_spec(_compare, words[1:])[0], call(f"%model {line}"))
        if words[:1] and words[0] in ("list", "show", "tag", "remove-alias"):
            return _models_action(words[0], words[1:])
        from ...ops.models import MODEL

        spec, _ = parse_spec(self.model, words)
        return MODEL.run(spec, call(f"%model {line}"))


def _models_action(command: str, words: list[str]):
    from ...context import registry
    from ...models.views import ModelCard

    reg = registry()
    if command == "list":
        return reg.list("model", words[0] if words else None)
    args = _ref.parser.parse_args(words)
    if command == "show":
        return ModelCard(reg.resolve(args.ref, "model"))
    if not args.alias:
        raise ValidationError(f"%model {command} needs REF and ALIAS")
    if command == "tag":
        return ModelCard(reg.set_alias(args.ref, args.alias, "model", override_policy=args.override_policy))
    art = reg.resolve(args.ref, "model")
    reg.remove_alias("model", art.name, args.alias)
    return ModelCard(reg.resolve(art.ref))
