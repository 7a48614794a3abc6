"""W&B unreachable, silent, refusing, or its service killed: the process still ends within its bound.

Each case runs a real process that saves with W&B online (or offline) against a server on
127.0.0.1 that misbehaves, and checks what must hold afterwards: the process exits within
the exit bound (plus start-up), one warning names what was not mirrored and how to mirror
it later, and the local registry holds everything, intact. Before the bound existed, an
unreachable server kept such a process alive for about 121 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmops_magics.store import Registry

from .servers import Refusing, Silent, closed_port

pytestmark = pytest.mark.faults

CHILD = Path(__file__).with_name("wandb_child.py")
BOUND = 4.0
START_UP = 25.0  # python, llmops_magics and wandb imports, the W&B service start, on a loaded 2-core machine


def _env(tmp_path: Path, url: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "LLMOPS_"))}
    for var in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):
        folder = tmp_path / var.lower()
        folder.mkdir(exist_ok=True)
        env[var] = str(folder)
    env.update(WANDB_SILENT="true", HF_HUB_OFFLINE="1")
    if url is not None:
        env.update(WANDB_API_KEY="x" * 40, WANDB_BASE_URL=url)
    return env


def run_child(tmp_path: Path, url: str | None, mode: str = "online", *extra: str):
    home = tmp_path / ".llmops"
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(CHILD), str(home), str(BOUND), mode, *extra],
        env=_env(tmp_path, url),
        capture_output=True,
        text=True,
        timeout=100,
    )
    return proc, time.monotonic() - started, home


def _holds_everything(home: Path) -> None:
    reg = Registry(home)
    try:
        assert [a.ref for a in reg.all_artifacts()] == ["prompt://a/1", "prompt://b/1"]
        assert reg.verify().ok
    finally:
        reg.close()


@pytest.mark.parametrize("fault", ["unreachable", "silent"])
def test_a_process_whose_wandb_never_answers_exits_within_the_bound(tmp_path, fault):
    server = Silent() if fault == "silent" else None
    url = server.url if server else f"http://127.0.0.1:{closed_port()}"
    try:
        proc, seconds, home = run_child(tmp_path, url)
    finally:
        if server:
            server.close()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert seconds < BOUND + START_UP, seconds
    assert "did not finish within the 4 s exit bound" in proc.stderr
    assert "prompt://a/1" in proc.stderr and "llmops sync" in proc.stderr
    _holds_everything(home)
    assert not _orphans(tmp_path)


def test_a_wandb_server_that_refuses_every_call_costs_warnings_not_the_record(tmp_path):
    server = Refusing(401)
    try:
        proc, seconds, home = run_child(tmp_path, server.url)
    finally:
        server.close()
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert seconds < BOUND + START_UP, seconds
    assert "RecordingWarning" in proc.stderr
    _holds_everything(home)


def test_a_killed_wandb_service_costs_warnings_not_the_record(tmp_path):
    proc, seconds, home = run_child(tmp_path, None, "offline", "kill-core")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "killed wandb-core" in proc.stdout
    assert seconds < BOUND + START_UP + 10, seconds  # the first mirror is waited for in full
    _holds_everything(home)
    reg = Registry(home)
    try:
        assert reg.resolve("prompt://a/1").wandb.get("run_id")  # mirrored before the kill
    finally:
        reg.close()


def test_what_was_left_is_mirrored_later_with_llmops_sync(tmp_path, monkeypatch):
    from llmops_magics.adapters.cli import main as cli

    proc, _, home = run_child(tmp_path, f"http://127.0.0.1:{closed_port()}")
    assert proc.returncode == 0
    for key, value in _env(tmp_path, None).items():
        if key.startswith("WANDB_"):
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("LLMOPS_WANDB_MODE", "offline")
    assert cli(["--home", str(home), "sync", "--timeout", "120"]) == 0
    reg = Registry(home)
    try:
        assert reg.unmirrored() == []
        assert {a.wandb.get("mode") for a in reg.all_artifacts()} == {"offline"}
    finally:
        reg.close()
    assert cli(["--home", str(home), "sync"]) == 0  # nothing left: a no-op


def _orphans(tmp_path: Path) -> list[int]:
    """wandb-core processes still running for a child that has exited."""
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes()
                env = (proc / "environ").read_bytes()
            except OSError:
                continue
            if b"wandb-core" in cmd and str(tmp_path).encode() in env:
                out.append(int(proc.name))
    return out
