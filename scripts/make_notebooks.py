"""Write the example notebooks from plain cell lists, so their source is reviewable here.

Run: .venv/bin/python scripts/make_notebooks.py 01   (writes notebooks/01-prompts.ipynb)
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from notebook_02_finetune import FINETUNE
from notebook_05_monitor_retrain import MONITOR_RETRAIN

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

PROMPTS = [
    (
        "md",
        "# 01 · Versioned prompts\n\nPrompts are versioned artifacts in the project's registry (`.llmops/`): "
        "every change is a new immutable version with a content digest, aliases such as `production` are movable "
        "pointers, and each version is mirrored to W&B (offline unless you choose online; `wandb sync` later).",
    ),
    ("code", "%load_ext llmops_magics\nimport llmops_magics as lm"),
    (
        "md",
        "A `%%prompt` cell saves its body (a Jinja2 template) as a new version, unless this exact template "
        "and params are already stored. Undefined variables are an error at render time.",
    ),
    (
        "code",
        '%%prompt capital-qa --alias staging --description "terse answer"\n'
        "Answer in one word.\nQuestion: What is the capital of {{ country }}?\nAnswer:",
    ),
    (
        "code",
        "%%prompt capital-qa --alias candidate --param style=formal\n"
        "Answer in one word, in a {{ style }} style.\nQuestion: What is the capital of {{ country }}?\nAnswer:",
    ),
    ("md", "Running the same cell again changes nothing: the result says `unchanged`."),
    (
        "code",
        "%%prompt capital-qa --alias candidate --param style=formal\n"
        "Answer in one word, in a {{ style }} style.\nQuestion: What is the capital of {{ country }}?\nAnswer:",
    ),
    ("code", "%prompt list"),
    ("code", "%prompt diff capital-qa@staging capital-qa@candidate"),
    ("md", "Promote the candidate: `production` now points at it (and the move is mirrored to W&B)."),
    ("code", "%prompt tag capital-qa@candidate production"),
    ("code", "%prompt render capital-qa@production country=Brouria"),
    (
        "md",
        "Chat prompts: a body whose first line is `system:`, `user:` or `assistant:` is a list of messages. "
        "Each message is rendered on its own, so a variable cannot inject a role.",
    ),
    (
        "code",
        "%%prompt capital-chat\nsystem:\nYou answer with a single word.\nuser:\nWhat is the capital of {{ country }}?",
    ),
    ("code", "%prompt render capital-chat country=Brouria"),
    ("md", "The same powers from Python, for scripts and CI:"),
    (
        "code",
        'p = lm.get_prompt("capital-qa@production")\n'
        "print(p.ref, p.variables, dict(p.params))\n"
        'text = p.render(country="Zorbia")\n'
        'assert "formal" in text and "Zorbia" in text\n'
        "text",
    ),
    ("code", 'try:\n    p.render()\nexcept lm.RenderError as err:\n    print("RenderError:", err)'),
    ("code", "%prompt history capital-qa"),
    ("md", "W&B mirroring runs in the background so cells never wait on it; `flush()` waits (bounded)."),
    ("code", 'assert lm.flush(120)\nlm.registry().resolve("prompt://capital-qa@production").wandb'),
    ("code", "print(lm.registry().verify())"),
]


def build(cells) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [new_markdown_cell(src) if kind == "md" else new_code_cell(src) for kind, src in cells]
    return nb


ALL = {
    "01": ("01-prompts.ipynb", PROMPTS),
    "02": ("02-finetune.ipynb", FINETUNE),
    "05": ("05-monitor-retrain.ipynb", MONITOR_RETRAIN),
}


if __name__ == "__main__":
    for key in sys.argv[1:] or ALL:
        name, cells = ALL[key]
        nbformat.write(build(cells), NOTEBOOKS / name)
        print("wrote", NOTEBOOKS / name)
