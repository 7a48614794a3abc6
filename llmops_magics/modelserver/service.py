"""What the server process serves: arms (versions), their prompts, batchers and bookkeeping.

An *arm* is one served version: a model or adapter artifact, loaded once, with
its own dynamic batcher. A deployment has a primary arm and optionally a canary.

How a request becomes model input (the deployed prompt is applied here, on the
server, so clients never hold a copy of the template):

* the template is the deployment's ``--prompt`` version, else the adapter's
  ``prompt_template`` (the one it was fine-tuned with), else none;
* ``variables`` in a request fill the template (text templates give the model
  input directly; chat templates give messages, formatted with the tokenizer's
  chat template);
* chat ``messages`` with a template of one free variable fill it with the last
  user message (``Question: {{ question }}`` + "What is…?" → the trained format);
  a chat template without variables (a system prompt) goes before the messages;
* a completion ``prompt`` is always passed through as is (OpenAI semantics).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import RenderError
from ..ops.deploy import DeploySpec
from ..prompts.template import ParsedTemplate, parse_template
from ..store import Artifact
from .batcher import DynamicBatcher, GenParams
from .protocol import ChatRequest, CompletionRequest, RequestError
from .scheduler import ContinuousBatcher, supports_continuous

__all__ = ["Arm", "Service"]

COMPLETION_DEFAULT_TOKENS = 16


def default_threads() -> int:
    """Half the cores, at most 8: torch spreading small matrix work over every core of a
    busy machine spends it in spin-waits (measured here: 2 threads on 2 shared cores ran
    the tiny model 7x slower than 1); the rest is left to the HTTP loop and neighbours."""
    return max(1, min(8, (os.cpu_count() or 2) // 2))


class TokenCounter:
    """Counts tokens on the request threads with a tokenizer of its own.

    A Hugging Face fast tokenizer keeps its padding and truncation settings in the
    shared Rust object and re-sets them on every call: counting a prompt on the
    event loop while the batcher encodes a padded batch turned padding off under
    the batch ("Unable to create tensor…", found by the benchmark). A separate
    ``tokenizers.Tokenizer`` (or a deep copy of a slow tokenizer) avoids that.
    """

    def __init__(self, tokenizer: Any) -> None:
        import threading

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


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000.0


def make_batcher(loaded: Any, spec: DeploySpec, label: str, on_batch: Any) -> DynamicBatcher | ContinuousBatcher:
    """The deployment's batching, or static batching for a model whose cache rows cannot be merged."""
    if spec.batching == "continuous":
        if supports_continuous(loaded):
            return ContinuousBatcher(loaded, max_batch_size=spec.max_batch_size, label=label, on_batch=on_batch)
        print(f"{label}: this model's key/value cache cannot be split by row; serving with static batching", flush=True)
    return DynamicBatcher(
        loaded, max_batch_size=spec.max_batch_size, max_wait_ms=spec.max_wait_ms, label=label, on_batch=on_batch
    )


@dataclass
class Arm:
    label: str
    artifact: Artifact
    base: Artifact | None
    loaded: Any
    batcher: DynamicBatcher | ContinuousBatcher
    weight: float
    template: ParsedTemplate | None = None
    template_ref: str | None = None
    template_params: Mapping[str, Any] = field(default_factory=dict)
    counter: TokenCounter = field(init=False)

    def __post_init__(self) -> None:
        self.counter = TokenCounter(self.loaded.tokenizer)

    @property
    def version(self) -> str:
        return self.artifact.ref

    @property
    def fingerprint(self) -> str:
        return f"fp_{self.artifact.digest[:12]}"

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

    def describe(self) -> dict[str, Any]:
        base = self.base.ref if self.base is not None else None
        adapter = self.artifact.ref if self.artifact.kind == "adapter" else None
        return {
            "id": self.version,
            "object": "model",
            "created": int(self.artifact.created_at),
            "owned_by": "llmops",
            "root": base or self.version,
            "parent": base if adapter else None,
            "llmops": {
                "arm": self.label,
                "kind": self.artifact.kind,
                "version": self.version,
                "adapter": adapter,
                "base": base,
                "prompt": self.template_ref,
                "weight": self.weight,
                "digest": self.artifact.digest,
            },
        }


def _template_for(art: Artifact, prompt: Any) -> tuple[ParsedTemplate | None, str | None, Mapping[str, Any]]:
    if prompt is not None:
        return prompt.parsed, prompt.ref, prompt.params
    text = art.metadata.get("prompt_template")
    if isinstance(text, str) and text.strip():
        return parse_template(text), f"{art.ref}#prompt_template", {}
    return None, None, {}


class Service:
    """Everything one server process needs to answer requests (the FastAPI app is a thin shell on it)."""

    def __init__(
        self, spec: DeploySpec, ref: str | None, arms: list[Arm], metrics: Any, log: Any, reporter: Any
    ) -> None:
        from .routing import CanaryRouter

        self.spec, self.ref, self.arms = spec, ref, {a.label: a for a in arms}
        self.metrics, self.log, self.reporter = metrics, log, reporter
        self.router = CanaryRouter(spec.name, [(a.label, a.weight) for a in arms])
        self.started = time.time()
        self.api_key_sha256: str | None = None

    # ------------------------------------------------------------------ building

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> Service:
        """Load the models named in a runtime config (see ``lifecycle.runtime_config``)."""
        from ..context.workspaces import Settings, Workspace
        from ..models.loading import load_model
        from ..prompts import get_prompt
        from ..serving.requestlog import RequestLog, monitor_path
        from .metrics import ServerMetrics
        from .telemetry import WandbReporter

        spec, rt = DeploySpec.from_dict(cfg["spec"]), cfg["runtime"]
        import torch

        torch.set_num_threads(spec.threads or default_threads())
        ws = Workspace(
            Settings(
                home=rt["home"],
                wandb_mode=rt.get("wandb_mode", "disabled"),
                wandb_project=rt.get("wandb_project", "llmops"),
                wandb_entity=rt.get("wandb_entity"),
            )
        )
        reg = ws.registry
        metrics = ServerMetrics(spec.name, {"version": rt.get("artifact") or "", "target": spec.target})
        prompt = get_prompt(spec.prompt, workspace=ws) if spec.prompt else None
        plan = [("primary", spec.target, 100.0 - (spec.canary_arm.weight if spec.canary_arm else 0.0))]
        if spec.canary_arm:
            plan.append(("canary", spec.canary_arm.target, spec.canary_arm.weight))
        arms = []
        for label, ref, weight in plan:
            art = reg.resolve(ref)
            loaded = load_model(art, workspace=ws)
            batcher = make_batcher(
                loaded, spec, label, lambda n, depth, label=label: metrics.observe_batch(label, n, depth)
            )
            template, tref, params = _template_for(art, prompt)
            arms.append(Arm(label, art, loaded.base_artifact, loaded, batcher, weight, template, tref, params))
        deployment = reg.resolve(rt["artifact"]) if rt.get("artifact") else None
        inputs = [(a.artifact, "serves" if a.label == "primary" else "canary") for a in arms]
        if prompt is not None:
            inputs.append((prompt.artifact, "prompt"))
        reporter = WandbReporter(
            ws,
            name=spec.name,
            artifact=deployment,
            inputs=inputs,
            config={**spec.to_dict(), "deployment": rt.get("artifact")},
            interval=spec.metrics_interval,
        )
        log = RequestLog(monitor_path(rt["home"], spec.name), log_text=spec.log_text, salt=spec.name)
        service = cls(spec, rt.get("artifact"), arms, metrics, log, reporter)
        service.api_key_sha256 = rt.get("api_key_sha256")
        return service

    # ------------------------------------------------------------------ routing

    def pick(self, model: str, user: str | None) -> Arm:
        """The deployment's name (or its artifact ref) routes by the split; an arm's version pins that arm."""
        if model in (self.spec.name, self.ref, f"deployment://{self.spec.name}"):
            return self.arms[self.router.choose(user)]
        for arm in self.arms.values():
            if model == arm.version:
                return arm
        primary = self.arms["primary"]
        if model == primary.artifact.name:
            return self.arms[self.router.choose(user)]
        known = ", ".join([self.spec.name, *(a.version for a in self.arms.values())])
        raise RequestError(
            f"the model {model!r} does not exist on this server; it serves {known}",
            status=404,
            param="model",
            code="model_not_found",
        )

    def models(self) -> list[dict[str, Any]]:
        primary = self.arms["primary"]
        head = {
            "id": self.spec.name,
            "object": "model",
            "created": int(self.started),
            "owned_by": "llmops",
            "root": primary.version,
            "parent": None,
            "llmops": {
                "deployment": self.ref,
                "arms": {a.label: {"version": a.version, "weight": a.weight} for a in self.arms.values()},
            },
        }
        return [head, *(a.describe() for a in self.arms.values())]

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "deployment": self.spec.name,
            "ref": self.ref,
            "pid": os.getpid(),
            "engine": self.spec.engine,
            "uptime_s": round(time.time() - self.started, 3),
            "arms": [
                {"arm": a.label, "version": a.version, "weight": a.weight, "batching": a.batcher.mode}
                for a in self.arms.values()
            ],
        }

    # ------------------------------------------------------------------ inputs

    def _render(self, arm: Arm, values: Mapping[str, Any]) -> str:
        assert arm.template is not None
        try:
            out = arm.template.render({**arm.template_params, **values}, where=arm.template_ref or "prompt")
        except RenderError as exc:
            raise RequestError(str(exc), param="variables", code="invalid_variables") from None
        return out if isinstance(out, str) else self.format_chat(arm, out)

    def _need_template(self, arm: Arm, field_name: str) -> None:
        if arm.template is None:
            raise RequestError(
                f"{arm.version} is served without a prompt template; send {field_name} instead of variables",
                param="variables",
            )

    @staticmethod
    def format_chat(arm: Arm, messages: list[dict[str, str]]) -> str:
        tok = arm.loaded.tokenizer
        if getattr(tok, "chat_template", None):
            return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"

    def completion_inputs(self, arm: Arm, req: CompletionRequest) -> list[str]:
        if req.variables is not None:
            self._need_template(arm, "prompt")
            return [self._render(arm, req.variables)]
        return [req.prompt] if isinstance(req.prompt, str) else list(req.prompt or [])

    def chat_input(self, arm: Arm, req: ChatRequest) -> str:
        if req.variables is not None:
            self._need_template(arm, "messages")
            return self._render(arm, req.variables)
        messages = [{"role": m.role, "content": m.text} for m in req.messages or []]
        if arm.template is None:
            return self.format_chat(arm, messages)
        free = arm.template.required(arm.template_params)
        if not free and arm.template.format == "chat":  # a fixed system prompt: it goes before the conversation
            fixed = arm.template.render(dict(arm.template_params), where=arm.template_ref or "prompt")
            return self.format_chat(arm, [*fixed, *messages])
        if len(free) != 1:
            raise RequestError(
                f"the deployed prompt {arm.template_ref} needs variables {', '.join(free) or '(none)'}; "
                "send them as `variables`",
                param="variables",
            )
        user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), None)
        if user is None:
            raise RequestError("messages must contain a user message to fill the deployed prompt", param="messages")
        return self._render(arm, {free[0]: user})

    def params(self, arm: Arm, req: Any, prompt_tokens: list[int], limit: int | None, default: int) -> GenParams:
        """Generation settings; too-long inputs are rejected here, before anything is queued."""
        window = arm.context_window
        longest = max(prompt_tokens)
        param = "messages" if isinstance(req, ChatRequest) and req.variables is None else "prompt"
        if longest >= window:
            raise RequestError(
                f"this model's maximum context length is {window} tokens; your input has {longest}",
                param=param,
                code="context_length_exceeded",
            )
        if limit is not None and longest + limit > window:
            raise RequestError(
                f"this model's maximum context length is {window} tokens; you asked for {longest} in the input "
                f"and {limit} in the completion; reduce one",
                param="max_tokens",
                code="context_length_exceeded",
            )
        if req.top_k_logprobs is not None and arm.batcher.mode != "continuous":
            raise RequestError(
                "logprobs need continuous batching; this deployment runs with --batching static", param="logprobs"
            )
        temperature = 1.0 if req.temperature is None else req.temperature
        max_tokens = limit if limit is not None else min(default, window - longest)
        return GenParams(
            max_tokens=max_tokens,
            temperature=temperature,
            top_p=1.0 if req.top_p is None else req.top_p,
            seed=req.seed,
            stop=req.stops(),
            min_tokens=max_tokens if req.ignore_eos else min(req.min_tokens or 0, max_tokens),
            logprobs=req.top_k_logprobs,
        )

    # ------------------------------------------------------------------ bookkeeping

    def observe(self, row: dict[str, Any]) -> None:
        """One finished (or rejected) request: Prometheus, the request log and W&B."""
        self.metrics.observe_request(
            row["endpoint"],
            row.get("arm"),
            row["status"],
            (row.get("latency_ms") or 0) / 1000.0,
            _seconds(row.get("ttft_ms")),
            int(row.get("prompt_tokens") or 0),
            int(row.get("completion_tokens") or 0),
            _seconds(row.get("tpot_ms")),
            _seconds(row.get("queue_ms")),
        )
        self.log.record(row)
        self.reporter.add(row)

    def refresh_depth(self) -> None:
        for arm in self.arms.values():
            self.metrics.set_depth(arm.label, arm.batcher.depth)

    def close(self) -> None:
        for arm in self.arms.values():
            arm.batcher.close()
        self.log.close()
        self.reporter.close()
