"""Many LoRA adapters in one batch at the cost of one: a gathered matmul per layer, not a loop.

PEFT runs a mixed-adapter batch (``adapter_names=[…]``) by looping over the adapters present
in it: per LoRA layer and per adapter, it selects that adapter's rows, runs its two small
matmuls and scatters the result back. With eight adapters in a batch that is eight times the
kernel launches and indexing per layer; on the tiny model it cost a third of the throughput
(``benchmarks/bench_serve.py``). vLLM's answer (the punica / S-LoRA kernels) is to stack every
adapter's A and B matrices and let each row gather its own; here it is the same in plain
torch: ``x @ A[slot]ᵀ @ B[slot]ᵀ · scale[slot]`` as two batched matmuls, whatever the number
of adapters. Ranks are padded with zeros to the largest (zero columns add exact zeros).

PEFT also registers a forward hook on every LoRA module for every call that passes
``adapter_names`` (measured here: 2.3 ms a decoding step with one adapter, 4.9 ms with
``adapter_names`` naming only the base). So the rows' adapters travel instead in a
thread-local set around the forward pass (``rows(names)``), which the patched layers read.

``install(model)`` patches every LoRA ``Linear`` layer; the stacks are rebuilt lazily when the
set of adapters on a layer changes (adapters are only added or removed between forward
passes). Layers of a DoRA or other variant fall back to PEFT's own loop for their rows. It
returns False when the model has LoRA layers of another type (embeddings, convolutions):
those only follow ``adapter_names``, so such a model must be driven the PEFT way.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import MethodType
from typing import Any

__all__ = ["install", "rows"]

BASE = "__base__"
_active = threading.local()


@contextmanager
def rows(names: Sequence[str]) -> Iterator[None]:
    """Each row's adapter (``BASE`` for none) for the forward passes run inside, on this thread."""
    _active.names, _active.slots = list(names), {}
    try:
        yield
    finally:
        _active.names = _active.slots = None


def _forward(self: Any, x: Any, *args: Any, **kwargs: Any) -> Any:
    names = getattr(_active, "names", None)
    if names is None or kwargs.get("adapter_names") is not None:
        return self._llmops_forward(x, *args, **kwargs)
    return _gathered(self, x, *args, adapter_names=names, **kwargs)


class _Stack:
    def __init__(self, layer: Any, names: tuple[str, ...]) -> None:
        import torch

        weight = layer.lora_A[names[0]].weight
        rank = max(layer.lora_A[n].weight.shape[0] for n in names)
        fan_in = weight.shape[1]
        fan_out = layer.lora_B[names[0]].weight.shape[0]
        self.slot = {name: i + 1 for i, name in enumerate(names)}  # slot 0: no adapter (the base)
        self.a = torch.zeros((len(names) + 1, rank, fan_in), dtype=weight.dtype, device=weight.device)
        self.b = torch.zeros((len(names) + 1, fan_out, rank), dtype=weight.dtype, device=weight.device)
        self.scale = torch.zeros(len(names) + 1, dtype=weight.dtype, device=weight.device)
        for name, i in self.slot.items():
            r = layer.lora_A[name].weight.shape[0]
            self.a[i, :r] = layer.lora_A[name].weight.detach()
            self.b[i, :, :r] = layer.lora_B[name].weight.detach()
            self.scale[i] = float(layer.scaling[name])


def _plain(layer: Any, names: tuple[str, ...]) -> bool:
    """Vanilla LoRA on a linear layer for every adapter (no DoRA or other variant)."""
    import torch

    variants = getattr(layer, "lora_variant", {}) or {}
    return all(
        n not in variants
        and isinstance(layer.lora_A[n], torch.nn.Linear)
        and isinstance(layer.lora_B[n], torch.nn.Linear)
        for n in names
    )


def _gathered(self: Any, x: Any, *args: Any, adapter_names: list[str], **kwargs: Any) -> Any:
    import torch

    names = tuple(self.lora_A.keys())
    stack = getattr(self, "_llmops_stack", None)
    if stack is None or stack[0] != names:
        stack = (names, _Stack(self, names) if names and _plain(self, names) else None)
        self._llmops_stack = stack
    if stack[1] is None or x.dim() != 3:
        return self._llmops_peft_mixed(x, *args, adapter_names=adapter_names, **kwargs)
    kwargs.pop("alora_offsets", None)  # a variant's argument; vanilla LoRA has none
    result = self.base_layer(x, *args, **kwargs)
    s = stack[1]
    cache = getattr(_active, "slots", None)  # layers with the same adapters share one slot tensor per pass
    slots = cache.get(names) if cache is not None else None
    if slots is None:
        slots = torch.tensor([s.slot.get(n, 0) for n in adapter_names], device=x.device)
        if cache is not None:
            cache[names] = slots
    down = torch.matmul(x.to(s.a.dtype), s.a[slots].transpose(1, 2))  # [rows, tokens, rank]
    up = torch.matmul(down, s.b[slots].transpose(1, 2)) * s.scale[slots].view(-1, 1, 1)
    return result + up.to(result.dtype)


def install(model: Any) -> bool:
    """Patch every LoRA linear layer of ``model``; True when every LoRA layer it has is one of them."""
    from peft.tuners.lora.layer import Linear, LoraLayer

    plain = True
    for module in model.modules():
        if isinstance(module, Linear):
            if not hasattr(module, "_llmops_forward"):
                module._llmops_forward = module.forward
                module._llmops_peft_mixed = module._mixed_batch_forward
                module.forward = MethodType(_forward, module)
                module._mixed_batch_forward = MethodType(_gathered, module)
        elif isinstance(module, LoraLayer):
            plain = False
    model._llmops_rows = plain
    return plain
