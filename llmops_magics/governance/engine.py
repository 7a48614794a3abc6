"""Presidio, built once per process, never online.

What is closed or changed here, each on purpose:

- **No model download.** Presidio's ``SpacyNlpEngine.load`` calls ``spacy.cli.download``
  for a model that is not installed. ``GivenPipeline`` hands Presidio a pipeline this
  module loaded itself: ``spacy.blank("en")`` when no model is configured (the pattern
  recognizers need only tokens), or the installed model named in
  ``[tool.llmops.governance] pii_model``; a missing one is one line, never a download.
- **No public suffix list fetch.** Presidio's ``EmailRecognizer`` validates a match with
  ``tldextract.extract``, whose module-level extractor fetches the public suffix list
  online (and writes a cache under ``~/.cache``). It is replaced by a recognizer whose
  extractor has ``suffix_list_urls=()`` and no cache: tldextract's bundled snapshot.
- **Phone numbers, region by region.** Presidio's phone recognizer asks each of its regions
  about every text; ``phones.gated_phone_recognizer`` skips the regions a text's digit
  count rules out, with the same findings.
- **Context words on a blank pipeline.** Presidio raises a score when a context word
  ("phone", "ssn", "card") precedes a match, comparing lemmas; a blank pipeline has none,
  so a tiny component sets each token's lemma to its lower-cased text.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ValidationError
from .phones import gated_phone_recognizer

__all__ = ["Finding", "Engine", "engine", "LANGUAGE", "BLANK"]

LANGUAGE = "en"
BLANK = "blank"  # what a scan records as its model when only patterns ran
BATCH = 64  # texts per nlp.pipe batch
INSTALL = "pip install 'llmops-magics[governance]'"

_lock = threading.Lock()
_engines: dict[tuple[str, tuple[str, ...] | None], Engine] = {}


@dataclass(frozen=True)
class Finding:
    """One span of personal data: ``text[start:end]`` is an ``entity`` with Presidio's ``score``."""

    start: int
    end: int
    entity: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        return {"start": self.start, "end": self.end, "entity": self.entity, "score": round(self.score, 4)}


def engine(model: str | None = None, phone_regions: Sequence[str] | None = None) -> Engine:
    """The process's engine for ``model`` (None: the blank pipeline) and phone regions (None:
    Presidio's default), built on first use."""
    key = (model or BLANK, tuple(phone_regions) if phone_regions else None)
    with _lock:
        found = _engines.get(key)
        if found is None:
            found = _engines[key] = Engine(model, phone_regions)
        return found


class Engine:
    """An analyzer (patterns, plus NER when ``model`` has it) and an anonymizer."""

    def __init__(self, model: str | None, phone_regions: Sequence[str] | None = None) -> None:
        try:
            from presidio_analyzer import AnalyzerEngine, BatchAnalyzerEngine
            from presidio_anonymizer import AnonymizerEngine
        except ImportError as exc:
            raise ValidationError(f"PII scanning needs Presidio ({exc.name} is not installed): {INSTALL}") from None
        self.model = model or BLANK
        nlp = _pipeline(model)
        analyzer = AnalyzerEngine(nlp_engine=_given_pipeline(nlp), supported_languages=[LANGUAGE])
        analyzer.registry.remove_recognizer("EmailRecognizer")
        analyzer.registry.add_recognizer(_offline_email_recognizer())
        self.phone_regions = tuple(phone_regions) if phone_regions else None
        analyzer.registry.remove_recognizer("PhoneRecognizer")  # the same findings, fewer regions asked per text
        analyzer.registry.add_recognizer(gated_phone_recognizer(self.phone_regions))
        self.analyzer = analyzer
        self._batch = BatchAnalyzerEngine(analyzer)
        self._anonymizer = AnonymizerEngine()
        self.has_ner = "ner" in nlp.pipe_names

    def find(
        self, texts: Sequence[str], entities: Sequence[str], threshold: float, *, workers: int | None = None
    ) -> list[list[Finding]]:
        """The findings in each text, overlaps resolved (the higher score, then the longer span, wins).

        A scan of ``parallel.PARALLEL_MIN`` texts or more runs in forked processes, one per usable
        core (``workers`` sets how many; 1: this process only), with the same findings.
        """
        from .parallel import MAX_WORKERS, PARALLEL_MIN, find_forked, usable_cores

        if workers is None:
            workers = min(usable_cores(), MAX_WORKERS) if len(texts) >= PARALLEL_MIN else 1
        workers = min(workers, len(texts))
        if workers > 1:
            found = find_forked(self, texts, entities, threshold, workers)
            if found is not None:
                return found
        return self.find_here(texts, entities, threshold)

    def find_here(self, texts: Sequence[str], entities: Sequence[str], threshold: float) -> list[list[Finding]]:
        """``find`` in this process, on this thread."""
        if not texts:
            return []
        results = self._batch.analyze_iterator(
            list(texts), language=LANGUAGE, entities=list(entities), score_threshold=threshold, batch_size=BATCH
        )
        return [_resolve(found) for found in results]

    def redact(self, text: str, findings: Iterable[Finding], operator: str, *, salt: str = "") -> str:
        """``text`` with every finding replaced (``<EMAIL_ADDRESS>``), masked (``*****``) or hashed (salted SHA-256)."""
        from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

        found = [RecognizerResult(f.entity, f.start, f.end, f.score) for f in findings]
        if not found:
            return text
        if operator == "mask":
            config = OperatorConfig("mask", {"masking_char": "*", "chars_to_mask": 1_000_000, "from_end": False})
        elif operator == "hash":
            config = OperatorConfig("hash", {"hash_type": "sha256", "salt": salt})
        elif operator == "replace":
            config = OperatorConfig("replace")
        else:
            raise ValidationError(f"operator must be one of replace, mask, hash, found {operator!r}")
        return self._anonymizer.anonymize(text, found, operators={"DEFAULT": config}).text


def _resolve(results: Iterable[Any]) -> list[Finding]:
    """Non-overlapping findings in text order (a URL inside an e-mail address is not a second finding)."""
    ranked = sorted(results, key=lambda r: (-r.score, -(r.end - r.start), r.start))
    kept: list[Finding] = []
    for r in ranked:
        if all(r.end <= k.start or r.start >= k.end for k in kept):
            kept.append(Finding(r.start, r.end, r.entity_type, float(r.score)))
    return sorted(kept, key=lambda f: (f.start, f.end))


def _pipeline(model: str | None) -> Any:
    import spacy
    from spacy.language import Language

    if not model:
        nlp = spacy.blank(LANGUAGE)
        if "llmops_lower_lemmas" not in Language.factories:
            Language.component("llmops_lower_lemmas", func=_lower_lemmas)
        nlp.add_pipe("llmops_lower_lemmas")
        return nlp
    try:
        return spacy.load(model)
    except (OSError, ValueError, ImportError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValidationError(
            f"[tool.llmops.governance] pii_model {model!r} cannot be loaded ({first[:200]}); "
            "install that spaCy model (see the README) or remove the setting to scan with patterns only"
        ) from None


def _lower_lemmas(doc: Any) -> Any:
    for token in doc:
        token.lemma_ = token.lower_
    return doc


def _offline_email_recognizer() -> Any:
    import tldextract
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)

    class OfflineEmailRecognizer(EmailRecognizer):
        """Presidio's e-mail patterns, validated against tldextract's bundled suffix list."""

        def validate_result(self, pattern_text: str) -> bool:
            return extract(pattern_text).fqdn != ""

    return OfflineEmailRecognizer()


def _given_pipeline_class() -> type:
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    class GivenPipeline(SpacyNlpEngine):
        """Presidio's spaCy engine over a pipeline already loaded (its own ``load`` may download)."""

        def __init__(self, nlp: Any) -> None:
            super().__init__(models=[{"lang_code": LANGUAGE, "model_name": nlp.meta.get("name", BLANK)}])
            self._given = nlp

        def load(self) -> None:
            self.nlp = {LANGUAGE: self._given}

    return GivenPipeline


def _given_pipeline(nlp: Any) -> Any:
    """Presidio's engine class is made on first use, so importing this module imports no Presidio."""
    return _given_pipeline_class()(nlp)
