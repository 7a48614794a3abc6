"""all-MiniLM-L6-v2's encoder in numpy: the same weights and arithmetic as transformers' ``BertModel``.

Why not transformers: every process that embeds text paid for importing torch and
transformers and for ``AutoModel.from_pretrained`` before its first embedding (about 4.6 s
of a cold ``llmops monitor``, which cron starts afresh each time, against 0.7 s for the
embedding itself). The model is a plain post-LayerNorm BERT of 6 layers, so its forward pass
is a dozen numpy operations per layer over weights read straight from ``model.safetensors``
(``safetensors.numpy``), and the tokenizer is the ``tokenizers`` library transformers itself
wraps, reading the same ``tokenizer.json``. The tests hold it to transformers' output.

Texts are batched by length (sorted, then put back in order), so a batch pads to its own
longest text rather than the longest of all.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["MiniLM"]


class MiniLM:
    """Mean-pooled, L2-normalised sentence embeddings from a BERT folder (config, safetensors, tokenizer.json)."""

    def __init__(self, folder: Path, *, max_length: int = 256) -> None:
        import json

        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((folder / "config.json").read_text())
        if config.get("model_type") != "bert" or config.get("hidden_act") != "gelu":
            raise ValueError(f"{folder} is not a BERT model with exact GELU")
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config["layer_norm_eps"])
        self.dim = int(config["hidden_size"])
        self.w = load_file(str(folder / "model.safetensors"))
        self.w = {k.removeprefix("bert."): v for k, v in self.w.items()}
        for key in [k for k in self.w if k.endswith(".weight") and self.w[k].ndim == 2 and "embeddings" not in k]:
            self.w[key] = self.w[key].T.copy()  # (in, out): x @ W without a transpose per call
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=max_length)

    def _norm(self, x: Any, name: str) -> Any:
        import numpy as np

        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.w[f"{name}.weight"] + self.w[f"{name}.bias"]

    def _dense(self, x: Any, name: str) -> Any:
        """One matrix product over every token of the batch (numpy runs a 3-d ``@`` as one product per row)."""
        out = x.reshape(-1, x.shape[-1]) @ self.w[f"{name}.weight"]
        out += self.w[f"{name}.bias"]
        return out.reshape(*x.shape[:-1], out.shape[-1])

    def _layer(self, x: Any, bias: Any, i: int) -> Any:
        import numpy as np
        from scipy.special import erf

        p = f"encoder.layer.{i}"
        rows, length, _ = x.shape
        head = self.dim // self.heads

        def split(t: Any, *axes: int) -> Any:  # (rows, length, dim) -> (rows, heads, …), contiguous
            return np.ascontiguousarray(t.reshape(rows, length, self.heads, head).transpose(*axes))

        q = split(self._dense(x, f"{p}.attention.self.query"), 0, 2, 1, 3)
        keys = split(self._dense(x, f"{p}.attention.self.key"), 0, 2, 3, 1)  # transposed: (rows, heads, head, length)
        v = split(self._dense(x, f"{p}.attention.self.value"), 0, 2, 1, 3)
        scores = q @ keys  # batched products of strided views ran 4x slower than of contiguous copies
        scores *= np.float32(1.0 / np.sqrt(head))
        scores += bias
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        scores /= scores.sum(-1, keepdims=True)
        context = (scores @ v).transpose(0, 2, 1, 3).reshape(rows, length, self.dim)
        x = self._norm(self._dense(context, f"{p}.attention.output.dense") + x, f"{p}.attention.output.LayerNorm")
        h = self._dense(x, f"{p}.intermediate.dense")
        h = h * np.float32(0.5) * (np.float32(1.0) + erf(h / np.float32(np.sqrt(2.0))).astype(np.float32))
        return self._norm(self._dense(h, f"{p}.output.dense") + x, f"{p}.output.LayerNorm")

    def _batch(self, ids: list[list[int]]) -> Any:
        import numpy as np

        length = max(len(row) for row in ids)
        tokens = np.zeros((len(ids), length), dtype=np.int64)
        mask = np.zeros((len(ids), length), dtype=np.float32)
        for r, row in enumerate(ids):
            tokens[r, : len(row)], mask[r, : len(row)] = row, 1.0
        w = self.w
        x = (
            w["embeddings.word_embeddings.weight"][tokens]
            + w["embeddings.position_embeddings.weight"][:length]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        bias = ((1.0 - mask) * np.finfo(np.float32).min)[:, None, None, :]  # padding keys get no attention
        for i in range(self.layers):
            x = self._layer(x, bias, i)
        pooled = (x * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=-1, keepdims=True), 1e-12)

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Any:
        """``(len(texts), hidden)`` float32, in the order given."""
        import numpy as np

        ids = [e.ids for e in self.tokenizer.encode_batch(list(texts))]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            out[chunk] = self._batch([ids[i] for i in chunk])
        return out
