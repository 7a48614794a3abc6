"""Generation for evals: local models in padded batches, every answer through the cache.

Batching: prompts are sorted by length before being cut into batches, so each batch
pads as little as possible (left padding, see ``models.generation``); greedy output is
the same as one prompt at a time. A batch's time is shared equally by its examples
(``latency_s``). Loaded models are kept per process (the last two) so a notebook that
evaluates the same model twice loads it once; a run whose every answer is cached loads
nothing at all.
"""

from __future__ import annotations

import hashlib
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import JobCancelledError, ValidationError
from ..models.generation import start_token
from ..models.loading import ModelSource
from .cache import GenerationCache, cache_key, cacheable

__all__ = ["GenParams", "GenRecord", "LocalBackend", "generate_cached", "folder_digest", "chat_as_text"]

MAX_LOADED = 2


@dataclass(frozen=True)
class GenParams:
    max_new_tokens: int = 32
    temperature: float = 0.0
    seed: int | None = 0
    stop: tuple[str, ...] = ()

    def key(self) -> dict[str, Any]:
        d = asdict(self)
        d["stop"] = list(self.stop)
        if not self.temperature:
            d["seed"] = None  # greedy decoding ignores the seed: the same answer whatever it is
        return d


@dataclass(frozen=True)
class GenRecord:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str
    latency_s: float
    cached: bool
    ttft_s: float | None = None  # seconds to the first streamed text (endpoints asked to stream); never cached

    def to_cache(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "finish_reason": self.finish_reason,
            "latency_s": self.latency_s,
        }

    @classmethod
    def from_cache(cls, value: Mapping[str, Any]) -> GenRecord:
        return cls(
            str(value["text"]),
            int(value["prompt_tokens"]),
            int(value["completion_tokens"]),
            str(value["finish_reason"]),
            float(value["latency_s"]),
            True,
        )


def folder_digest(folder: Path) -> str:
    """sha256 over a folder's relative paths and file contents (a local model's identity)."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(folder).parts):
            h.update(str(p.relative_to(folder)).encode() + b"\0")
            with p.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest()


def chat_as_text(messages: Sequence[Mapping[str, str]], tokenizer: Any = None) -> str:
    """Chat messages as one prompt: the tokenizer's chat template, else ``role: content`` lines."""
    if tokenizer is not None and getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template([dict(m) for m in messages], tokenize=False, add_generation_prompt=True)
    return "\n".join(f"{m['role']}: {m['content']}" for m in messages) + "\nassistant:"


_loaded: OrderedDict[str, Any] = OrderedDict()
_loaded_lock = threading.Lock()


def _load(identity_key: str, loader: Callable[[], Any]) -> Any:
    with _loaded_lock:
        if identity_key in _loaded:
            _loaded.move_to_end(identity_key)
            return _loaded[identity_key]
    model = loader()
    with _loaded_lock:
        _loaded[identity_key] = model
        while len(_loaded) > MAX_LOADED:
            _loaded.popitem(last=False)
    return model


def clear_loaded_models() -> None:
    """Forget the models kept in memory (the next eval loads again)."""
    with _loaded_lock:
        _loaded.clear()


class LocalBackend:
    """A model or adapter on this machine, loaded on first use."""

    kind = "local"

    def __init__(self, source: ModelSource, label: str, device: str | None = None, workspace: Any = None) -> None:
        self.source = source
        self.label = label
        self.device = device
        self.workspace = workspace
        base = source.base_artifact.digest if source.base_artifact is not None else folder_digest(source.base_path)
        self.identity: dict[str, Any] = {"base": base}
        self.held: Any = None  # a loaded model pinned past the per-process cache (``evaluation.cells``)
        if source.adapter_path is not None:
            adapter = source.artifact.digest if source.artifact is not None else folder_digest(source.adapter_path)
            self.identity["adapter"] = adapter

    @property
    def loaded(self):
        from ..models.loading import load_model

        if self.held is not None:
            return self.held
        key = cache_key("model", self.identity, None, {"device": self.device})
        target = self.source.artifact or self._path()
        return _load(key, lambda: load_model(target, device=self.device, workspace=self.workspace))

    def _path(self) -> Path:
        return self.source.adapter_path or self.source.base_path

    def as_text(self, payload: Any) -> str:
        return payload if isinstance(payload, str) else chat_as_text(payload, self.loaded.tokenizer)

    def context_window(self) -> int | None:
        config = self.loaded.model.config
        for name in ("n_positions", "max_position_embeddings"):
            value = getattr(config, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    def generate(self, payloads: Sequence[Any], params: GenParams, batch_size: int = 16) -> list[GenRecord]:
        """Padded batches, shortest prompts first; prompts longer than the context lose their beginning."""
        from ..models.generation import generate

        loaded = self.loaded
        texts = [self.as_text(p) for p in payloads]
        window = self.context_window()
        max_input = None
        if window is not None:
            max_input = window - params.max_new_tokens
            if max_input < 1:
                raise ValidationError(
                    f"max_new_tokens={params.max_new_tokens} leaves no room for a prompt in the "
                    f"{window}-token context of {self.label}"
                )
            loaded.tokenizer.truncation_side = "left"
            encoded = loaded.tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
            lengths = [len(ids) for ids in encoded]
            cut = sum(n > max_input for n in lengths)
            if cut:
                warnings.warn(
                    f"{cut} prompt(s) are longer than the {max_input} tokens {self.label} has room for; "
                    "their beginning was cut",
                    stacklevel=3,
                )
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[GenRecord | None] = [None] * len(texts)
        for start in range(0, len(order), max(1, batch_size)):
            idx = order[start : start + batch_size]
            gens = generate(
                loaded,
                [texts[i] for i in idx],
                max_new_tokens=params.max_new_tokens,
                temperature=params.temperature,
                seed=params.seed,
                stop=params.stop,
                max_input_tokens=max_input,
            )
            for i, g in zip(idx, gens, strict=True):
                out[i] = GenRecord(
                    g.text, g.prompt_tokens, g.completion_tokens, g.finish_reason, g.seconds / len(idx), False
                )
        return out  # type: ignore[return-value]

    def log_likelihoods(self, payloads: Sequence[Any], continuations: Sequence[str]) -> list[tuple[float, int]]:
        """Sum of log-probabilities of each continuation's tokens given its prompt, and their count."""
        return [(lp, n) for lp, _, n in self.token_stats(payloads, continuations)]

    def token_stats(
        self, payloads: Sequence[Any], continuations: Sequence[str], batch: int = 16
    ) -> list[tuple[float, float, int]]:
        """Per continuation, teacher-forced on its prompt: (sum of its tokens' log-probabilities,
        sum of the entropies of the distributions that predicted them, token count)."""
        import torch

        loaded = self.loaded
        tok = loaded.tokenizer
        window = self.context_window()
        pad = tok.pad_token_id if tok.pad_token_id is not None else 0
        results: list[tuple[float, float, int]] = []
        for start in range(0, len(payloads), batch):
            rows = []
            pairs = zip(payloads[start : start + batch], continuations[start : start + batch], strict=True)
            for payload, cont in pairs:
                p_ids = tok(self.as_text(payload), add_special_tokens=False)["input_ids"]
                c_ids = tok(cont, add_special_tokens=False)["input_ids"]
                if not p_ids:
                    p_ids, c_ids = _start_of_text(tok, c_ids)
                if window is not None:
                    c_ids = c_ids[: window - 1]
                    p_ids = p_ids[-(window - len(c_ids)) :]  # keep the prompt's end, next to the continuation
                rows.append((p_ids, c_ids))
            width = max(len(p) + len(c) for p, c in rows)
            # right padding: positions of real tokens are then 0..n-1 whatever the batch
            ids = torch.tensor([p + c + [pad] * (width - len(p) - len(c)) for p, c in rows], device=loaded.device)
            mask = torch.tensor([[1] * (len(p) + len(c)) + [0] * (width - len(p) - len(c)) for p, c in rows])
            with torch.inference_mode():
                logits = loaded.model(input_ids=ids, attention_mask=mask.to(loaded.device)).logits.float()
            logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
            for r, (p, c) in enumerate(rows):
                if not c:
                    results.append((0.0, 0.0, 0))
                    continue
                dist = logprobs[r, len(p) - 1 : len(p) + len(c) - 1]  # the distributions that predicted each token
                targets = torch.tensor(c, device=loaded.device)
                lp = dist.gather(1, targets[:, None]).sum().item()
                entropy = -(dist.exp() * dist).sum().item()
                results.append((float(lp), float(entropy), len(c)))
        return results

    def close(self) -> None:
        """Models stay in the per-process cache; ``clear_loaded_models()`` frees them."""


def _start_of_text(tok: Any, c_ids: list[int]) -> tuple[list[int], list[int]]:
    """A context for a continuation with an empty prompt: the first token needs a position before it.

    Without one, its score would be read at position -1, which wraps to whatever ends the
    padded row (another example's padding). As in transformers' perplexity guide, the
    BOS token (else EOS) stands for "start of text"; a tokenizer with neither leaves the
    first continuation token unscored, as the context of the rest.
    """
    start = start_token(tok)
    if start is not None:
        return [start], c_ids
    return c_ids[:1], c_ids[1:]


def generate_cached(
    backend: Any,
    payloads: Sequence[Any],
    params: GenParams,
    cache: GenerationCache,
    batch_size: int = 16,
    *,
    cancelled: Callable[[], bool] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[GenRecord]:
    """Answers for ``payloads``: cache hits first, the rest generated (batched) and stored.

    Generation goes a batch at a time so that ``cancelled()`` is asked between batches
    (``JobCancelledError``; nothing is written to the cache then) and ``progress(done,
    total)`` hears how far it is.
    """
    out, keys = cached_answers(backend, payloads, params, cache)
    todo = [i for i, r in enumerate(out) if r is None]
    total, done = len(payloads), len(payloads) - len(todo)
    if progress is not None:
        progress(done, total)
    step = max(1, batch_size) * (1 if backend.kind == "local" else 4)  # endpoints: several rounds of requests
    for start in range(0, len(todo), step):
        if cancelled is not None and cancelled():
            raise JobCancelledError("cancelled while generating; nothing was saved")
        chunk = todo[start : start + step]
        if backend.kind == "local":
            fresh = backend.generate([payloads[i] for i in chunk], params, batch_size=batch_size)
        else:
            fresh = backend.generate([payloads[i] for i in chunk], params)
        for i, rec in zip(chunk, fresh, strict=True):
            out[i] = rec
        done += len(chunk)
        if progress is not None:
            progress(done, total)
    store_answers(cache, keys, out, todo)
    return out  # type: ignore[return-value]


def cached_answers(
    backend: Any, payloads: Sequence[Any], params: GenParams, cache: GenerationCache
) -> tuple[list[GenRecord | None], list[str]]:
    """The answers the cache holds (None where it holds none) and every payload's key (none when
    the answers cannot be cached: sampled without a seed, or a backend with no identity)."""
    if backend.identity is None or not cacheable(params.temperature, params.seed):
        return [None] * len(payloads), []
    pkey = params.key()
    keys = [cache_key("generate", backend.identity, p, pkey) for p in payloads]
    hits = cache.get_many(keys)
    return [GenRecord.from_cache(hits[k]) if k in hits else None for k in keys], keys


def store_answers(
    cache: GenerationCache, keys: Sequence[str], out: Sequence[GenRecord | None], fresh: Sequence[int]
) -> None:
    """Keep the ``fresh`` answers of ``out`` for next time (nothing when there are no keys)."""
    if keys and fresh:
        cache.put_many({keys[i]: out[i].to_cache() for i in fresh})  # type: ignore[union-attr]
