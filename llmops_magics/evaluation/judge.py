"""LLM-as-judge: a registered judge prompt, a judge model, k samples per example, variance reported.

The judge prompt is an ordinary prompt version (``prompt://judge-correctness`` and
``prompt://judge-faithfulness`` are created on first use), so changing how answers are
judged makes a new, diffable version. It is rendered per example with the row's
columns plus ``question``, ``answer`` (the candidate output, shadowing a data column of
that name), ``output``, ``reference``, ``context`` and ``prompt``. Its params
``min_score``/``max_score`` (default 1 and 5, checked before anything runs) give the
scale; scores are read with ``parse_score`` and rescaled to 0-1.

The judge model is any model, adapter, folder or endpoint (``judge_model=``). Each
example is judged ``k`` times with seeds ``seed, seed+1, …`` (from 0 when the eval has no
seed, so judgments are always reproducible and cached) at ``judge_temperature``;
the mean, the sample variance and the number of unparseable replies are reported per
example. Parse failures are counted, never dropped silently.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ValidationError
from ..prompts.template import parse_template
from ..tracing.conventions import LLMOPS_MODEL_REF, LLMOPS_PROMPT_REF
from ..tracing.spans import operation_span
from .generations import GenParams, generate_cached
from .metrics import Example, MetricContext, metric

__all__ = ["JudgeRunner", "parse_score", "aggregate_scores", "DEFAULT_JUDGE_PROMPTS"]

DEFAULT_JUDGE_PROMPTS = {
    "judge": (
        "judge-correctness",
        "You are a strict grader. Compare the candidate answer with the reference answer.\n"
        "Question: {{ question }}\n"
        "Reference answer: {{ reference }}\n"
        "Candidate answer: {{ answer }}\n"
        "Reply with one integer from 1 (wrong) to 5 (correct and complete).\n"
        "Score:",
        "Grades a candidate answer against the reference, 1-5.",
    ),
    "faithfulness_judge": (
        "judge-faithfulness",
        "You check answers for hallucinations: is the answer supported by the context?\n"
        "Context: {{ context }}\n"
        "Question: {{ question }}\n"
        "Answer: {{ answer }}\n"
        "Reply with one integer from 1 (not supported, hallucinated) to 5 (fully supported by the context).\n"
        "Score:",
        "Grades whether an answer is supported by the reference context, 1-5.",
    ),
}
JUDGE_MAX_NEW_TOKENS = 8  # a score and little else
JUDGE_VARIABLES = ("question", "answer", "output", "reference", "context", "prompt")
METRIC_VARIABLES = {"support": ("claim",)}  # what a judge metric adds for its own prompt (hallucination.py)
_NUMBER = r"[-+]?\d+(?:\.\d+)?"
# "4/5" and "4 out of 5" keep their numerator; "1-5" and "1 to 5" name the scale, not a score
_SCALE = re.compile(
    rf"({_NUMBER})\s*(?:/|out of)\s*\d+(?:\.\d+)?|\d+(?:\.\d+)?\s*(?:-|\u2013|to)\s*\d+(?:\.\d+)?", re.I
)
_LABELLED = re.compile(rf"\b(?:score|rating)\b[^\d+-]{{0,20}}({_NUMBER})", re.I)


def parse_score(text: str, lo: float = 1, hi: float = 5) -> float | None:
    """The judge's score in its reply, rescaled to 0-1; ``None`` when there is none on the scale.

    Judges echo the scale and reason before they answer, so the first number is often
    not the verdict (``"1-5: 3"``). Scale mentions (``1-5``, ``1 to 5``, the ``/5`` of
    ``4/5``) are set aside; then the last number labelled ``score``/``rating`` on the
    scale wins, else the last number on the scale. A bare ``"4"`` is simply 4.
    """
    cleaned = _SCALE.sub(lambda m: f" {m.group(1)} " if m.group(1) else " ", text or "")
    on_scale = lambda values: [v for v in map(float, values) if lo <= v <= hi]
    found = on_scale(_LABELLED.findall(cleaned)) or on_scale(re.findall(_NUMBER, cleaned))
    if not found:
        return None
    return (found[-1] - lo) / (hi - lo)


def aggregate_scores(scores: Sequence[float | None]) -> tuple[float | None, float | None, int]:
    """(mean, sample variance, parse failures) of one example's k judge scores."""
    valid = [s for s in scores if s is not None]
    failures = len(scores) - len(valid)
    if not valid:
        return None, None, failures
    var = statistics.variance(valid) if len(valid) > 1 else None
    return statistics.fmean(valid), var, failures


class JudgeRunner:
    """Shared by every judge metric and target of one eval, so the judge model loads once."""

    def __init__(self, ws: Any, options: Any, cache: Any, api_key: str | None = None) -> None:
        self.ws = ws
        self.options = options  # the EvalSpec
        self.api_key = api_key
        self.cache = cache
        self.inputs: list[tuple[Any, str]] = []
        self._backend: Any = None
        self._prompts: dict[str, Any] = {}
        self.used_model: str | None = None  # the judge model's pinned reference, once used

    @property
    def prompts_used(self) -> dict[str, str]:
        """``{"metric:arg": pinned prompt reference}`` of the judge prompts used so far."""
        return {k: pv.ref for k, pv in self._prompts.items()}

    def prompt_ref(self, metric_name: str, arg: str | None) -> str | None:
        """The judge prompt asked for: ``metric:REF``, else ``judge_prompt=`` for ``judge``, else the default."""
        if arg:
            return arg
        if metric_name == "judge" and self.options.judge_prompt:
            return self.options.judge_prompt
        return None

    def template(self, metric_name: str, arg: str | None):
        """``(parsed template, params)`` without writing anything (for validation)."""
        ref = self.prompt_ref(metric_name, arg)
        if ref is None:
            _, text, _ = DEFAULT_JUDGE_PROMPTS[metric_name]
            return parse_template(text), {"min_score": 1, "max_score": 5}
        from ..prompts import get_prompt

        pv = get_prompt(ref, workspace=self.ws)
        return pv.parsed, dict(pv.params)

    def validate(self, metric_name: str, arg: str | None, columns: Sequence[str]) -> None:
        if not self.options.judge_model:
            raise ValidationError(f"metric {metric_name!r} needs a judge model (judge_model=/--judge-model)")
        parsed, params = self.template(metric_name, arg)
        known = (*JUDGE_VARIABLES, *METRIC_VARIABLES.get(metric_name, ()))
        missing = [v for v in parsed.required(params) if v not in columns and v not in known]
        if missing:
            raise ValidationError(
                f"judge prompt for {metric_name!r} needs variable(s) {', '.join(missing)}, which neither the "
                f"data columns nor the judge variables ({', '.join(JUDGE_VARIABLES)}) provide"
            )
        if self.options.judge_k < 1:
            raise ValidationError(f"judge_k must be at least 1, found {self.options.judge_k}")
        _scale(params, metric_name)

    def prompt(self, metric_name: str, arg: str | None):
        """The judge prompt version of ``metric_name`` (the project's default saved on first use), kept per runner."""
        key = f"{metric_name}:{arg}"
        if key not in self._prompts:
            from ..ops.prompts import save_prompt
            from ..prompts import get_prompt

            ref = self.prompt_ref(metric_name, arg)
            if ref is None:
                name, text, description = DEFAULT_JUDGE_PROMPTS[metric_name]
                pv = save_prompt(
                    name, text, params={"min_score": 1, "max_score": 5}, description=description, workspace=self.ws
                )
            else:
                pv = get_prompt(ref, workspace=self.ws)
            self._prompts[key] = pv
            self.inputs.append((pv.artifact, "judge_prompt"))
        return self._prompts[key]

    def backend(self):
        if self._backend is None:
            from .targets import resolve_backend

            o = self.options
            self._backend, self.used_model, inputs = resolve_backend(
                o.judge_model, self.ws, batch_size=o.batch_size, endpoint_model=o.endpoint_model, api_key=self.api_key
            )
            self.inputs += [(a, "judge_model") for a, _ in inputs]
        return self._backend

    def replies(self, payloads: Sequence[Any], params: GenParams, ctx: MetricContext) -> list[Any]:
        """The judge model's replies (cached), their tokens and cost counted in the judged target's summary."""
        from .usage import count_judge

        if not payloads:
            return []
        from .cache import GenerationCache

        cache = self.cache if self.cache is not None else GenerationCache("unused.sqlite", enabled=False)
        replies = generate_cached(self.backend(), payloads, params, cache, self.options.batch_size)
        count_judge(ctx, replies, self.used_model)
        return replies

    def judge(
        self, metric_name: str, arg: str | None, examples: Sequence[Example], ctx: MetricContext
    ) -> dict[str, list]:
        pv = self.prompt(metric_name, arg)
        lo, hi = _scale(pv.params, metric_name)
        todo = [i for i, ex in enumerate(examples) if metric_name != "faithfulness_judge" or ex.context]
        payloads = [pv.render(**judge_variables(examples[i])) for i in todo]
        payloads = [[dict(m) for m in p] if isinstance(p, list) else str(p) for p in payloads]
        o = self.options
        runs: list[list[float | None]] = [[] for _ in todo]
        if todo:
            self.backend()  # pins used_model for the span's links
        used = self.used_model if self.used_model and "://" in self.used_model else None
        links = {LLMOPS_PROMPT_REF: pv.ref, LLMOPS_MODEL_REF: None if used and used.startswith("http") else used}
        with operation_span("judge", f"judge {metric_name}", links=links, **{"llmops.judge.k": o.judge_k}):
            for k in range(o.judge_k):
                params = GenParams(JUDGE_MAX_NEW_TOKENS, o.judge_temperature, (o.seed or 0) + k, ())
                replies = self.replies(payloads, params, ctx)
                for slot, reply in zip(runs, replies, strict=True):
                    slot.append(parse_score(reply.text, lo, hi))
        n = len(examples)
        mean: list[float | None] = [None] * n
        var: list[float | None] = [None] * n
        fails: list[float | None] = [None] * n
        for i, scores in zip(todo, runs, strict=True):
            m, v, f = aggregate_scores(scores)
            mean[i], var[i], fails[i] = m, v, float(f)
            ctx.count(f"{metric_name}_parse_failures", f)
        ctx.count(f"{metric_name}_calls", len(todo) * o.judge_k)
        return {metric_name: mean, f"{metric_name}_var": var, f"{metric_name}_failures": fails}


def _scale(params: Mapping[str, Any], metric_name: str) -> tuple[float, float]:
    """The judge prompt's ``(min_score, max_score)``, checked before any judging (scores divide by the span)."""
    bounds = []
    for key, default in (("min_score", 1), ("max_score", 5)):
        value = params.get(key, default)
        try:
            bounds.append(float(value))
        except (TypeError, ValueError):
            raise ValidationError(
                f"judge prompt for {metric_name!r}: param {key} must be a number, found {value!r}"
            ) from None
    lo, hi = bounds
    if not lo < hi:
        raise ValidationError(
            f"judge prompt for {metric_name!r}: min_score must be below max_score, found {lo:g} and {hi:g}"
        )
    return lo, hi


def judge_variables(ex: Example) -> Mapping[str, Any]:
    """What a judge prompt may use: the row's columns, the question, the answer, the reference, the context."""
    return {
        **ex.row,
        "question": ex.row.get("question", ex.prompt),
        "answer": ex.output.strip(),
        "output": ex.output.strip(),
        "reference": "" if ex.reference is None else str(ex.reference),
        "context": ex.context or "",
        "prompt": ex.prompt,
    }


@metric(needs=("judge",))
def judge(examples: Sequence[Example], ctx: MetricContext):
    """LLM-as-judge correctness against the reference (mean of k samples, 0-1), with variance and failures."""
    return ctx.judges.judge("judge", ctx.arg, examples, ctx)


@metric(needs=("judge", "context"))
def faithfulness_judge(examples: Sequence[Example], ctx: MetricContext):
    """LLM-as-judge faithfulness: is the output supported by the row's context (0-1; rows without context skipped)."""
    return ctx.judges.judge("faithfulness_judge", ctx.arg, examples, ctx)
