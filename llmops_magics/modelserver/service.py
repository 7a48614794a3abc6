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
import re
import time
from collections.abc import Mapping
from typing import Any

from ..errors import RenderError
from ..ops.deploy import DeploySpec
from .batcher import GenParams, ShuttingDown
from .models import BASE, Arm, Engine, adapter_source, check_base, make_batcher, template_for
from .protocol import ChatRequest, CompletionRequest, RequestError

__all__ = ["Arm", "Service"]

_ADAPTER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,127}")

COMPLETION_DEFAULT_TOKENS = 16


def default_threads() -> int:
    """Half the cores, at most 8: torch spreading small matrix work over every core of a
    busy machine spends it in spin-waits (measured here: 2 threads on 2 shared cores ran
    the tiny model 7x slower than 1); the rest is left to the HTTP loop and neighbours."""
    return max(1, min(8, (os.cpu_count() or 2) // 2))


def _seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000.0


class Service:
    """Everything one server process needs to answer requests (the FastAPI app is a thin shell on it)."""

    def __init__(
        self, spec: DeploySpec, ref: str | None, arms: list[Arm], metrics: Any, log: Any, reporter: Any
    ) -> None:
        from .routing import CanaryRouter

        self.spec, self.ref, self.arms = spec, ref, {a.label: a for a in arms}
        self.metrics, self.log, self.reporter = metrics, log, reporter
        self.router = CanaryRouter(spec.name, [(a.label, a.weight) for a in arms if not a.by_name])
        self.started = time.time()
        self.api_key_sha256: str | None = None
        self.admin_sha256: str | None = None
        self.registry: Any = None
        self.prompt: Any = None

    # ------------------------------------------------------------------ building

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> Service:
        """Load the models named in a runtime config (see ``lifecycle.runtime_config``)."""
        from ..context.workspaces import Settings, Workspace
        from ..governance.filters import LogRedactor
        from ..models.loading import load_model, resolve_model_source
        from ..prompts import get_prompt
        from ..serving.requestlog import NoRequestLog, RequestLog, monitor_path
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
        engines: dict[str, Engine] = {}
        arms = []
        for label, ref, weight in plan:
            art = reg.resolve(ref)
            src = resolve_model_source(art, ws)
            key = src.base_artifact.digest if src.base_artifact is not None else str(src.base_path)
            engine = engines.get(key)
            if engine is None:  # the first version on this base loads it (with its adapter, as "default")
                loaded = load_model(art, workspace=ws)
                on_batch = lambda n, depth, label=label: metrics.observe_batch(label, n, depth)
                engine = engines[key] = Engine(key, loaded, make_batcher(loaded, spec, label, on_batch))
                adapter = "default" if src.adapter_path is not None else BASE
                if adapter:
                    engine.adapters[adapter] = str(src.adapter_path)
            else:  # another adapter on a base already in memory: one more adapter, not one more model
                adapter = engine.attach(src.adapter_path) if src.adapter_path is not None else BASE
            template, tref, params = template_for(art, prompt)
            arms.append(Arm(label, art, engine, adapter, weight, template, tref, params))
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
        redact = LogRedactor() if spec.log_text and spec.redact_log else None  # built on the first logged batch
        db = monitor_path(rt["home"], spec.name)
        if spec.request_log:
            log = RequestLog(db, log_text=spec.log_text, salt=spec.name, redact=redact)
        else:  # --no-request-log: no writer thread, no file; the feedback route refuses
            log = NoRequestLog(db, salt=spec.name)
        service = cls(spec, rt.get("artifact"), arms, metrics, log, reporter)
        service.api_key_sha256 = rt.get("api_key_sha256")
        service.admin_sha256 = rt.get("admin_sha256")
        service.registry, service.prompt = reg, prompt
        for entry in spec.adapters:  # adapters served by name, loaded before the first request
            name, _, ref = entry.partition("=")
            service.attach_now(name, ref)
        return service

    # ------------------------------------------------------------------ routing

    def pick(self, model: str, user: str | None) -> Arm:
        """The deployment's name (or its artifact ref) routes by the split; an arm's version or an
        adapter's name pins that arm. An adapter being unloaded takes no new requests."""
        if model in (self.spec.name, self.ref, f"deployment://{self.spec.name}"):
            return self.arms[self.router.choose(user)]
        named = self.arms.get(model)
        if named is not None and named.by_name and not named.draining:
            return named
        for arm in self.arms.values():
            if model == arm.version and not arm.draining:
                return arm
        primary = self.arms["primary"]
        if model == primary.artifact.name:
            return self.arms[self.router.choose(user)]
        live = [a for a in self.arms.values() if not a.draining]
        known = ", ".join([self.spec.name, *(a.label if a.by_name else a.version for a in live)])
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
                "arms": {a.label: {"version": a.version, "weight": a.weight} for a in self.split},
            },
        }
        return [head, *(a.describe() for a in self.arms.values() if not a.draining)]

    @property
    def split(self) -> list[Arm]:
        """The arms the deployment's traffic is split over (primary, canary)."""
        return [a for a in self.arms.values() if not a.by_name]

    @property
    def engines(self) -> list[Engine]:
        return list({id(a.engine): a.engine for a in self.arms.values()}.values())

    # ------------------------------------------------------------------ adapters by name

    def _new_name(self, name: str) -> None:
        if not _ADAPTER_NAME.fullmatch(name):
            raise RequestError(
                f"lora_name must be 1-128 letters, digits, '.', '_', '-' or '/', found {name!r}", param="lora_name"
            )
        taken = {self.spec.name, "primary", "canary", *self.arms, *(a.version for a in self.arms.values())}
        if name in taken:
            raise RequestError(f"the lora adapter {name!r} has already been loaded", param="lora_name")

    def _engine_for(self, art: Any) -> Engine:
        wanted = art.metadata.get("base_digest") if art is not None else None
        for engine in self.engines:
            if wanted and engine.key == wanted:
                return engine
        return self.arms["primary"].engine  # check_base refuses an adapter of another base

    def _named(self, name: str, art: Any, folder: Any, engine: Engine, adapter: str) -> Arm:
        template, tref, params = template_for(art, self.prompt)
        arm = Arm(name, art, engine, adapter, 0.0, template, tref, params, folder=str(folder))
        self.arms[name] = arm
        return arm

    def attach_now(self, name: str, where: str) -> Arm:
        """Load an adapter by name before serving (the deployment's ``--adapter NAME=REF``)."""
        self._new_name(name)
        art, folder = adapter_source(self.registry, where)
        engine = self._engine_for(art)
        check_base(engine, art, folder)
        return self._named(
            name, art, folder, engine, engine.batcher.run_between(lambda: engine.attach(folder)).result()
        )

    async def load_adapter(self, name: str, where: str) -> dict[str, Any]:
        """``POST /v1/load_lora_adapter``: 404 for an unknown reference, 400 for what is not an adapter of this base."""
        import asyncio

        from starlette.concurrency import run_in_threadpool

        self._new_name(name)
        art, folder = await run_in_threadpool(adapter_source, self.registry, where)
        engine = self._engine_for(art)
        check_base(engine, art, folder)
        try:
            adapter = await asyncio.wrap_future(engine.batcher.run_between(lambda: engine.attach(folder)))
        except ShuttingDown:
            raise
        except Exception as exc:  # shapes or target modules that do not fit this base
            raise RequestError(
                f"{where} is not an adapter for {engine.base_label}: {type(exc).__name__}: {str(exc)[:300]}",
                param="lora_path",
                code="wrong_base_model",
            ) from None
        if name in self.arms:  # loaded by a concurrent request meanwhile
            await asyncio.wrap_future(engine.batcher.run_between(lambda: engine.detach(adapter)))
            raise RequestError(f"the lora adapter {name!r} has already been loaded", param="lora_name")
        arm = self._named(name, art, folder, engine, adapter)
        return {"object": "lora_adapter", "lora_name": name, "version": arm.version, "base": engine.base_label}

    async def unload_adapter(self, name: str) -> dict[str, Any]:
        """``POST /v1/unload_lora_adapter``: new requests for it are refused, those in flight finish first."""
        import asyncio

        arm = self.arms.get(name)
        if arm is not None and not arm.by_name:
            raise RequestError(
                f"{name!r} serves {arm.weight:g}% of {self.spec.name}'s traffic; promote or roll back instead",
                param="lora_name",
            )
        if arm is None or arm.draining:
            raise RequestError(f"the lora adapter {name!r} cannot be found", status=404, param="lora_name")
        arm.draining = True
        while arm.inflight:
            await asyncio.sleep(0.01)
        await asyncio.wrap_future(arm.batcher.run_between(lambda: arm.engine.detach(arm.adapter)))
        self.arms.pop(name, None)
        return {"object": "lora_adapter", "lora_name": name, "unloaded": True}

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
                if not a.draining
            ],
            "engines": [{"base": e.base_label, "adapters": sorted(e.adapters)} for e in self.engines],
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
        for engine in self.engines:
            engine.batcher.close()
        self.log.close()
        self.reporter.close()
