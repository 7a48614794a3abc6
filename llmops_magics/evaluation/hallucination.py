"""Hallucination checks as eval metrics: consistency across samples, answer confidence, support by a context.

None of these says whether an answer is *true*; each measures a signal that tends to
separate answers a model knows from answers it makes up:

* ``selfcheck_ngram`` / ``selfcheck_embed``: self-consistency (SelfCheckGPT's idea). The
  target answers each prompt ``samples`` more times at ``sample_temperature``; an answer the
  model knows comes back in most samples, a fabricated one scatters. The n-gram variant is
  the fraction of the answer's word n-grams (``selfcheck_ngram:N``, N=1 by default) that
  each sample also produces, averaged over samples; the embedding variant is the mean
  cosine similarity (all-MiniLM-L6-v2) of the answer and each sample. Both 0-1.
* ``logprob`` / ``entropy`` (local models): the answer scored by the model that wrote it,
  teacher-forced on its prompt: the mean log-probability of its tokens, and the mean
  entropy (nats) of the next-token distribution at each of them. One forward pass serves
  both, cached with the generations.
* ``support``: claim-level support against the row's ``context``. The answer is split into
  sentences (its claims); the judge model (``judge_model=``) labels each one ``supported``,
  ``contradicted`` or ``not_found`` (``judge_k`` times, the majority wins, ties go to the
  less supportive verdict); the value is the supported fraction of the claims it could read,
  and every claim with its verdict and votes is kept in the example's record
  (``support_verdicts``). The judge prompt is the registered ``prompt://judge-support``
  (or ``support:REF``), rendered with ``claim`` plus the judge variables.

Samples are seeded (``seed+1 … seed+samples``), so they are cached and a re-run is the same.
Their tokens and cost are the target's like its answers' (``usage.count_samples``): in its
``*_total`` keys, and apart as ``consistency_*``.
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..errors import ValidationError
from .cache import GenerationCache, cache_key
from .generations import GenParams, generate_cached
from .judge import DEFAULT_JUDGE_PROMPTS, JUDGE_MAX_NEW_TOKENS, judge_variables
from .metrics import Example, MetricContext, metric
from .model_metrics import split_sentences
from .usage import count_samples

__all__ = [
    "VERDICTS",
    "ngram_consistency",
    "parse_verdict",
    "majority_verdict",
    "extract_claims",
    "sample_answers",
    "token_stats",
]

VERDICTS = ("supported", "contradicted", "not_found")
_TIE_ORDER = ("contradicted", "not_found", "supported")  # a tie never makes a claim look better supported
_WORD = re.compile(r"\w+")
_VERDICT = re.compile(r"contradict\w*|not[\s_-]*found|not[\s_-]*supported|unsupported|supported", re.I)

DEFAULT_JUDGE_PROMPTS.setdefault(
    "support",
    (
        "judge-support",
        "You check one claim of an answer against a context.\n"
        "Context: {{ context }}\n"
        "Question: {{ question }}\n"
        "Claim: {{ claim }}\n"
        "Reply with one word: supported (the context states it), contradicted (the context states "
        "otherwise) or not_found (the context does not say).\n"
        "Verdict:",
        "Labels one claim of an answer supported, contradicted or not_found by the context.",
    ),
)


def words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def _ngrams(tokens: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def ngram_consistency(answer: str, samples: Sequence[str], n: int = 1) -> float | None:
    """Mean over samples of the share of the answer's word n-grams the sample also has; ``None`` for no words.

    An answer shorter than ``n`` words is compared by n-grams as long as itself.
    """
    tokens = words(answer)
    if not tokens or not samples:
        return None
    n = min(n, len(tokens))
    grams = _ngrams(tokens, n)
    return statistics.fmean(len(grams & _ngrams(words(s), n)) / len(grams) for s in samples)


def parse_verdict(text: str) -> str | None:
    """The first verdict word in a judge's reply (``not supported`` counts as ``not_found``); ``None`` if none."""
    m = _VERDICT.search(text or "")
    if m is None:
        return None
    word = m.group(0).casefold()
    if word.startswith("contradict"):
        return "contradicted"
    return "supported" if word == "supported" else "not_found"


def majority_verdict(votes: Sequence[str | None]) -> str | None:
    counts = Counter(v for v in votes if v is not None)
    if not counts:
        return None
    top = max(counts.values())
    return next(v for v in _TIE_ORDER if counts.get(v) == top)


def extract_claims(text: str) -> list[str]:
    """The answer's sentences that hold a word: each is one claim to check."""
    return [s for s in split_sentences(text.strip()) if _WORD.search(s)]


def _payload(ex: Example) -> Any:
    return [dict(m) for m in ex.messages] if ex.messages else ex.prompt


def _cache(target: Any) -> GenerationCache:
    cache = getattr(target, "cache", None)
    return cache if cache is not None else GenerationCache("unused.sqlite", enabled=False)


def sample_answers(examples: Sequence[Example], ctx: MetricContext) -> list[list[str]]:
    """``samples`` more answers per example at ``sample_temperature``, drawn once per target and shared."""
    o = ctx.options
    key = ("samples", o.samples, o.sample_temperature, o.seed, o.max_new_tokens, tuple(o.stop))
    if key not in ctx.shared:
        if o.samples < 2:
            raise ValidationError(f"samples must be at least 2 for a consistency check, found {o.samples}")
        backend = ctx.target.backend
        payloads = [_payload(ex) for ex in examples]
        runs = []
        for j in range(o.samples):
            params = GenParams(o.max_new_tokens, o.sample_temperature, (o.seed or 0) + 1 + j, tuple(o.stop))
            runs.append(generate_cached(backend, payloads, params, _cache(ctx.target), o.batch_size))
        ctx.shared[key] = [[run[i].text for run in runs] for i in range(len(examples))]
        ctx.count("consistency_samples", len(examples) * o.samples)
        count_samples(ctx, examples, runs, getattr(ctx.target, "model_ref", None))  # paid for like the answers
    return ctx.shared[key]


@metric
def selfcheck_ngram(examples: Sequence[Example], ctx: MetricContext):
    """Self-consistency: share of the answer's word n-grams found in k sampled answers (selfcheck_ngram:N).

    Cheap and literal: a paraphrase counts as a disagreement, so it suits short factual answers.
    """
    try:
        n = int(ctx.arg) if ctx.arg else 1
    except ValueError:
        raise ValidationError(f"selfcheck_ngram:N takes a whole number of words, found {ctx.arg!r}") from None
    if n < 1:
        raise ValidationError(f"selfcheck_ngram:N takes a whole number of words >= 1, found {n}")
    samples = sample_answers(examples, ctx)
    return [ngram_consistency(ex.output, s, n) for ex, s in zip(examples, samples, strict=True)]


@metric
def selfcheck_embed(examples: Sequence[Example], ctx: MetricContext):
    """Self-consistency: mean MiniLM cosine similarity of the answer and k sampled answers.

    Forgives paraphrase, at the price of calling two different names of the same kind similar.
    """
    from ..models.embeddings import embed

    samples = sample_answers(examples, ctx)
    todo = [i for i, ex in enumerate(examples) if words(ex.output)]
    out: list[float | None] = [None] * len(examples)
    if not todo:
        return out
    answers = embed([examples[i].output.strip() for i in todo])
    flat = [s.strip() for i in todo for s in samples[i]]
    vectors = embed(flat)
    k = len(samples[todo[0]])
    for row, i in enumerate(todo):
        sims = vectors[row * k : (row + 1) * k] @ answers[row]
        # an empty sample shares nothing with the answer, whatever MiniLM makes of ""
        out[i] = statistics.fmean(
            0.0 if not words(s) else max(0.0, min(1.0, float(v))) for s, v in zip(samples[i], sims, strict=True)
        )
    return out


def token_stats(examples: Sequence[Example], ctx: MetricContext) -> list[tuple[float, float, int]]:
    """``(sum of log-probs, sum of entropies, token count)`` of each output given its prompt, shared and cached."""
    if "token_stats" in ctx.shared:
        return ctx.shared["token_stats"]
    backend = ctx.target.backend
    cache = _cache(ctx.target)
    payloads = [_payload(ex) for ex in examples]
    keys = [
        cache_key("tokenstats", backend.identity, [p, ex.output], {}) for p, ex in zip(payloads, examples, strict=True)
    ]
    hits = cache.get_many(keys)
    todo = [i for i, k in enumerate(keys) if k not in hits]
    if todo:
        fresh = backend.token_stats([payloads[i] for i in todo], [examples[i].output for i in todo])
        new = {keys[i]: list(v) for i, v in zip(todo, fresh, strict=True)}
        cache.put_many(new)
        hits.update(new)
    ctx.shared["token_stats"] = [(float(hits[k][0]), float(hits[k][1]), int(hits[k][2])) for k in keys]
    return ctx.shared["token_stats"]


@metric(needs=("model",), gate=False)
def logprob(examples: Sequence[Example], ctx: MetricContext):
    """Answer confidence: mean log-probability of the answer's tokens under the model that wrote it (local models)."""
    return [lp / n if n else None for lp, _, n in token_stats(examples, ctx)]


@metric(higher_is_better=False, needs=("model",), gate=False)
def entropy(examples: Sequence[Example], ctx: MetricContext):
    """Answer uncertainty: mean entropy (nats) of the next-token distribution over the answer (local models)."""
    return [ent / n if n else None for _, ent, n in token_stats(examples, ctx)]


@metric(needs=("judge", "context"))
def support(examples: Sequence[Example], ctx: MetricContext):
    """Claim-level support: the share of the answer's claims the judge finds supported by the row's context."""
    from ..tracing.conventions import LLMOPS_MODEL_REF, LLMOPS_PROMPT_REF
    from ..tracing.spans import operation_span

    runner, o = ctx.judges, ctx.options
    pv = runner.prompt("support", ctx.arg)
    jobs = [(i, c) for i, ex in enumerate(examples) if ex.context for c in extract_claims(ex.output)]
    payloads = [pv.render({**judge_variables(examples[i]), "claim": c}) for i, c in jobs]
    payloads = [[dict(m) for m in p] if isinstance(p, list) else str(p) for p in payloads]
    votes: list[list[str | None]] = [[] for _ in jobs]
    if jobs:
        runner.backend()  # pins used_model for the span's links
        used = runner.used_model if runner.used_model and "://" in runner.used_model else None
        links = {LLMOPS_PROMPT_REF: pv.ref, LLMOPS_MODEL_REF: None if used and used.startswith("http") else used}
        with operation_span("judge", "judge support", links=links, **{"llmops.judge.k": o.judge_k}):
            for k in range(o.judge_k):
                params = GenParams(JUDGE_MAX_NEW_TOKENS, o.judge_temperature, (o.seed or 0) + k, ())
                replies = runner.replies(payloads, params, ctx)
                for slot, reply in zip(votes, replies, strict=True):
                    slot.append(parse_verdict(reply.text))
    n = len(examples)
    claims: list[list[dict[str, Any]] | None] = [[] if ex.context else None for ex in examples]
    for (i, claim), v in zip(jobs, votes, strict=True):
        tally = {w: v.count(w) for w in VERDICTS if w in v}
        claims[i].append({"claim": claim, "verdict": majority_verdict(v), "votes": tally})  # type: ignore[union-attr]
        ctx.count("support_parse_failures", v.count(None))
    ctx.count("support_calls", len(jobs) * o.judge_k)
    frac: list[float | None] = [None] * n
    contradicted: list[float | None] = [None] * n
    count: list[float | None] = [None] * n
    for i, judged in enumerate(claims):
        if judged is None:
            continue
        count[i] = float(len(judged))
        read = [c["verdict"] for c in judged if c["verdict"] is not None]
        if read:
            frac[i] = read.count("supported") / len(read)
            contradicted[i] = read.count("contradicted") / len(read)
    ctx.detail("support_verdicts", claims)
    return {"support": frac, "support_contradicted": contradicted, "support_claims": count}
