"""Run a plan as N processes under ``torchrun`` or ``accelerate launch``, from a job thread.

The commands are the ones measured to really start N processes on CPU (gloo):
``torchrun --standalone --nproc_per_node N`` and ``accelerate launch --multi_gpu
--num_processes N`` with ``use_cpu=True`` in the training arguments. Beware
``accelerate launch --cpu --num_processes N``: it silently runs one process.
``OMP_NUM_THREADS=1`` keeps N processes from fighting over the same cores.

The parent tails rank 0's ``progress.jsonl``, forwards each event, turns a
cancel into a ``cancel`` file (the ranks checkpoint and stop together), and if the
launcher does not exit within ``grace`` seconds after that, ends its process
group.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import JobError

__all__ = ["launch_command", "run_launcher"]

POLL_SECONDS = 0.2


def launch_command(launcher: str, nproc: int, plan_path: Path, port: int | None = None) -> list[str]:
    """The command line that starts ``nproc`` workers on ``plan_path``."""
    worker = ["-m", "llmops_magics.finetuning.worker", str(plan_path)]
    if launcher == "torchrun":
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *worker]
    if launcher == "accelerate":
        return [
            sys.executable,
            "-m",
            "accelerate.commands.launch",
            "--multi_gpu",
            f"--num_processes={nproc}",
            "--num_machines=1",
            "--mixed_precision=no",
            "--dynamo_backend=no",
            f"--main_process_port={port or _free_port()}",
            *worker,
        ]
    raise JobError(f"unknown launcher {launcher!r}")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(cuda: bool) -> dict[str, str]:
    env = dict(os.environ)
    package_parent = str(Path(__file__).resolve().parents[2])  # workers import us even from a source tree
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    env.update(PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false", WANDB_MODE="disabled", HF_HUB_OFFLINE="1")
    if not cuda:
        env["OMP_NUM_THREADS"] = "1"
    return env


class _Tail:
    """Reads whole JSON lines appended to a file since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read()
        self.offset += len(chunk)
        data = self.partial + chunk
        lines = data.split(b"\n")
        self.partial = lines.pop()
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    useful = [ln for ln in text if ln.strip() and "warn" not in ln.lower()]
    return "\n".join((useful or text)[-lines:])


def run_launcher(
    plan: Mapping[str, Any],
    emit: Callable[[Mapping[str, Any]], None],
    should_stop: Callable[[], bool],
    grace: float = 120.0,
) -> dict[str, Any]:
    """Start the launcher on ``plan`` and follow it to the end; returns rank 0's outcome."""
    import torch

    run_dir = Path(plan["run_dir"])
    plan_path = run_dir / "plan.json"
    plan_path.write_text(json.dumps(plan, indent=1, default=str))
    for stale in ("outcome.json", "cancel", "progress.jsonl"):
        (run_dir / stale).unlink(missing_ok=True)
    spec = plan["spec"]
    cmd = launch_command(spec["launcher"], spec["nproc"], plan_path)
    log_path = run_dir / "launcher.log"
    emit({"type": "message", "text": f"launching {spec['nproc']} processes with {spec['launcher']}"})
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=str(run_dir),
            env=_env(torch.cuda.is_available()),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    tail = _Tail(run_dir / "progress.jsonl")
    cancel_sent: float | None = None
    try:
        while proc.poll() is None:
            for event in tail.read():
                emit(event)
            if should_stop() and cancel_sent is None:
                (run_dir / "cancel").touch()
                cancel_sent = time.monotonic()
            if cancel_sent is not None and time.monotonic() - cancel_sent > grace:
                _kill(proc)
            time.sleep(POLL_SECONDS)
    except BaseException:
        _kill(proc)
        raise
    for event in tail.read():
        emit(event)
    outcome_file = run_dir / "outcome.json"
    if proc.returncode != 0 or not outcome_file.is_file():
        raise JobError(
            f"{spec['launcher']} exited with status {proc.returncode}; the log is {log_path}:\n{_log_tail(log_path)}"
        )
    return json.loads(outcome_file.read_text())


def _kill(proc: subprocess.Popen) -> None:
    """End the launcher and its workers (they share its session), politely first."""
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
