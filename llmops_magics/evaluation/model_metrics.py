"""Metrics that need a model or the generation record: similarity, perplexity, latency, tokens, faithfulness.

Semantic similarity and the similarity-based faithfulness check use all-MiniLM-L6-v2
(``llmops_magics.models.embeddings``: offline, mean pooling). Perplexity is the
target model's perplexity on the *reference* given the rendered prompt, so it needs a
local model and a reference column; it says how likely the model finds the right
answer, whatever it generated. After an empty prompt the reference is scored after the
tokenizer's BOS (else EOS) token, so its value does not depend on the batch.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from .metrics import Example, MetricContext, metric, reference_text

__all__ = ["split_sentences"]

_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def split_sentences(text: str) -> list[str]:
    return [s for s in (p.strip() for p in _SENTENCE.split(text)) if s]


@metric(needs=("reference",))
def semantic_similarity(examples: Sequence[Example], ctx: MetricContext):
    """Cosine similarity of output and reference embeddings (all-MiniLM-L6-v2).

    A blank reference gives no value.
    """
    from ..models.embeddings import cosine_similarity

    refs = [(i, ex, reference_text(ex)) for i, ex in enumerate(examples)]
    pairs = [(i, ex.output.strip(), ref) for i, ex, ref in refs if ref is not None]
    out: list[float | None] = [None] * len(examples)
    if pairs:
        sims = cosine_similarity([p[1] for p in pairs], [p[2] for p in pairs])
        for (i, _, _), s in zip(pairs, sims, strict=True):
            out[i] = max(0.0, min(1.0, s))
    return out


def continuation_for(prompt: str, reference: str) -> str:
    """The reference as the model would continue the prompt: one space after ``Answer:``-style prompts."""
    if prompt and not prompt[-1].isspace() and reference and not reference[0].isspace():
        return " " + reference
    return reference


@metric(higher_is_better=False, needs=("reference", "model"))
def perplexity(examples: Sequence[Example], ctx: MetricContext):
    """exp(mean negative log-likelihood) of the reference tokens given the prompt (lower is better).

    A blank reference gives no value, like every reference metric.
    """
    todo = [(i, ex) for i, ex in enumerate(examples) if reference_text(ex) is not None]
    out: list[float | None] = [None] * len(examples)
    if not todo:
        return out
    scores = ctx.target.log_likelihoods(
        [ex for _, ex in todo], [continuation_for(ex.prompt, str(ex.reference)) for _, ex in todo]
    )
    for (i, _), (logprob, n_tokens) in zip(todo, scores, strict=True):
        out[i] = math.exp(-logprob / n_tokens) if n_tokens else None
    return out


@metric(higher_is_better=False, gate=False)
def latency(examples: Sequence[Example], ctx: MetricContext):
    """Seconds per example: a request's time for endpoints, the batch's time / batch size for local models.

    A cached answer keeps the latency measured when it was generated, so a cached
    re-run reports the same numbers (and makes the same eval version).
    """
    return {"latency_s": [ex.latency_s for ex in examples]}


@metric(higher_is_better=False, gate=False)
def ttft(examples: Sequence[Example], ctx: MetricContext):
    """Seconds to the first token of an endpoint's answer, its requests streamed; no value for local models.

    Asking for it makes endpoint targets stream (``stream: true``), which is how a chat
    UI calls them: the wait before text appears is what its users feel.
    """
    return {"ttft_s": [ex.ttft_s for ex in examples]}


@metric(higher_is_better=False, gate=False)
def cost(examples: Sequence[Example], ctx: MetricContext):
    """Dollars per answer at ``[tool.llmops.prices]`` (per million input/output tokens) for the target's model.

    The price is looked up by the model's reference, then its registry name (``model://name/3``
    → ``name``); an unpriced model (a local one, usually) costs 0. Token counts are the
    target's own (its tokenizer, or the endpoint's usage), so a cached re-run costs the same.
    """
    from ..models.leaderboard import price_of
    from .usage import price_table

    table = price_table()
    if table is None:  # a malformed [tool.llmops.prices] (named once, as a PriceWarning): no dollars
        return {"cost_usd": [None] * len(examples)}
    price = price_of(getattr(ctx.target, "model_ref", None), table)
    return {
        "cost_usd": [
            (ex.prompt_tokens * price["input"] + ex.completion_tokens * price["output"]) / 1e6 for ex in examples
        ]
    }


@metric(higher_is_better=None)
def tokens(examples: Sequence[Example], ctx: MetricContext):
    """Completion and prompt token counts, as the target's tokenizer (or the endpoint's usage) counts them."""
    return {
        "completion_tokens": [float(ex.completion_tokens) for ex in examples],
        "prompt_tokens": [float(ex.prompt_tokens) for ex in examples],
    }


@metric(needs=("context",))
def faithfulness_sim(examples: Sequence[Example], ctx: MetricContext):
    """Similarity-based faithfulness: best cosine similarity of the output to a sentence of the row's context.

    Rows without a context get no value. A low value flags an answer that nothing in the
    context supports (a likely hallucination); an empty output scores 0.
    """
    from ..models.embeddings import embed

    out: list[float | None] = [None] * len(examples)
    jobs = []
    for i, ex in enumerate(examples):
        if ex.context is None:
            continue
        if not ex.output.strip():
            out[i] = 0.0
            continue
        jobs.append((i, ex.output.strip(), split_sentences(ex.context) or [ex.context]))
    if not jobs:
        return out
    outputs = embed([j[1] for j in jobs])
    flat = [s for j in jobs for s in j[2]]
    sentences = embed(flat)
    at = 0
    for k, (i, _, sents) in enumerate(jobs):
        block = sentences[at : at + len(sents)]
        at += len(sents)
        out[i] = max(0.0, min(1.0, float((block @ outputs[k]).max())))
    return out
