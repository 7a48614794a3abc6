"""Shared fixtures: every test gets its own registry and W&B folders under tmp_path.

Nothing here fakes W&B, transformers or the HTTP server: tests that need them use
the real thing (W&B offline, tiny models on CPU, servers on 127.0.0.1).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Session fixtures of the %eval tests (tiny model, LoRA adapter, OpenAI-compatible server).
pytest_plugins = ["eval_support"]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.pop("WANDB_API_KEY", None)
os.environ.pop("WANDB_MODE", None)


@pytest.fixture
def wandb_env(tmp_path, monkeypatch):
    """W&B offline with every folder inside the test's workspace."""
    base = tmp_path / "wandb-home"
    for var, sub in (
        ("WANDB_DIR", "runs"),
        ("WANDB_DATA_DIR", "data"),
        ("WANDB_CACHE_DIR", "cache"),
        ("WANDB_CONFIG_DIR", "config"),
    ):
        (base / sub).mkdir(parents=True, exist_ok=True)
        monkeypatch.setenv(var, str(base / sub))
    monkeypatch.setenv("WANDB_MODE", "offline")
    return base / "runs"


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """A fresh registry with an in-memory recorder; the process-wide default points at it."""
    from llmops_magics.context import workspaces as context
    from llmops_magics.recording import MemoryRecorder

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path / ".llmops"))
    recorder = MemoryRecorder()
    ws = context.configure(home=str(tmp_path / ".llmops"), wandb_mode="disabled", recorder=recorder)
    ws.memory = recorder
    yield ws
    ws.close()
    context._current = None


@pytest.fixture
def wandb_workspace(tmp_path, monkeypatch, wandb_env):
    """A fresh registry recording to real W&B in offline mode."""
    from llmops_magics.context import workspaces as context

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path / ".llmops"))
    ws = context.configure(home=str(tmp_path / ".llmops"), wandb_mode="offline", wandb_project="tests")
    yield ws
    ws.close()
    context._current = None


def read_wandb_run(run_dir: str | Path) -> list[dict]:
    """Every record of an offline run, read back with W&B's own inspector."""
    exe = Path(sys.executable).with_name("wandb")
    out = subprocess.run(
        [str(exe), "leet", "inspect", "--json", str(run_dir)], capture_output=True, text=True, check=True, timeout=120
    )
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def ipython_shell():
    """The session's one test shell (``start_ipython`` returns it only on its first call)."""
    from IPython.testing import globalipapp

    globalipapp.start_ipython()
    return globalipapp.get_ipython()


@pytest.fixture
def ip(workspace):
    """A real IPython shell with the extension loaded, pointed at the test's registry."""
    shell = ipython_shell()
    shell.run_line_magic("load_ext", "llmops_magics")
    shell.run_line_magic("config", f"LLMOps.home = {str(workspace.home)!r}")
    yield shell
    shell.run_line_magic("unload_ext", "llmops_magics")
    shell.config.pop("LLMOps", None)  # %config values persist in the shared shell; the next test starts clean


# The tiny base model is built once per machine and shared by every test session, notebook and
# demo run (keyed by its spec); each test still registers it in its own registry.
os.environ.setdefault("LLMOPS_CACHE", str(ROOT / ".cache" / "llmops"))


@pytest.fixture(scope="session")
def tiny_model_dir():
    """The tiny base model's folder (built on first use, ~30 s of one core, then cached)."""
    from llmops_magics.models.tiny import cached_tiny_model

    return cached_tiny_model()


@pytest.fixture
def qa_dataset(workspace, tiny_model_dir):
    """The shipped QA task as ``dataset://qa/1`` (80/20 train/validation), next to a warm model cache."""
    from llmops_magics import save_dataset
    from llmops_magics.models import task_examples

    return save_dataset("qa", task_examples(), validation_fraction=0.2, seed=0)
