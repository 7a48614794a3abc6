"""The models one server process holds: each base model once, with every adapter on it.

An ``Engine`` is one base model in memory and the batcher that runs it. Every served
version on that base (the primary, a canary, adapters loaded by name) is an ``Arm`` that
names its PEFT adapter; requests for different adapters ride in the same batch (PEFT's
mixed-adapter batches, the idea behind vLLM's multi-LoRA serving), so eight adapters cost
the memory of one base plus eight small adapters, not eight models.

Adapters are added and removed on the batcher's own thread between forward passes
(``run_between``), so no pass ever sees a half-loaded adapter. An adapter being removed
first stops taking requests, then waits for the ones in flight.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..ops.deploy import DeploySpec
from ..prompts.template import ParsedTemplate, parse_template
from ..store import Artifact
from .batcher import DynamicBatcher
from .multilora import install
from .scheduler import ContinuousBatcher, supports_continuous

__all__ = ["Arm", "Engine", "TokenCounter", "make_batcher", "template_for", "BASE"]

BASE = "__base__"  # PEFT's name for "no adapter" in a mixed-adapter batch


class TokenCounter:
    """Counts tokens on the request threads with a tokenizer of its own.

    A Hugging Face fast tokenizer keeps its padding and truncation settings in the
    shared Rust object and re-sets them on every call: counting a prompt on the
    event loop while the batcher encodes a padded batch turned padding off under
    the batch ("Unable to create tensor…", found by the benchmark). A separate
    ``tokenizers.Tokenizer`` (or a deep copy of a slow tokenizer) avoids that.
    """

    def __init__(self, tokenizer: Any) -> None:
        backend = getattr(tokenizer, "backend_tokenizer", None)
        if backend is not None:
            from tokenizers import Tokenizer

            self._fast = Tokenizer.from_str(backend.to_str())
            self._fast.no_padding()
            self._fast.no_truncation()
        else:
            import copy

            self._fast, self._slow = None, copy.deepcopy(tokenizer)
        self._lock = threading.Lock()

    def count(self, text: str) -> int:
        with self._lock:
            if self._fast is not None:
                return len(self._fast.encode(text, add_special_tokens=False).ids)
            return len(self._slow(text, add_special_tokens=False)["input_ids"])


def make_batcher(loaded: Any, spec: DeploySpec, label: str, on_batch: Any) -> DynamicBatcher | ContinuousBatcher:
    """The deployment's batching, or static batching for a model whose cache rows cannot be merged."""
    if spec.batching == "continuous":
        if supports_continuous(loaded):
            return ContinuousBatcher(loaded, max_batch_size=spec.max_batch_size, label=label, on_batch=on_batch)
        print(f"{label}: this model's key/value cache cannot be split by row; serving with static batching", flush=True)
    return DynamicBatcher(
        loaded, max_batch_size=spec.max_batch_size, max_wait_ms=spec.max_wait_ms, label=label, on_batch=on_batch
    )


def template_for(art: Artifact | None, prompt: Any) -> tuple[ParsedTemplate | None, str | None, Mapping[str, Any]]:
    """The deployed prompt, else the template the adapter was fine-tuned with, else none."""
    if prompt is not None:
        return prompt.parsed, prompt.ref, prompt.params
    text = art.metadata.get("prompt_template") if art is not None else None
    if isinstance(text, str) and text.strip():
        return parse_template(text), f"{art.ref}#prompt_template", {}
    return None, None, {}


@dataclass(eq=False)
class Engine:
    """One base model in memory, its batcher, and the PEFT adapters loaded on it."""

    key: str  # the base artifact's digest (or its folder): adapters of the same base share it
    loaded: Any
    batcher: DynamicBatcher | ContinuousBatcher
    adapters: dict[str, str] = field(default_factory=dict)  # PEFT adapter name -> folder
    _count: int = 0

    @property
    def base_label(self) -> str:
        art = self.loaded.base_artifact
        return art.ref if art is not None else str(self.loaded.base_path)

    def attach(self, folder: Path) -> str:
        """Load an adapter onto the base; run it between forward passes. Returns its PEFT name."""
        model = self.loaded.model
        self._count += 1
        name = f"lora{self._count}"
        if hasattr(model, "peft_config"):
            model.load_adapter(str(folder), adapter_name=name)
        else:  # the first adapter on a plain base model wraps it (base rows then go as "__base__")
            import warnings

            from peft import PeftModel

            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing", category=FutureWarning)
                model = PeftModel.from_pretrained(model, str(folder), adapter_name=name)
            self.loaded.model = model
        model.eval()
        install(model)  # mixed-adapter batches as one gathered matmul per layer (multilora.py)
        self.adapters[name] = str(folder)
        return name

    def detach(self, name: str) -> None:
        """Remove an adapter's weights; run it between forward passes, after its requests finished."""
        self.loaded.model.delete_adapter(name)
        self.adapters.pop(name, None)


@dataclass(eq=False)
class Arm:
    """One served version: what answers a request that names it or that the split routes to it."""

    label: str  # "primary", "canary", or the name an adapter was loaded under
    artifact: Artifact | None  # None: an adapter loaded from a folder outside the registry
    engine: Engine
    adapter: str  # its PEFT adapter on the engine; BASE: the base model itself
    weight: float  # share of the deployment's traffic (0: reached only by name)
    template: ParsedTemplate | None = None
    template_ref: str | None = None
    template_params: Mapping[str, Any] = field(default_factory=dict)
    folder: str | None = None
    inflight: int = 0  # submitted and not yet answered (unloading waits for 0)
    draining: bool = False
    counter: TokenCounter = field(init=False)

    def __post_init__(self) -> None:
        self.counter = TokenCounter(self.loaded.tokenizer)

    @property
    def by_name(self) -> bool:
        """Loaded by name (``--adapter``, ``load_lora_adapter``): no share of the split, reached by its name."""
        return self.label not in ("primary", "canary")

    @property
    def loaded(self) -> Any:
        return self.engine.loaded

    @property
    def batcher(self) -> DynamicBatcher | ContinuousBatcher:
        return self.engine.batcher

    @property
    def base(self) -> Artifact | None:
        return self.loaded.base_artifact

    @property
    def version(self) -> str:
        return self.artifact.ref if self.artifact is not None else self.label

    @property
    def fingerprint(self) -> str:
        digest = self.artifact.digest if self.artifact is not None else hashlib.sha256(self.folder.encode()).hexdigest()
        return f"fp_{digest[:12]}"

    @property
    def context_window(self) -> int:
        cfg = getattr(self.loaded.model, "config", None)
        for name in ("n_positions", "max_position_embeddings"):
            value = getattr(cfg, name, None)
            if isinstance(value, int) and value > 0:
                return value
        return 2048

    def count_tokens(self, text: str) -> int:
        return self.counter.count(text)

    def submit(self, job: Any) -> Any:
        """Queue a job on this arm's adapter; counted until answered (on the event loop's thread)."""
        job.adapter = self.adapter
        self.batcher.submit(job)
        self.inflight += 1
        job.future.add_done_callback(self._answered)
        return job

    def _answered(self, _future: Any) -> None:
        self.inflight -= 1

    def describe(self) -> dict[str, Any]:
        base = self.engine.base_label
        art = self.artifact
        kind = art.kind if art is not None else "adapter"
        adapter = self.version if self.adapter != BASE else None
        return {
            "id": self.label if self.by_name else self.version,
            "object": "model",
            "created": int(art.created_at) if art is not None else 0,
            "owned_by": "llmops",
            "root": base if adapter else self.version,
            "parent": base if adapter else None,
            "llmops": {
                "arm": self.label,
                "kind": kind,
                "version": self.version,
                "adapter": adapter,
                "base": base,
                "prompt": self.template_ref,
                "weight": self.weight,
                "digest": art.digest if art is not None else None,
                "folder": self.folder,
            },
        }


def adapter_source(reg: Any, where: str) -> tuple[Artifact | None, Path]:
    """A registry reference or a folder, as an adapter folder; 404 for an unknown reference, 400 for a non-adapter."""
    from ..errors import LLMOpsError, NotFoundError
    from .protocol import RequestError

    folder = Path(where).expanduser()
    art = None
    if not folder.is_dir():
        try:
            art = reg.resolve(where)
        except NotFoundError as exc:
            raise RequestError(str(exc), status=404, param="lora_path", code="adapter_not_found") from None
        except LLMOpsError as exc:  # not a reference, and no such folder
            raise RequestError(
                f"{where!r} is neither a folder nor a registry reference: {exc}", status=404, param="lora_path"
            ) from None
        if art.kind != "adapter":
            raise RequestError(f"{art.ref} is a {art.kind}, not an adapter", param="lora_path")
        folder = reg.checkout(art)
    if not (folder / "adapter_config.json").is_file():
        raise RequestError(f"{folder} is not a PEFT adapter (no adapter_config.json)", param="lora_path")
    return art, folder.resolve()


def _vocabulary(folder: Path) -> str | None:
    """A digest of a fast tokenizer's vocabulary and merges (not its padding side or other settings)."""
    path = Path(folder) / "tokenizer.json"
    if not path.is_file():
        return None
    import json

    model = json.loads(path.read_text()).get("model")
    return hashlib.sha256(json.dumps(model, sort_keys=True).encode()).hexdigest()


def check_base(engine: Engine, art: Artifact | None, folder: Path) -> None:
    """Refuse an adapter trained on another base or with another tokenizer, before touching the model."""
    from .protocol import RequestError

    base = engine.loaded.base_artifact
    wanted = art.metadata.get("base_digest") if art is not None else None
    if wanted and base is not None and wanted != base.digest:
        raise RequestError(
            f"{art.ref} was trained on base {art.metadata.get('base_model', wanted[:12])}; "
            f"this server serves {engine.base_label}",
            param="lora_path",
            code="wrong_base_model",
        )
    served, own = _vocabulary(engine.loaded.base_path), _vocabulary(folder)
    if served and own and served != own:
        raise RequestError(
            f"{folder} was trained with another tokenizer than {engine.base_label}'s",
            param="lora_path",
            code="wrong_base_model",
        )
