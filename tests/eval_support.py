"""Fixtures for the %eval tests: a real tiny model, a real LoRA adapter, a real OpenAI-compatible server.

Everything expensive is built once per session into a temporary folder and then
registered into each test's own workspace: the tiny GPT-2 (fewer pretraining steps
than the shipped one: the tests check mechanics, not quality) and a LoRA adapter
trained for a few dozen real steps with peft on the task's train split, saved the way
``%finetune`` saves one (PEFT folder plus tokenizer files, contract metadata).
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

TEMPLATE = "Question: {{ question }}\nAnswer:"
TEST_MODEL_STEPS = 60
ADAPTER_STEPS = 60


@dataclass(frozen=True)
class EvalModels:
    base: Path
    adapter: Path


def train_adapter(base: Path, dest: Path, steps: int = ADAPTER_STEPS, seed: int = 0, lr: float = 3e-3) -> Path:
    """A real LoRA fine-tune of ``base`` on the task's train split (what ``%finetune`` produces)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmops_magics.datasets.tables import split_rows
    from llmops_magics.models.world import task_examples

    torch.manual_seed(seed)
    tok = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base)
    config = LoraConfig(r=16, lora_alpha=32, target_modules=["c_attn", "c_proj"], fan_in_fan_out=True)
    model = get_peft_model(model, config)
    train = split_rows(task_examples(), 0.25, 0)["train"]

    def encode(row):
        prompt = tok.encode(f"Question: {row['question']}\nAnswer:")
        answer = [*tok.encode(f" {row['answer']}"), tok.eos_token_id]
        return prompt + answer, [-100] * len(prompt) + answer

    data = [encode(r) for r in train]
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    rng = random.Random(seed)
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two shared cores: one thread is faster than two contending ones
    for _ in range(steps):
        batch = rng.sample(data, 16)
        width = max(len(x) for x, _ in batch)
        ids = torch.tensor([x + [tok.pad_token_id] * (width - len(x)) for x, _ in batch])
        labels = torch.tensor([y + [-100] * (width - len(y)) for _, y in batch])
        mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x, _ in batch])
        model(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        opt.step()
        opt.zero_grad()
    torch.set_num_threads(threads)
    model.save_pretrained(dest)
    tok.save_pretrained(dest)
    return dest


@pytest.fixture(scope="session")
def eval_models(tmp_path_factory) -> EvalModels:
    from llmops_magics.models.tiny import TinyModelSpec, build_tiny_model

    root = tmp_path_factory.mktemp("eval-models")
    base = build_tiny_model(root / "tiny", TinyModelSpec(steps=TEST_MODEL_STEPS))
    adapter = train_adapter(base, root / "adapter")
    return EvalModels(base, adapter)


def register_models(ws, models: EvalModels, adapter_name: str = "qa-lora", **meta_overrides):
    """Register the base model and the adapter with the metadata contract of ``%finetune``."""
    from llmops_magics.models.loading import tokenizer_digest

    reg = ws.registry
    base = reg.save("model", "tiny-gpt2", path=models.base).artifact
    meta = {
        "base_model": base.ref,
        "base_digest": base.digest,
        "tokenizer_digest": tokenizer_digest(models.adapter),
        "chat_template": None,
        "prompt": None,
        "prompt_template": TEMPLATE,
        "target_column": "answer",
        "spec": {"steps": ADAPTER_STEPS},
        "seed": 0,
        "metrics": {},
        "wandb_run_id": None,
    }
    meta.update(meta_overrides)
    adapter = reg.save("adapter", adapter_name, path=models.adapter, metadata=meta, parents=[(base, "base")]).artifact
    return base, adapter


@contextmanager
def shared_workspace(home: Path, models: EvalModels, **settings):
    """A workspace with the models and the QA data, for module-scoped fixtures that share one run.

    It is never the process-wide default (function-scoped fixtures replace that, and
    close what they replace), so callers pass ``workspace=`` explicitly. ``settings``
    are ``Settings`` fields; without a ``wandb_mode`` the recorder is in memory.
    """
    from dataclasses import replace

    from llmops_magics import save_dataset
    from llmops_magics.context import workspaces as context
    from llmops_magics.models.world import task_examples
    from llmops_magics.recording import MemoryRecorder

    recorder = "default" if "wandb_mode" in settings else MemoryRecorder()
    settings.setdefault("wandb_mode", "disabled")
    ws = context.Workspace(replace(context.default_settings(), home=str(home), **settings), recorder)
    try:
        register_models(ws, models)
        save_dataset("qa-task", task_examples(), validation_fraction=0.25, seed=0, workspace=ws)
        yield ws
    finally:
        ws.close()


@pytest.fixture
def eval_ws(workspace, eval_models):
    """A workspace (memory recorder) holding the tiny model, the adapter and the QA data set."""
    from llmops_magics import save_dataset
    from llmops_magics.models.world import task_examples

    base, adapter = register_models(workspace, eval_models)
    save_dataset("qa-task", task_examples(), validation_fraction=0.25, seed=0, workspace=workspace)
    workspace.base, workspace.adapter = base, adapter
    return workspace


# ---------------------------------------------------------------------- a real OpenAI-compatible server


class OpenAIServer:
    """``/v1/models``, ``/v1/completions`` and ``/v1/chat/completions`` over the tiny model, on 127.0.0.1.

    One model call at a time (a lock); requests arrive concurrently and are answered in
    threads. ``api_key`` makes it demand ``Authorization: Bearer KEY``. ``requests``
    records every body, so tests can see what the client sent; ``models`` is what
    ``GET /v1/models`` lists.
    """

    def __init__(self, model_path: Path, api_key: str | None = None) -> None:
        from llmops_magics.models.loading import load_model

        self.loaded = load_model(model_path)
        self.api_key = api_key
        self.requests: list[dict] = []
        self.models: list[dict] = [{"id": "tiny", "object": "model"}]
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def complete(self, prompt: str, body: dict) -> tuple[str, int, int, str]:
        from llmops_magics.models.generation import generate

        with self._lock:
            g = generate(
                self.loaded,
                [prompt],
                max_new_tokens=int(body.get("max_tokens", 16)),
                temperature=float(body.get("temperature", 0.0)),
                seed=body.get("seed"),
                stop=body.get("stop") or (),
            )[0]
        return g.text, g.prompt_tokens, g.completion_tokens, g.finish_reason

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self) -> bool:
                if server.api_key and self.headers.get("Authorization") != f"Bearer {server.api_key}":
                    self._send(401, {"error": {"message": "invalid api key"}})
                    return False
                return True

            def do_GET(self):
                if not self._authorized():
                    return
                if self.path == "/v1/models":
                    self._send(200, {"object": "list", "data": server.models})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self):
                if not self._authorized():
                    return
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                server.requests.append({"path": self.path, **body})
                if self.path == "/v1/completions":
                    text, p, c, finish = server.complete(body["prompt"], body)
                    choice = {"index": 0, "text": text, "finish_reason": finish}
                elif self.path == "/v1/chat/completions":
                    prompt = "\n".join(f"{m['role']}: {m['content']}" for m in body["messages"]) + "\nassistant:"
                    text, p, c, finish = server.complete(prompt, body)
                    choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
                else:
                    self._send(404, {"error": {"message": "not found"}})
                    return
                usage = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
                self._send(200, {"model": body.get("model"), "choices": [choice], "usage": usage})

        return Handler

    def __enter__(self) -> OpenAIServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


class ScoringJudge:
    """A completions endpoint on 127.0.0.1 that replies ``score(prompt)`` to every prompt of a request.

    For tests of what a judge's verdicts do (the monitor's live quality, the A/B quality
    metric) and of what calls cost (``usage(prompt)`` gives a prompt's input and output
    tokens; without it a request reports 1 and 1), not of a model: ``calls`` counts the
    prompts answered, ``prompts`` keeps them in arrival order, ``url`` is its base.
    """

    def __init__(self, score: Callable[[str], str], usage: Callable[[str], tuple[int, int]] | None = None) -> None:
        judge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):
                self._send({"object": "list", "data": [{"id": "judge", "object": "model"}]})

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
                judge.calls += len(prompts)
                judge.prompts += prompts
                choices = [{"index": i, "text": score(p), "finish_reason": "stop"} for i, p in enumerate(prompts)]
                used = [usage(p) for p in prompts] if usage is not None else [(1, 1)]
                tokens = (sum(u[0] for u in used), sum(u[1] for u in used))
                usage_body = {"prompt_tokens": tokens[0], "completion_tokens": tokens[1], "total_tokens": sum(tokens)}
                self._send({"choices": choices, "usage": usage_body})

        self.calls = 0
        self.prompts: list[str] = []
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> ScoringJudge:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
