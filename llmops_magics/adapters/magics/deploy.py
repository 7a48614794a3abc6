"""``%deploy REF …`` and ``%deploy list|status|logs|stop|promote|rollback|monitor|drift``."""

from __future__ import annotations

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from .base import call, parse, parse_spec, route, spec_arguments, split, usage_errors

__all__ = ["DeployMagics"]

SUBCOMMANDS = ("list", "status", "logs", "stop", "promote", "rollback", "monitor", "drift")


@magic_arguments()
@argument("name", help="Deployment name.")
def _name(line):
    """%deploy status|stop|promote|rollback|monitor|drift NAME"""


@magic_arguments()
@argument("name", help="Deployment name.")
@argument("--lines", "-n", type=int, default=50, help="How many lines from the end of the server log.")
def _logs(line):
    """%deploy logs NAME [-n 50]"""


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
        %deploy list | status NAME | logs NAME [-n 50] | stop NAME | promote NAME | rollback NAME
                | monitor NAME | drift NAME

        Returns a handle with the URL (``handle.client()`` is an ``openai.OpenAI`` client).
        """
        words = split(line)
        if words and words[0] in SUBCOMMANDS:
            return route(line, {cmd: getattr(self, f"_{cmd}") for cmd in SUBCOMMANDS}, "deploy")
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
        return _serving().promote_deployment(parse(_name, rest).name, call=call(f"%deploy promote {rest}"))

    def _rollback(self, rest):
        return _serving().rollback_deployment(parse(_name, rest).name, call=call(f"%deploy rollback {rest}"))

    def _monitor(self, rest):
        from ..widgets.deploy_monitor import DeploymentMonitor

        return DeploymentMonitor(parse(_name, rest).name)

    def _drift(self, rest):
        return _serving().deployment_drift(parse(_name, rest).name)
