"""A process that saves two prompts with W&B recording, under a fault, then exits.

Run by ``test_wandb_faults.py``: ``python wandb_child.py HOME EXIT_BOUND MODE [kill-core]``.
With ``kill-core`` the W&B service process (``wandb-core``) is killed after the first
prompt is mirrored, before the second is saved. The parent measures how long the whole
process takes to end and reads what it printed.
"""

import os
import signal
import sys
import time
from pathlib import Path

import llmops_magics as lm


def wandb_core_children() -> list[int]:
    """Pids of the ``wandb-core`` processes this process started (they name us with ``--pid``)."""
    out = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmd = (proc / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(part.endswith(b"wandb-core") for part in cmd) and str(os.getpid()).encode() in cmd:
                out.append(int(proc.name))
    return out


home, exit_timeout, mode = sys.argv[1], float(sys.argv[2]), sys.argv[3]
started = time.perf_counter()
lm.configure(home=home, wandb_mode=mode, wandb_exit_timeout=exit_timeout)
lm.save_prompt("a", "A {{ q }}")
if "kill-core" in sys.argv[4:]:
    assert lm.flush(120), "the first mirror did not finish"
    cores = wandb_core_children()
    assert cores, "no wandb-core process to kill"
    for pid in cores:
        os.kill(pid, signal.SIGKILL)
    print(f"killed wandb-core {cores}", flush=True)
lm.save_prompt("b", "B {{ q }}")
print(f"saved in {time.perf_counter() - started:.2f}s", flush=True)
