"""The resolved arguments of one eval: validated up front, stored as the eval artifact's spec."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import ValidationError

__all__ = ["EvalOptions", "DEFAULT_METRICS"]

DEFAULT_METRICS = ("exact_match", "contains", "rouge_l", "latency", "tokens")


def _positive_int(name: str, value: Any, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValidationError(f"{name} must be a positive integer, found {value!r}")
    return value


@dataclass(frozen=True)
class EvalOptions:
    targets: tuple[str, ...]
    data: str
    split: str | None = None
    metrics: tuple[str, ...] = DEFAULT_METRICS
    model: str | None = None
    prompt: str | None = None
    limit: int | None = None
    max_new_tokens: int = 32
    temperature: float = 0.0
    seed: int | None = None
    batch_size: int = 16
    stop: tuple[str, ...] = ()
    target_column: str | None = None
    judge_model: str | None = None
    judge_prompt: str | None = None
    judge_k: int = 3
    judge_temperature: float = 0.7
    judge_max_new_tokens: int = 8
    endpoint_model: str | None = None
    api_key: str | None = field(default=None, repr=False)
    name: str | None = None
    cache: bool = True
    fail_on_regression: bool = False
    n_resamples: int = 2000
    alpha: float = 0.05
    min_delta: float | None = None

    def __post_init__(self) -> None:
        _positive_int("limit", self.limit, allow_none=True)
        _positive_int("max_new_tokens", self.max_new_tokens)
        _positive_int("batch_size", self.batch_size)
        _positive_int("judge_k", self.judge_k)
        _positive_int("judge_max_new_tokens", self.judge_max_new_tokens)
        _positive_int("n_resamples", self.n_resamples)
        for name in ("temperature", "judge_temperature"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValidationError(f"{name} must be a number >= 0, found {value!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ValidationError(f"seed must be an integer, found {self.seed!r}")
        if self.min_delta is not None and (
            isinstance(self.min_delta, bool) or not isinstance(self.min_delta, (int, float)) or not self.min_delta >= 0
        ):
            raise ValidationError(f"min_delta must be a number >= 0, found {self.min_delta!r}")
        if not 0 < self.alpha < 1:
            raise ValidationError(f"alpha must be between 0 and 1, found {self.alpha!r}")
        if not isinstance(self.data, str) or not self.data.strip():
            raise ValidationError("data must name a dataset (data=/--data), found nothing")

    def to_spec(self) -> dict[str, Any]:
        """JSON-ready; the API key is never stored, only whether one was used."""
        spec = asdict(self)
        spec["targets"] = list(self.targets)
        spec["metrics"] = list(self.metrics)
        spec["stop"] = list(self.stop)
        spec["api_key"] = "***" if self.api_key else None
        return spec


def as_tuple(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)
