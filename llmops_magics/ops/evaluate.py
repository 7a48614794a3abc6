"""Evaluation: ``%eval TARGET --data REF``, ``evaluate(target, data=…)``, ``llmops eval TARGET --data …``.

Targets are model or adapter references, local model folders, prompt references (run by
``model``) or OpenAI-compatible endpoint URLs; the first is the baseline A of every
comparison. The stored spec pins every reference to the version used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from .catalog import Operation
from .spec import Spec, option

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from ..evaluation.jobs import EvalJob

__all__ = ["EvalSpec", "evaluate", "EVAL", "DEFAULT_METRICS"]

DEFAULT_METRICS = ("exact_match", "contains", "rouge_l", "latency", "tokens")


def _positive(name: str):
    def check(value: int) -> int:
        if value < 1:
            raise ValidationError(f"{name} must be a positive integer, found {value!r}")
        return value

    return check


def _non_negative(name: str):
    def check(value: float) -> float:
        if not value >= 0:
            raise ValidationError(f"{name} must be a number >= 0, found {value!r}")
        return value

    return check


def _at_least_two(value: int) -> int:
    if value < 2:
        raise ValidationError(f"samples must be at least 2 (answers compared for consistency), found {value!r}")
    return value


def _sampling(name: str):
    def check(value: float) -> float:
        if not value > 0:
            raise ValidationError(f"{name} must be above 0 (samples must differ to be compared), found {value!r}")
        return value

    return check


def _metrics(value: Any) -> tuple[str, ...]:
    """``"a,b"`` is split (``regex:^\\d{1,3}$`` keeps its commas, see ``split_metric_specs``); list items stay whole."""
    from ..evaluation.metrics import split_metric_specs

    if isinstance(value, str):
        return tuple(split_metric_specs(value))
    if not isinstance(value, Sequence):
        raise ValidationError(f"metrics must be names (a list or 'a,b'), found {value!r}")
    return tuple(str(m).strip() for m in value if str(m).strip())


def _unescape(value: tuple[str, ...]) -> tuple[str, ...]:
    """``\\n`` and ``\\t`` read as escapes (so a flag can give a newline); other text stays as it is."""
    return tuple(s.encode("latin-1", "backslashreplace").decode("unicode_escape") if "\\" in s else s for s in value)


def _data(value: str) -> str:
    if not value.strip():
        raise ValidationError("data must name a dataset (data=/--data), found nothing")
    return value


@dataclass(frozen=True, kw_only=True)
class EvalSpec(Spec):
    """What an eval runs (targets, data, metrics) and how it generates and compares."""

    op = "eval"

    target: tuple[str, ...] = option(
        (),
        positional=True,
        nargs="*",
        help="Model/adapter reference, local model folder, prompt reference or endpoint URL (several: compared); "
        "none with --model M1,M2 --prompt P1,P2: every model runs every prompt.",
    )
    compare: tuple[str, ...] = option(
        (), short="-c", nargs="+", help="More targets compared with the first (A) on the same data."
    )
    data: str = option(short="-d", check=_data, help="Dataset reference, e.g. qa-task or dataset://qa-task/2.")
    split: str | None = option(None, help="Split to evaluate (default: validation, then test, then all rows).")
    metrics: tuple[str, ...] = option(
        DEFAULT_METRICS,
        short="-m",
        kind="any",
        repeat=True,
        parse=",".join,
        check=_metrics,
        help="Comma-separated metrics (repeatable); regex:PATTERN keeps its commas; in a magic write {{ }} for { }.",
    )
    prompt: str | None = option(
        None, short="-p", help="Prompt reference to render every row with; several (P1,P2): each target runs each."
    )
    model: str | None = option(
        None, help="Model that runs prompt targets (reference, folder or URL); several (M1,M2) with no target: a grid."
    )
    limit: int | None = option(None, check=_positive("limit"), help="Evaluate only the first N rows.")
    max_new_tokens: int = option(32, check=_positive("max_new_tokens"), help="Tokens generated per answer.")
    temperature: float = option(0.0, check=_non_negative("temperature"), help="Sampling temperature (0: greedy).")
    seed: int | None = option(
        None, help="Sampling and bootstrap seed; with --temperature > 0 answers are cached only with one."
    )
    batch_size: int = option(
        16, check=_positive("batch_size"), help="Generation batch size (concurrent requests for endpoints)."
    )
    workers: int | None = option(
        None,
        check=_positive("workers"),
        help="Processes generating local models' answers at once (default: one per core when it pays; 1: this one).",
    )
    stop: tuple[str, ...] = option((), check=_unescape, help="Stop string, escapes allowed: --stop '\\n' (repeatable).")
    target_column: str | None = option(None, help="Column holding the reference answer (default: answer, …).")
    judge_model: str | None = option(
        None, help="Model or endpoint that judges (judge, faithfulness_judge); default: LLMOps.judge_model."
    )
    judge_prompt: str | None = option(None, help="Judge prompt reference (default prompt://judge-correctness).")
    judge_k: int = option(3, check=_positive("judge_k"), help="Judge samples per example; their variance is reported.")
    judge_temperature: float = option(0.7, check=_non_negative("judge_temperature"), help="Judge sampling temperature.")
    samples: int = option(
        5, check=_at_least_two, help="Answers sampled per example for selfcheck_ngram/selfcheck_embed (at least 2)."
    )
    sample_temperature: float = option(
        1.0, check=_sampling("sample_temperature"), help="Temperature of those samples (above 0)."
    )
    endpoint_model: str | None = option(None, help="Model name sent to endpoints (default: the first listed).")
    api_key: str | None = option(None, secret=True, help="Endpoint API key (never stored; prefer --api-key-env).")
    api_key_env: str | None = option(None, help="Environment variable holding the endpoints' API key.")
    name: str | None = option(None, help="Name of the eval artifact (default: data and targets).")
    cache: bool = option(True, flag="--no-cache", help="Regenerate every answer instead of using the cache.")
    fail_on_regression: bool = option(False, help="Fail when B is significantly worse than A (after saving).")
    n_resamples: int = option(2000, check=_positive("n_resamples"), help="Bootstrap resamples per comparison.")
    min_delta: float | None = option(
        None,
        check=_non_negative("min_delta"),
        help="Smallest mean difference that can be significant (default: float noise only).",
    )

    @property
    def targets(self) -> tuple[str, ...]:
        """Every target: ``target`` then ``compare``."""
        return self.target + self.compare


def evaluate(
    target: str | Sequence[str] = (),
    *,
    compare: str | Sequence[str] = (),
    data: str,
    split: str | None = None,
    metrics: str | Sequence[str] = DEFAULT_METRICS,
    prompt: str | None = None,
    model: str | None = None,
    limit: int | None = None,
    max_new_tokens: int = 32,
    temperature: float = 0.0,
    seed: int | None = None,
    batch_size: int = 16,
    workers: int | None = None,
    stop: str | Sequence[str] = (),
    target_column: str | None = None,
    judge_model: str | None = None,
    judge_prompt: str | None = None,
    judge_k: int = 3,
    judge_temperature: float = 0.7,
    samples: int = 5,
    sample_temperature: float = 1.0,
    endpoint_model: str | None = None,
    api_key: str | None = None,
    api_key_env: str | None = None,
    name: str | None = None,
    cache: bool = True,
    fail_on_regression: bool = False,
    n_resamples: int = 2000,
    min_delta: float | None = None,
    workspace: Workspace | None = None,
) -> EvalJob:
    """Evaluate one target, or compare several on the same data (the first is the baseline A).

    Everything that can be wrong with the input is checked before this returns; the
    generation and scoring then run as a job (``job.wait()`` gives the ``EvalResult``;
    reading a result attribute on the job waits for it; ``job.cancel()`` stops it and
    writes nothing). ``metrics``: names from ``list_metrics()``, a list or ``"a,b"``;
    ``regex:PATTERN`` passes an argument. Answers are cached; ``cache=False`` regenerates.
    The consistency metrics (``selfcheck_ngram``, ``selfcheck_embed``) compare each answer
    with ``samples`` more drawn at ``sample_temperature``.
    With ``fail_on_regression`` a ``RegressionError`` is raised (after the eval is saved)
    when a compared target is significantly worse than A on a quality metric. ``min_delta``
    is the smallest mean difference a comparison may call significant. ``seed`` seeds
    sampling (cached only when seeded) and the bootstrap. The endpoint key comes from
    ``api_key``, else the environment variable ``api_key_env``; only the variable's name
    is stored.
    """
    return EVAL.call(locals())


EVAL = Operation(
    "eval",
    EvalSpec,
    "llmops_magics.evaluation.runner:run",
    "evaluate",
    "evaluate or compare models, adapters, prompts or endpoints on a dataset; prints the eval's reference",
    long=True,
)


def api_key_of(spec: EvalSpec) -> str | None:
    """The key the endpoints get: given directly, else read from ``api_key_env``."""
    import os

    if spec.api_key is not None:
        return spec.api_key
    if spec.api_key_env:
        key = os.environ.get(spec.api_key_env)
        if not key:
            raise ValidationError(f"api_key_env: environment variable {spec.api_key_env} is not set")
        return key
    return None
