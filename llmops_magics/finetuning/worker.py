"""One process of a distributed fine-tune: ``python -m llmops_magics.finetuning.worker PLAN.json``.

Started N times by ``torchrun`` or ``accelerate launch`` (see ``launch.py``). Every
rank trains; rank 0 appends its progress events as JSON lines to
``progress.jsonl`` (the notebook tails it into the same widget as an in-process
run) and writes ``outcome.json`` at the end. A ``cancel`` file in the run folder
asks every rank to checkpoint and stop. The parent process registers the result,
so the registry and W&B are only ever written from one process.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from .train import run_training

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m llmops_magics.finetuning.worker PLAN.json", file=sys.stderr)
        return 2
    plan = json.loads(Path(argv[0]).read_text())
    run_dir = Path(plan["run_dir"])
    rank = int(os.environ.get("RANK", "0"))
    cancel_file = run_dir / "cancel"
    progress = (run_dir / "progress.jsonl").open("a", encoding="utf-8") if rank == 0 else None

    def emit(event: Any) -> None:
        if progress is not None:
            progress.write(json.dumps({**event, "time": time.time()}) + "\n")
            progress.flush()

    try:
        outcome = run_training(plan, emit, cancel_file.exists)
    finally:
        if progress is not None:
            progress.close()
    if rank == 0:
        tmp = run_dir / ".outcome.json.tmp"
        tmp.write_text(json.dumps(outcome))
        tmp.replace(run_dir / "outcome.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
