"""``%deploy REF …`` and ``%deploy list|status|logs|stop|promote|rollback|monitor|drift|ab``."""

from __future__ import annotations

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ...errors import PolicyError
from .base import call, parse, parse_spec, route, spec_arguments, split, usage_errors

__all__ = ["DeployMagics"]

SUBCOMMANDS = (
    "list", "status", "logs", "stop", "promote", "rollback", "monitor", "drift", "ab", "add-adapter", "remove-adapter"
)  # fmt: skip


@magic_arguments()
@argument("name", help="Deployment name.")
def _name(line):
    """%deploy status|stop|promote|rollback|monitor|drift NAME"""


@magic_arguments()
@argument("name", help="Deployment name.")
@argument("--override-policy", metavar="REASON", help=PolicyError.OVERRIDE_HELP)
def _promote(line):
    """%deploy promote NAME [--override-policy REASON]"""


@magic_arguments()
@argument("name", help="Deployment name.")
@argument("--lines", "-n", type=int, default=50, help="How many lines from the end of the server log.")
def _logs(line):
    """%deploy logs NAME [-n 50]"""


@magic_arguments()
@argument("name", help="Deployment name.")
@argument("ref", help="Adapter to serve (adapter://sql-lora/2, sql-lora@production).")
@argument("--as", dest="as_name", default=None, help="Name clients ask for (default: the adapter's name).")
@argument("--override-policy", metavar="REASON", help=PolicyError.OVERRIDE_HELP)
def _add_adapter(line):
    """%deploy add-adapter NAME REF [--as LORA_NAME] [--override-policy REASON]"""


@magic_arguments()
@argument("name", help="Deployment name.")
@argument("adapter", help="The name the adapter is served under.")
def _remove_adapter(line):
    """%deploy remove-adapter NAME LORA_NAME"""


@spec_arguments("llmops_magics.ops.ab:AbSpec")
def _ab(line):
    """%deploy ab NAME [--metrics latency,error_rate,...] [--window 2h] [--max-users N] [--margin latency=0.2]"""


def _serving():
    from ... import serving

    return serving


@magics_class
class DeployMagics(Magics):
    @spec_arguments("llmops_magics.ops.deploy:DeploySpec")
    @line_magic
    @usage_errors
    def deploy(self, line):
        """Serve a model or adapter over an OpenAI-compatible API, or manage deployments.

        %deploy REF [--prompt P] [--name N] [--port P] [--api-key K] [--engine builtin|ray|vllm] …
        %deploy NAME --canary REF:10%
        %deploy add-adapter NAME REF [--as LORA_NAME] | remove-adapter NAME LORA_NAME
        %deploy list | status NAME | logs NAME [-n 50] | stop NAME | promote NAME [--override-policy REASON]
                | rollback NAME
                | monitor NAME | drift NAME | ab NAME [--metrics M,...] [--window 2h] [--max-users N]

        Returns a handle with the URL (``handle.client()`` is an ``openai.OpenAI`` client).
        """
        words = split(line)
        if words and words[0] in SUBCOMMANDS:
            return route(line, {cmd: getattr(self, "_" + cmd.replace("-", "_")) for cmd in SUBCOMMANDS}, "deploy")
        from ...ops.deploy import DEPLOY

        spec, _ = parse_spec(self.deploy, words)
        return DEPLOY.run(spec, call(f"%deploy {line}"))

    def _list(self, rest):
        return _serving().list_deployments()

    def _status(self, rest):
        return _serving().deployment_status(parse(_name, rest).name)

    def _logs(self, rest):
        args = parse(_logs, rest)
        return _serving().deployment_logs(args.name, lines=args.lines)

    def _stop(self, rest):
        return _serving().stop_deployment(parse(_name, rest).name)

    def _promote(self, rest):
        args = parse(_promote, rest)
        return _serving().promote_deployment(
            args.name, override_policy=args.override_policy, call=call(f"%deploy promote {rest}")
        )

    def _rollback(self, rest):
        return _serving().rollback_deployment(parse(_name, rest).name, call=call(f"%deploy rollback {rest}"))

    def _monitor(self, rest):
        from ..widgets.deploy_monitor import DeploymentMonitor

        return DeploymentMonitor(parse(_name, rest).name)

    def _drift(self, rest):
        return _serving().deployment_drift(parse(_name, rest).name)

    def _ab(self, rest):
        from ...ops.ab import AB

        return AB.run(parse_spec(_ab, split(rest))[0], call(f"%deploy ab {rest}"))

    def _add_adapter(self, rest):
        args = parse(_add_adapter, rest)
        return _serving().add_adapter(
            args.name,
            args.ref,
            as_name=args.as_name,
            override_policy=args.override_policy,
            call=call(f"%deploy add-adapter {rest}"),
        )

    def _remove_adapter(self, rest):
        args = parse(_remove_adapter, rest)
        return _serving().remove_adapter(args.name, args.adapter, call=call(f"%deploy remove-adapter {rest}"))
