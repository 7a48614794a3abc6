"""Batched text generation shared by evaluation and serving.

Decoder-only models need left padding so every prompt ends where generation
starts; with greedy decoding a batch gives the same text as one prompt at a time
(the tests hold both ``%eval`` and the server to that).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from .loading import LoadedModel

__all__ = ["Generation", "TokenLogprob", "generate", "count_tokens", "start_token"]


@dataclass(frozen=True)
class TokenLogprob:
    """One generated token: its text, its log-probability and the most likely alternatives."""

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class Generation:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (EOS or a stop string) or "length"
    seconds: float
    logprobs: tuple[TokenLogprob, ...] | None = None  # per generated token, when asked (the serving engine)


def count_tokens(loaded: LoadedModel, text: str) -> int:
    return len(loaded.tokenizer(text, add_special_tokens=False)["input_ids"])


def start_token(tok: Any) -> int | None:
    """The token that stands for "start of text": BOS, else EOS (GPT-2 has only <|endoftext|>)."""
    return tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id


def generate(
    loaded: LoadedModel,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 32,
    temperature: float = 0.0,
    top_p: float = 1.0,
    seed: int | None = 0,
    stop: Sequence[str] = (),
    max_input_tokens: int | None = None,
    streamer: Any = None,
    min_new_tokens: int | None = None,
    abandoned: Callable[[], Sequence[bool]] | None = None,
    adapter_names: Sequence[str] | None = None,
) -> list[Generation]:
    """Generate a continuation for each prompt in one padded batch.

    ``streamer`` (a transformers ``BaseStreamer``) receives the prompt ids, then one
    token per row at every decoding step: the server streams tokens through it.
    ``min_new_tokens`` keeps EOS from ending a row earlier (fixed-length benchmarks).
    ``adapter_names`` (a PEFT model holding several adapters) picks each row's adapter.
    ``abandoned`` says, at every step, which rows nobody waits for any more (a client that
    disconnected): those rows stop, and the batch ends as soon as every row has stopped.

    Each call is one span (``text_completion MODEL``, see ``tracing.spans.model_call``) with
    the batch's finish reasons and token counts; the prompts and answers only when the
    workspace captures content.
    """
    if not prompts:
        return []
    from ..tracing.conventions import LLMOPS_BATCH_SIZE, OP_TEXT_COMPLETION, PROVIDER_TRANSFORMERS
    from ..tracing.spans import model_call

    art = loaded.artifact
    name = art.name if art is not None else (loaded.adapter_path or loaded.base_path).name
    request = {"temperature": temperature, "max_tokens": max_new_tokens, "seed": seed, "top_p": top_p, "stop": stop}
    with model_call(
        OP_TEXT_COMPLETION,
        name,
        provider=PROVIDER_TRANSFORMERS,
        request=request,
        inputs=prompts,
        model_ref=art.ref if art is not None else None,
    ) as call:
        results = _generate(
            loaded, prompts, max_new_tokens, temperature, top_p, seed, stop, max_input_tokens, streamer,
            min_new_tokens, abandoned, adapter_names,
        )  # fmt: skip
        call.set({LLMOPS_BATCH_SIZE: len(prompts)})
        call.response(
            finish_reasons=[g.finish_reason for g in results],
            input_tokens=sum(g.prompt_tokens for g in results),
            output_tokens=sum(g.completion_tokens for g in results),
            outputs=[g.text for g in results],
        )
    return results


def _generate(
    loaded, prompts, max_new_tokens, temperature, top_p, seed, stop, max_input_tokens, streamer, min_new_tokens,
    abandoned, adapter_names,
) -> list[Generation]:  # fmt: skip
    import torch

    tok = loaded.tokenizer
    started = time.perf_counter()
    ids = tok(
        list(prompts), add_special_tokens=False, truncation=max_input_tokens is not None, max_length=max_input_tokens
    )["input_ids"]
    # An empty prompt has nothing to condition on: start it from the model's BOS (GPT-2's
    # <|endoftext|>), as vLLM does, instead of a zero-width batch that generate() cannot take.
    ids = [row or [start_token(tok)] for row in ids]
    enc = tok.pad({"input_ids": ids}, return_tensors="pt")
    enc = {k: v.to(loaded.device) for k, v in enc.items()}
    kwargs = {"max_new_tokens": max_new_tokens, "pad_token_id": tok.pad_token_id, "eos_token_id": tok.eos_token_id}
    if temperature and temperature > 0:
        kwargs.update(do_sample=True, temperature=temperature, top_p=top_p)
        if seed is not None:
            torch.manual_seed(seed)
    else:
        kwargs.update(do_sample=False)
    if streamer is not None:
        kwargs["streamer"] = streamer
    if min_new_tokens:
        kwargs["min_new_tokens"] = min(min_new_tokens, max_new_tokens)
    if abandoned is not None:
        kwargs["stopping_criteria"] = _abandoned_rows(abandoned)
    if adapter_names is not None:
        kwargs["adapter_names"] = list(adapter_names)
    with torch.inference_mode():
        out = loaded.model.generate(**enc, **kwargs)
    width = enc["input_ids"].shape[1]
    elapsed = time.perf_counter() - started
    results = []
    for i in range(len(prompts)):
        new = out[i, width:].tolist()
        finish = "length"
        if tok.eos_token_id in new:
            new = new[: new.index(tok.eos_token_id)]
            finish = "stop"
        while new and new[-1] == tok.pad_token_id:
            new.pop()
        text = tok.decode(new, skip_special_tokens=True)
        for s in stop:
            if s and s in text:
                text, finish = text[: text.index(s)], "stop"
        n_prompt = int(enc["attention_mask"][i].sum())
        results.append(Generation(text, n_prompt, len(new), finish, elapsed))
    return results


def _abandoned_rows(abandoned: Callable[[], Sequence[bool]]) -> Any:
    """A stopping criterion per row: transformers pads a stopped row and ends when all have stopped."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class Abandoned(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            return torch.tensor(list(abandoned()), dtype=torch.bool, device=input_ids.device)

    return StoppingCriteriaList([Abandoned()])
