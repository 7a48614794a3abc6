"""Metrics that compare text: exact match, contains, regex, JSON validity, ROUGE-L, BLEU, chrF.

Normalisation, stated once: ``exact_match`` compares the output and the reference with
leading and trailing whitespace stripped, case-sensitively (``" Paris\\n"`` matches
``"Paris"``, ``"paris"`` does not); ``contains`` looks for the stripped reference inside
the output, case-insensitively. ROUGE-L, BLEU and chrF come from ``rouge-score`` and
``sacrebleu`` (scores rescaled from 0-100 to 0-1 so every metric shares one scale).
Every value is in [0, 1] and higher is better. The reference metrics give no value
(``None``) for an example whose reference is missing or blank (``metrics.reference_text``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from functools import lru_cache

from ..errors import ValidationError
from .metrics import Example, MetricContext, metric, reference_text

__all__ = ["normalize"]


def normalize(text: str | None) -> str:
    """What ``exact_match`` compares: the text with surrounding whitespace removed."""
    return "" if text is None else str(text).strip()


def _refs(examples: Sequence[Example]):
    return [(ex, reference_text(ex)) for ex in examples]


@metric(needs=("reference",))
def exact_match(examples: Sequence[Example], ctx: MetricContext):
    """1 when the stripped output equals the stripped reference (case-sensitive).

    A blank reference gives no value, so an empty output never "matches" a data gap.
    """
    return [None if ref is None else float(normalize(ex.output) == ref) for ex, ref in _refs(examples)]


@metric(needs=("reference",))
def contains(examples: Sequence[Example], ctx: MetricContext):
    """1 when the output contains the stripped reference, ignoring case.

    A blank reference gives no value (every output would contain it).
    """
    return [None if ref is None else float(ref.casefold() in ex.output.casefold()) for ex, ref in _refs(examples)]


@lru_cache(maxsize=64)
def _compile(pattern: str) -> re.Pattern:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValidationError(f"regex metric: invalid pattern {pattern!r}: {exc}") from None


@metric
def regex(examples: Sequence[Example], ctx: MetricContext):
    """1 when the stripped output fully matches ``regex:PATTERN`` (or the row's ``pattern`` column)."""
    out = []
    for ex in examples:
        pattern = ctx.arg if ctx.arg is not None else ex.row.get("pattern")
        if pattern is None:
            raise ValidationError("regex metric needs a pattern: write regex:PATTERN or add a 'pattern' column")
        out.append(float(_compile(str(pattern)).fullmatch(normalize(ex.output)) is not None))
    return out


@metric
def json_valid(examples: Sequence[Example], ctx: MetricContext):
    """1 when the stripped output parses as JSON."""
    out = []
    for ex in examples:
        try:
            json.loads(normalize(ex.output))
        except ValueError:
            out.append(0.0)
        else:
            out.append(1.0)
    return out


@lru_cache(maxsize=1)
def _rouge():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


@metric(needs=("reference",))
def rouge_l(examples: Sequence[Example], ctx: MetricContext):
    """ROUGE-L F-measure (longest common subsequence of tokens), from rouge-score.

    A blank reference gives no value.
    """
    scorer = _rouge()
    return [
        None if ref is None else float(scorer.score(ref, normalize(ex.output))["rougeL"].fmeasure)
        for ex, ref in _refs(examples)
    ]


@metric(needs=("reference",))
def bleu(examples: Sequence[Example], ctx: MetricContext):
    """Sentence BLEU from sacrebleu (exponential smoothing), scaled to 0-1.

    A blank reference gives no value.
    """
    from sacrebleu.metrics import BLEU

    scorer = BLEU(effective_order=True)
    return [
        None if ref is None else scorer.sentence_score(normalize(ex.output), [ref]).score / 100.0
        for ex, ref in _refs(examples)
    ]


@metric(needs=("reference",))
def chrf(examples: Sequence[Example], ctx: MetricContext):
    """Sentence chrF (character n-gram F-score) from sacrebleu, scaled to 0-1.

    A blank reference gives no value.
    """
    from sacrebleu.metrics import CHRF

    scorer = CHRF()
    return [
        None if ref is None else scorer.sentence_score(normalize(ex.output), [ref]).score / 100.0
        for ex, ref in _refs(examples)
    ]
