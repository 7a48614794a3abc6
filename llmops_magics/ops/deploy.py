"""Serving: ``%deploy REF``, ``deploy(target)``, ``llmops deploy REF``: an OpenAI-compatible server process.

The stored spec is also the deployment's content and the server's configuration: every
reference pinned (``adapter://qa-lora/2``, never ``@production``), the name filled in, a
canary as ``REF:PERCENT%``. An API key never enters it: ``api_key`` is stored as ``***``
(meaning "a key is required") and reaches the server process only as a SHA-256 digest.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from .audit import override_option
from .catalog import Operation
from .spec import Spec, option

if TYPE_CHECKING:
    from ..context.workspaces import Workspace

__all__ = ["DeploySpec", "Canary", "deploy", "DEPLOY", "ENGINES", "parse_canary", "split_adapter"]

ENGINES = ("builtin", "ray", "vllm")
BATCHING = ("continuous", "static")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
_WEIGHT = re.compile(r"^(?P<num>\d+(?:\.\d+)?)(?P<pct>%?)$")


@dataclass(frozen=True)
class Canary:
    """A second version that receives ``weight`` percent of the traffic (sticky per user id)."""

    target: str
    weight: float

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "weight": self.weight}

    def __str__(self) -> str:
        return f"{self.target}:{self.weight:g}%"


def parse_canary(text: object) -> Canary:
    """``"adapter://qa-lora/2:10%"`` → ``Canary("adapter://qa-lora/2", 10.0)``; the weight is a percentage."""
    if isinstance(text, Canary):
        return text
    if not isinstance(text, str) or ":" not in text:
        raise ValidationError(f"canary must be written REF:PERCENT% (e.g. adapter://qa-lora/2:10%), found {text!r}")
    ref, _, weight = text.strip().rpartition(":")
    m = _WEIGHT.match(weight.strip())
    if not m or not ref or ref.endswith(":/") or weight.startswith("//"):
        raise ValidationError(f"canary must be written REF:PERCENT% (e.g. adapter://qa-lora/2:10%), found {text!r}")
    value = float(m["num"])
    if not 0 < value < 100:
        raise ValidationError(f"canary share must be between 0% and 100% (exclusive), found {weight!r}")
    return Canary(ref, value)


def _canary(value: Any) -> str:
    return str(parse_canary(value))


def split_adapter(entry: str) -> tuple[str | None, str]:
    """``"sql=adapter://sql-lora/2"`` → ``("sql", "adapter://sql-lora/2")``; a bare reference has no name yet."""
    name, sep, ref = entry.partition("=")
    return (name.strip(), ref.strip()) if sep else (None, entry.strip())


def _adapters(value: tuple[str, ...]) -> tuple[str, ...]:
    names = []
    for entry in value:
        name, ref = split_adapter(entry)
        if not ref or name == "":
            raise ValidationError(
                f"an adapter is written NAME=REF or REF (e.g. sql=adapter://sql-lora/2), found {entry!r}"
            )
        names.append(name or ref)
    if len(set(names)) < len(names):
        raise ValidationError(f"adapter names must differ, found {', '.join(names)}")
    return tuple(value)


def _within(name: str, low: float, high: float, integer: bool = True):
    def check(value: float) -> float:
        if not low <= value <= high:
            kind = "an integer" if integer else "a number"
            raise ValidationError(f"{name} must be {kind} from {low:g} to {high:g}, found {value!r}")
        return value

    return check


def _host(value: str) -> str:
    if not value.strip() or any(c.isspace() for c in value):
        raise ValidationError(f"host must be an interface address such as 127.0.0.1, found {value!r}")
    return value


def _name(value: str) -> str:
    from ..store.refs import validate_name

    return validate_name(value, "deployment name")


def _key(value: str) -> str:
    if not value.strip() or " " in value:
        raise ValidationError("api_key must be a non-empty string without spaces")
    return value


@dataclass(frozen=True, kw_only=True)
class DeploySpec(Spec):
    """What is served (a model or adapter, a prompt, a canary), by which engine, on which port."""

    op = "deploy"

    target: str = option(
        positional=True,
        help="Model or adapter to serve (adapter://qa-lora/2, qa-lora@production, a local model folder); "
        "with --canary, the name of a running deployment.",
    )
    prompt: str | None = option(None, short="-p", help="Prompt version applied on the server (prompt://qa/3).")
    name: str | None = option(None, check=_name, help="Deployment name (default: the model's name).")
    port: int = option(0, check=_within("port", 0, 65535), help="Port (default 0: any free one).")
    host: str = option("127.0.0.1", check=_host, help="Interface to bind (127.0.0.1: this machine only).")
    api_key: str | None = option(None, secret=True, check=_key, help="Require Authorization: Bearer KEY on /v1 routes.")
    canary: str | None = option(
        None, check=_canary, help="REF:PERCENT% sends that share of traffic to REF (sticky per user)."
    )
    adapters: tuple[str, ...] = option(
        (),
        flag="--adapter",
        check=_adapters,
        help="Also serve this adapter of the same base, by name, in the same process: NAME=REF (repeatable).",
    )
    engine: str = option("builtin", choices=ENGINES, help="Serving engine.")
    max_batch_size: int = option(
        16, check=_within("max_batch_size", 1, 256), help="Requests per forward batch (1: unbatched)."
    )
    batching: str = option(
        "continuous",
        choices=BATCHING,
        help="continuous: requests join and leave the running batch at every token (each with its own KV cache); "
        "static: a group of requests runs to its longest answer.",
    )
    max_wait_ms: float = option(
        10.0,
        check=_within("max_wait_ms", 0, 10_000, False),
        help="With --batching static: how long a request waits for batch mates.",
    )
    default_max_tokens: int = option(
        64,
        flag="--max-tokens",
        check=_within("default_max_tokens", 1, 4096),
        help="Completion length when a request gives none.",
    )
    request_log: bool = option(
        True,
        flag="--no-request-log",
        help="Write no request log: no rows, so no monitor, A/B analysis, feedback or dataset from traffic.",
    )
    log_text: bool = option(False, help="Store prompt and completion texts in the request log.")
    redact_log: bool = option(
        True,
        flag="--no-redact-log",
        help="With --log-text: store the texts as they came, without replacing personal data (Presidio) first.",
    )
    reference_data: str | None = option(None, help="Data set drift is measured against (default: the training data).")
    threads: int | None = option(
        None, check=_within("threads", 1, 256), help="torch threads in the server (default: half the cores)."
    )
    metrics_interval: float = option(
        30.0, check=_within("metrics_interval", 0.2, 86_400, False), help="Seconds between W&B monitoring logs."
    )
    ray_address: str | None = option(None, help="Ray cluster address for --engine ray (default: a local Ray).")
    replicas: int = option(1, check=_within("replicas", 1, 64), help="Replicas (Ray) or data-parallel ranks (vLLM).")
    export: str | None = option(
        None, stored=False, help="With --engine vllm: write a folder with serve.sh instead of starting."
    )
    merge: bool = option(False, stored=False, help="With --export: merge the adapter into the weights.")
    timeout: float = option(180.0, stored=False, help="Seconds to wait for the server to answer /health.")
    override_policy: str | None = override_option()

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.engine == "vllm" and self.adapters:
            raise ValidationError(
                "adapters by name are served by the builtin engine; the vllm export serves one version"
            )
        if self.log_text and not self.request_log:
            raise ValidationError("log_text needs the request log: --log-text and --no-request-log exclude each other")
        if self.engine == "vllm" and self.canary is not None:
            raise ValidationError("the vllm engine serves one version; run the canary on the builtin or ray engine")

    @property
    def canary_arm(self) -> Canary | None:
        return parse_canary(self.canary) if self.canary else None

    @property
    def auth(self) -> bool:
        """Whether the server requires a key (true also for a stored spec, whose key reads ``***``)."""
        return self.api_key is not None

    @property
    def public(self) -> bool:
        return self.host not in LOOPBACK

    def digest(self) -> str:
        """What identifies a deployment version: the stored values (never how they were typed)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()


def deploy(
    target: str,
    *,
    prompt: str | None = None,
    name: str | None = None,
    port: int = 0,
    host: str = "127.0.0.1",
    api_key: str | None = None,
    canary: str | None = None,
    adapters: tuple[str, ...] = (),
    engine: str = "builtin",
    max_batch_size: int = 16,
    batching: str = "continuous",
    max_wait_ms: float = 10.0,
    default_max_tokens: int = 64,
    request_log: bool = True,
    log_text: bool = False,
    redact_log: bool = True,
    reference_data: str | None = None,
    threads: int | None = None,
    metrics_interval: float = 30.0,
    ray_address: str | None = None,
    replicas: int = 1,
    export: str | None = None,
    merge: bool = False,
    timeout: float = 180.0,
    override_policy: str | None = None,
    workspace: Workspace | None = None,
):
    """Serve a model or adapter over an OpenAI-compatible HTTP API in a separate process.

    Returns a ``Deployment`` handle (``.url``, ``.client()``, ``.status()``, ``.stop()``).
    With ``canary="REF:10%"`` and ``target`` naming a running deployment, that deployment
    gets a canary arm instead (see ``set_canary``). With ``engine="vllm", export=DIR``
    nothing starts: a ``VllmExport`` folder is written. With ``log_text=True`` the logged
    texts have their personal data replaced (``<EMAIL_ADDRESS>``) unless ``redact_log=False``;
    ``request_log=False`` logs no request at all (what reads the log then refuses, saying why).
    What is served must meet ``[tool.llmops.policy.deploy]`` (``PolicyError`` names what it
    lacks) unless ``override_policy`` gives a reason, recorded in the audit trail.
    """
    return DEPLOY.call(locals())


DEPLOY = Operation(
    "deploy",
    DeploySpec,
    "llmops_magics.serving.control:run",
    "deploy",
    "serve a model or adapter over an OpenAI-compatible API in its own process; prints its URL",
)
