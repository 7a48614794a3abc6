"""``%deploy REF …`` and ``%deploy list|status|logs|stop|promote|rollback|monitor|drift``."""

from __future__ import annotations

from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from .base import route, usage_errors

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
    @magic_arguments()
    @argument(
        "target",
        help="Model or adapter to serve (adapter://qa-lora/2, qa-lora@production, …); "
        "with --canary, the name of a running deployment.",
    )
    @argument("--prompt", "-p", default=None, help="Prompt version applied on the server (prompt://qa/3).")
    @argument("--name", default=None, help="Deployment name (default: the model's name).")
    @argument("--port", type=int, default=0, help="Port (default 0: any free one).")
    @argument("--host", default="127.0.0.1", help="Interface to bind (default 127.0.0.1: this machine only).")
    @argument("--api-key", default=None, help="Require Authorization: Bearer KEY on /v1 routes.")
    @argument("--canary", default=None, help="REF:PERCENT% sends that share of traffic to REF (sticky per user).")
    @argument("--engine", default="builtin", choices=("builtin", "ray", "vllm"), help="Serving engine.")
    @argument("--max-batch-size", type=int, default=16, help="Requests per forward batch (1: unbatched).")
    @argument("--max-wait-ms", type=float, default=10.0, help="How long a request waits for batch mates.")
    @argument("--max-tokens", type=int, default=64, help="Default completion length for chat requests.")
    @argument("--log-text", action="store_true", help="Store prompt and completion texts in the request log.")
    @argument("--reference-data", default=None, help="Data set drift is measured against (default: the training data).")
    @argument("--threads", type=int, default=None, help="torch threads in the server (default: half the cores).")
    @argument("--metrics-interval", type=float, default=30.0, help="Seconds between W&B monitoring logs.")
    @argument("--ray-address", default=None, help="Ray cluster address for --engine ray (default: a local Ray).")
    @argument("--replicas", type=int, default=1, help="Replicas (Ray) or data-parallel ranks (vLLM).")
    @argument("--export", default=None, help="With --engine vllm: write a folder with serve.sh instead of starting.")
    @argument("--merge", action="store_true", help="With --export: merge the adapter into the weights.")
    @argument("--timeout", type=float, default=180.0, help="Seconds to wait for the server to answer /health.")
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
        head = line.strip().split(" ", 1)[0]
        if head in SUBCOMMANDS:
            return route(line, {cmd: getattr(self, f"_{cmd}") for cmd in SUBCOMMANDS}, "deploy")
        a = parse_argstring(self.deploy, line)
        serving = _serving()
        from ...serving.spec import redact_magic_line

        return serving.deploy(
            a.target,
            prompt=a.prompt,
            name=a.name,
            port=a.port,
            host=a.host,
            api_key=a.api_key,
            canary=a.canary,
            engine=a.engine,
            max_batch_size=a.max_batch_size,
            max_wait_ms=a.max_wait_ms,
            default_max_tokens=a.max_tokens,
            log_text=a.log_text,
            reference_data=a.reference_data,
            threads=a.threads,
            metrics_interval=a.metrics_interval,
            ray_address=a.ray_address,
            replicas=a.replicas,
            export=a.export,
            merge=a.merge,
            timeout=a.timeout,
            magic=f"%deploy {redact_magic_line(line.strip())}",
        )

    def _list(self, rest):
        return _serving().list_deployments()

    def _status(self, rest):
        return _serving().deployment_status(parse_argstring(_name, rest).name)

    def _logs(self, rest):
        args = parse_argstring(_logs, rest)
        return _serving().deployment_logs(args.name, lines=args.lines)

    def _stop(self, rest):
        return _serving().stop_deployment(parse_argstring(_name, rest).name)

    def _promote(self, rest):
        return _serving().promote_deployment(parse_argstring(_name, rest).name, magic=f"%deploy promote {rest}")

    def _rollback(self, rest):
        return _serving().rollback_deployment(parse_argstring(_name, rest).name, magic=f"%deploy rollback {rest}")

    def _monitor(self, rest):
        from ..widgets.deploy_monitor import DeploymentMonitor

        return DeploymentMonitor(parse_argstring(_name, rest).name)

    def _drift(self, rest):
        return _serving().deployment_drift(parse_argstring(_name, rest).name)
