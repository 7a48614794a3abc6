"""A small, real registry for the server and browser tests: one artifact of each kind, linked.

prompt://qa (2 versions, ``production`` on 2) ─┐
dataset://tickets/1 ────────────────────────────┼─► adapter://qa-lora/1 ─► eval://qa-eval/1
model://tiny-base/1 ────────────────────────────┘                      └─► deployment://qa-svc/1
"""

from __future__ import annotations

import json
from pathlib import Path

HOSTILE = "<img src=x onerror=\"document.body.dataset.pwned='1'\"><b>bold</b>"


def populate(home: Path) -> dict[str, str]:
    """Write the sample artifacts into the registry at ``home``; returns their references."""
    from llmops_magics import save_prompt
    from llmops_magics.context.workspaces import Settings, Workspace

    ws = Workspace(Settings(home=str(home), wandb_mode="disabled"), recorder=None)
    reg = ws.registry
    try:
        save_prompt("qa", "Answer briefly: {{ question }}", description="first try", workspace=ws)
        p2 = save_prompt(
            "qa",
            "system:\nYou answer in one word.\nuser:\n{{ question }}",
            params={"question": "What is 2+2?"},
            aliases=["production"],
            description=HOSTILE,
            workspace=ws,
        )
        data = reg.save(
            "dataset",
            "tickets",
            data=json.dumps([{"q": "hi", "a": "hello"}]).encode(),
            metadata={"rows": 1, "columns": ["q", "a"]},
        ).artifact
        base = reg.save("model", "tiny-base", data=b"weights", metadata={"params": 3_000_000}).artifact
        adapter = reg.save(
            "adapter",
            "qa-lora",
            data=b"lora weights",
            metadata={"rank": 8, "note": HOSTILE},
            spec={
                "op": "finetune",
                "args": {"base": "model://tiny-base/1", "data": "dataset://tickets/1", "name": "qa-lora"},
                "command": "%finetune tiny-base --data tickets --prompt qa@production --name qa-lora",
            },
            parents=[(p2.artifact, "prompt"), (data, "data"), (base, "base")],
        ).artifact
        ev = reg.save(
            "eval",
            "qa-eval",
            data=b"eval rows",
            metadata={"summary": {"exact_match": 0.75, "rouge_l": 0.81}},
            parents=[(adapter, "evaluated")],
            aliases=["baseline"],
        ).artifact
        dep = reg.save("deployment", "qa-svc", data=b"spec", parents=[(adapter, "serves")]).artifact
    finally:
        ws.close()
    return {
        "prompt": p2.ref,
        "dataset": data.ref,
        "model": base.ref,
        "adapter": adapter.ref,
        "eval": ev.ref,
        "deployment": dep.ref,
    }
