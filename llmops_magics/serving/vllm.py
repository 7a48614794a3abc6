"""The vLLM engine: the same deployment as a ``vllm serve`` command, for GPU machines.

vLLM serves the OpenAI API itself, so a deployment maps onto its flags: the base
model folder, the adapter as a LoRA module named after the deployment (clients
send ``model=NAME`` as they do to the built-in server), ``--max-num-seqs`` from
the batch size, ``--max-model-len`` from the model's context, and the deployed
prompt turned into a chat template (a prompt with one free variable is filled
from the last user message, as the built-in server does). The API key goes in
``VLLM_API_KEY``, never on the command line where ``ps`` would show it.

Where ``vllm`` is installed, ``deploy(..., engine="vllm")`` launches it like the
built-in server; anywhere, ``export_vllm`` writes a folder (weights, adapter,
chat template, ``serve.sh``, ``deployment.json``) to copy to a GPU machine. vLLM
supports LoRA for the architectures it implements it for (Llama, Mistral, Qwen…);
for others (the tiny GPT-2) export with ``merge=True`` to serve merged weights.
"""

from __future__ import annotations

import json
import shlex
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..display.html import esc, kv_html, mimebundle
from ..errors import ValidationError
from ..ops.deploy import DeploySpec

__all__ = ["LORA_RANKS", "VllmExport", "vllm_command", "chat_template_for", "export_vllm", "check_vllm_available"]

LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)


def check_vllm_available() -> str:
    exe = shutil.which("vllm")
    if exe is None:
        raise ValidationError(
            "the vllm engine needs the `vllm` command (pip install vllm, on a GPU machine); "
            "to prepare it here, export instead: %deploy REF --engine vllm --export DIR"
        )
    return exe


def _lora_rank(adapter: Path) -> int:
    cfg = adapter / "adapter_config.json"
    r = int(json.loads(cfg.read_text()).get("r", 8)) if cfg.is_file() else 8
    return next((x for x in LORA_RANKS if x >= r), r)


def _context_window(base: Path) -> int | None:
    cfg = base / "config.json"
    if not cfg.is_file():
        return None
    data = json.loads(cfg.read_text())
    value = data.get("max_position_embeddings") or data.get("n_positions")
    return int(value) if value else None


def _jinja_literal(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value)


def chat_template_for(template: str | None, params: Mapping[str, Any] | None = None) -> str | None:
    """A Hugging Face chat template that renders ``template`` with its one free variable
    taken from the last user message; None when ``template`` is not a one-variable text prompt."""
    if not template:
        return None
    from ..prompts.template import parse_template

    parsed = parse_template(template)
    free = parsed.required(params or {})
    if parsed.format != "text" or len(free) != 1:
        return None
    head = "".join(f"{{%- set {k} = {_jinja_literal(v)} -%}}" for k, v in (params or {}).items())
    pick = f"{{%- set {free[0]} = (messages | selectattr('role', 'equalto', 'user') | list | last)['content'] -%}}"
    return head + pick + template


def vllm_command(
    spec: DeploySpec,
    *,
    base_path: str | Path,
    adapter_path: str | Path | None = None,
    lora_rank: int | None = None,
    context_window: int | None = None,
    chat_template: str | Path | None = None,
    port: int | None = None,
) -> list[str]:
    """``vllm serve …`` for ``spec`` (paths as given: absolute here, relative in an export)."""
    cmd = ["vllm", "serve", str(base_path), "--host", spec.host, "--port", str(port or spec.port or 8000)]
    if adapter_path is not None:
        cmd += ["--served-model-name", f"{spec.name}-base", "--enable-lora"]
        cmd += ["--lora-modules", f"{spec.name}={adapter_path}", "--max-lora-rank", str(lora_rank or 16)]
    else:
        cmd += ["--served-model-name", spec.name]
    cmd += ["--max-num-seqs", str(spec.max_batch_size), "--seed", "0"]
    if context_window:
        cmd += ["--max-model-len", str(context_window)]
    if chat_template is not None:
        cmd += ["--chat-template", str(chat_template)]
    if spec.replicas > 1:
        cmd += ["--data-parallel-size", str(spec.replicas)]
    return cmd


@dataclass(frozen=True)
class VllmExport:
    """A folder ready to copy to a GPU machine and run with ``./serve.sh``."""

    folder: Path
    command: list[str]
    spec: DeploySpec

    @property
    def shell(self) -> str:
        return shlex.join(self.command)

    def __str__(self) -> str:
        return f"vLLM export of {self.spec.name} in {self.folder}\nrun there: cd {self.folder.name} && ./serve.sh\n{self.shell}"

    def _repr_mimebundle_(self, include=None, exclude=None):
        body = kv_html({"deployment": self.spec.name, "folder": self.folder, "serves": self.spec.target})
        return mimebundle(str(self), body + f"<pre>{esc(self.shell)}</pre>")


def _template_text(ws: Any, spec: DeploySpec, art: Any) -> tuple[str | None, dict]:
    if spec.prompt:
        from ..prompts import get_prompt

        p = get_prompt(spec.prompt, workspace=ws)
        return p.template, dict(p.params)
    return art.metadata.get("prompt_template"), {}


def export_vllm(spec: DeploySpec, dest: str | Path, *, merge: bool = False, workspace: Any = None) -> VllmExport:
    """Write ``dest/`` with the weights, the adapter (or merged weights), the chat template,
    ``deployment.json`` and ``serve.sh``; nothing is started."""
    from ..context.workspaces import current
    from ..models.loading import resolve_model_source

    ws = workspace or current()
    art = ws.registry.resolve(spec.target)
    src = resolve_model_source(art, ws)
    dest = Path(dest).expanduser().resolve()
    if dest.exists() and any(dest.iterdir()):
        raise ValidationError(f"export folder {dest} is not empty")
    dest.mkdir(parents=True, exist_ok=True)
    adapter = None
    if src.adapter_path is not None and merge:
        from ..models.loading import load_model

        loaded = load_model(art, device="cpu", merge=True, workspace=ws)
        loaded.model.save_pretrained(dest / "model")
        loaded.tokenizer.save_pretrained(dest / "model")
    else:
        shutil.copytree(src.base_path, dest / "model")
        if src.adapter_path is not None:
            shutil.copytree(src.adapter_path, dest / "adapter")
            adapter = Path("adapter")
    text, params = _template_text(ws, spec, art)
    chat = chat_template_for(text, params)
    if chat is not None:
        (dest / "chat_template.jinja").write_text(chat)
    command = vllm_command(
        spec,
        base_path="model",
        adapter_path=adapter,
        lora_rank=_lora_rank(dest / "adapter") if adapter else None,
        context_window=_context_window(dest / "model"),
        chat_template="chat_template.jinja" if chat is not None else None,
    )
    (dest / "deployment.json").write_text(json.dumps(spec.to_dict(), indent=1, sort_keys=True))
    script = (
        "#!/usr/bin/env bash\n# Serve this deployment with vLLM (GPU). Set VLLM_API_KEY to require a key.\n"
        f'set -euo pipefail\ncd "$(dirname "$0")"\nexec {shlex.join(command)} "$@"\n'
    )
    (dest / "serve.sh").write_text(script)
    (dest / "serve.sh").chmod(0o755)
    return VllmExport(dest, command, spec)


def launch_vllm(
    ws: Any,
    spec: DeploySpec,
    config: Mapping[str, Any],
    folder: Path,
    *,
    timeout: float,
    on_spawn: Callable[[int], None] | None = None,
    api_key: str | None = None,
):
    """Run ``vllm serve`` for ``spec`` from the registry's own checkouts, like the built-in server."""
    from ..models.loading import resolve_model_source
    from .launcher import free_port, launch

    exe = check_vllm_available()
    art = ws.registry.resolve(spec.target)
    src = resolve_model_source(art, ws)
    text, params = _template_text(ws, spec, art)
    chat = chat_template_for(text, params)
    folder.mkdir(parents=True, exist_ok=True)
    template_path = None
    if chat is not None:
        template_path = folder / "chat_template.jinja"
        template_path.write_text(chat)
    port = spec.port or free_port(spec.host)
    command = vllm_command(
        spec,
        base_path=src.base_path,
        adapter_path=src.adapter_path,
        lora_rank=_lora_rank(src.adapter_path) if src.adapter_path else None,
        context_window=_context_window(src.base_path),
        chat_template=template_path,
        port=port,
    )
    command[0] = exe
    env = {"VLLM_API_KEY": api_key} if api_key else {}
    return launch(
        config,
        folder,
        name=spec.name,
        command=command,
        port=port,
        host=spec.host,
        expect_pid=False,
        timeout=max(timeout, 900.0),
        on_spawn=on_spawn,
        env=env,
    )
