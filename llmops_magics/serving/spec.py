"""What a deployment is: the resolved arguments of ``%deploy``, validated before anything is written.

A ``DeploymentSpec`` holds exact references (``adapter://qa-lora/2``, never
``@production``), so the stored ``deployment`` artifact says precisely what was
served, and replaying it serves the same weights and prompt. Secrets never enter
it: an API key travels to the server process as a SHA-256 digest in a private
runtime file, and the spec only says that a key is required.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..errors import ValidationError
from ..store.refs import validate_name

__all__ = ["ENGINES", "Canary", "DeploymentSpec", "parse_canary", "hash_api_key", "redact_magic_line"]

ENGINES = ("builtin", "ray", "vllm")
_WEIGHT = re.compile(r"^(?P<num>\d+(?:\.\d+)?)(?P<pct>%?)$")
LOOPBACK = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class Canary:
    """A second version that receives ``weight`` percent of the traffic (sticky per user id)."""

    target: str
    weight: float

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "weight": self.weight}

    def __str__(self) -> str:
        return f"{self.target}:{self.weight:g}%"


def parse_canary(text: object) -> tuple[str, float]:
    """``"adapter://qa-lora/2:10%"`` → ``("adapter://qa-lora/2", 10.0)``; the weight is a percentage."""
    if not isinstance(text, str) or ":" not in text:
        raise ValidationError(f"canary must be written REF:PERCENT% (e.g. adapter://qa-lora/2:10%), found {text!r}")
    ref, _, weight = text.strip().rpartition(":")
    m = _WEIGHT.match(weight.strip())
    if not m or not ref or ref.endswith(":/") or weight.startswith("//"):
        raise ValidationError(f"canary must be written REF:PERCENT% (e.g. adapter://qa-lora/2:10%), found {text!r}")
    value = float(m["num"])
    if not 0 < value < 100:
        raise ValidationError(f"canary share must be between 0% and 100% (exclusive), found {weight!r}")
    return ref, value


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def redact_magic_line(line: str) -> str:
    """The magic line as stored in the spec, with any ``--api-key`` value replaced by ``***``."""
    return re.sub(r"(--api-key(?:=|\s+))(\"[^\"]*\"|'[^']*'|\S+)", r"\1***", line)


@dataclass(frozen=True)
class DeploymentSpec:
    """The resolved, validated arguments of one deployment version."""

    name: str
    target: str
    prompt: str | None = None
    engine: str = "builtin"
    host: str = "127.0.0.1"
    port: int = 0
    auth: bool = False
    canary: Canary | None = None
    max_batch_size: int = 16
    max_wait_ms: float = 10.0
    default_max_tokens: int = 64
    log_text: bool = False
    reference_data: str | None = None
    threads: int | None = None
    metrics_interval: float = 30.0
    ray_address: str | None = None
    replicas: int = 1
    magic: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        validate_name(self.name, "deployment name")
        if self.engine not in ENGINES:
            raise ValidationError(f"engine must be one of {', '.join(ENGINES)}, found {self.engine!r}")
        if not isinstance(self.host, str) or not self.host.strip() or any(c.isspace() for c in self.host):
            raise ValidationError(f"host must be an interface address such as 127.0.0.1, found {self.host!r}")
        _check_int("port", self.port, 0, 65535)
        _check_int("max_batch_size", self.max_batch_size, 1, 256)
        _check_int("default_max_tokens", self.default_max_tokens, 1, 4096)
        _check_int("replicas", self.replicas, 1, 64)
        if self.threads is not None:
            _check_int("threads", self.threads, 1, 256)
        _check_number("max_wait_ms", self.max_wait_ms, 0, 10_000)
        _check_number("metrics_interval", self.metrics_interval, 0.2, 86_400)
        if self.canary is not None and not 0 < self.canary.weight < 100:
            raise ValidationError(f"canary share must be between 0% and 100% (exclusive), found {self.canary.weight}")
        if self.engine == "vllm" and self.canary is not None:
            raise ValidationError("the vllm engine serves one version; run the canary on the builtin or ray engine")

    @property
    def public(self) -> bool:
        return self.host not in LOOPBACK

    def with_changes(self, **changes: Any) -> DeploymentSpec:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["canary"] = self.canary.to_dict() if self.canary else None
        return out

    def content(self) -> dict[str, Any]:
        """What identifies a deployment version: everything but how it was typed."""
        out = self.to_dict()
        out.pop("magic")
        return out

    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.content(), sort_keys=True).encode()).hexdigest()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DeploymentSpec:
        known = set(cls.__dataclass_fields__)
        values = {k: v for k, v in data.items() if k in known}
        if values.get("canary"):
            values["canary"] = Canary(values["canary"]["target"], float(values["canary"]["weight"]))
        return cls(**values)


def _check_int(what: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{what} must be an integer from {low} to {high}, found {value!r}")


def _check_number(what: str, value: object, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ValidationError(f"{what} must be a number from {low:g} to {high:g}, found {value!r}")
