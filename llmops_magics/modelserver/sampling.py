"""How each row of a continuous batch picks its next token, with its own settings.

Rows of one forward pass may ask for different things: greedy rows take the argmax,
sampled rows draw from their own seeded ``torch.Generator`` (temperature, then top-p), a row
under ``min_tokens`` cannot pick EOS yet, and a row asking for ``logprobs`` is scored on the
raw logits (before temperature or top-p, as vLLM reports them). Apart from the scheduler's
loop because none of it depends on the batch's cache: it is a function of one step's logits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .streaming import token_logprob

__all__ = ["choose", "sample"]


def choose(tokenizer: Any, seqs: Sequence[Any], logits: Any) -> tuple[list[int], dict]:
    """Each row's next token, and its log-probabilities where asked (``{seq: TokenLogprob | None}``).

    ``seqs`` are the scheduler's sequences (``text.ids``, ``params``, ``generator``), one per row of ``logits``.
    """
    import torch

    logits = logits.float()
    raw = logits.clone() if any(s.params.logprobs is not None for s in seqs) else None
    eos = tokenizer.eos_token_id
    held = [i for i, seq in enumerate(seqs) if len(seq.text.ids) < seq.params.min_tokens]
    if eos is not None and held:  # min_tokens / ignore_eos: EOS cannot end it yet (one write for all rows)
        logits[torch.tensor(held, device=logits.device), eos] = float("-inf")
    chosen = logits.argmax(dim=-1).tolist()
    for i, seq in enumerate(seqs):
        if seq.generator is not None:
            chosen[i] = sample(logits[i], seq.params.temperature, seq.params.top_p, seq.generator)
    scored = {
        seq: None if seq.params.logprobs is None else token_logprob(tokenizer, raw[i], chosen[i], seq.params.logprobs)
        for i, seq in enumerate(seqs)
    }
    return chosen, scored


def sample(logits: Any, temperature: float, top_p: float, generator: Any) -> int:
    """One draw: temperature, then the smallest set of tokens whose probability reaches ``top_p``."""
    import torch

    probs = torch.softmax(logits / temperature, dim=-1)
    if top_p < 1.0:
        ordered, order = probs.sort(descending=True)
        outside = ordered.cumsum(-1) - ordered > top_p  # tokens after the nucleus is complete
        ordered[outside] = 0.0
        probs = torch.zeros_like(probs).scatter_(-1, order, ordered)
    return int(torch.multinomial(probs, 1, generator=generator))
