"""Package-level promises: a fast, light %load_ext, an explicit public API, a working CLI."""

import json
import subprocess
import sys

import llmops_magics
from llmops_magics.adapters.cli import main as cli

HEAVY = ("torch", "transformers", "peft", "wandb", "pandas", "accelerate", "datasets", "fastapi", "ray", "tornado")

LOAD_IN_FRESH_SHELL = f"""
import json, sys
from IPython.testing.globalipapp import get_ipython
before = set(sys.modules)
ip = get_ipython()
ip.run_line_magic("load_ext", "llmops_magics")
heavy = sorted(m for m in {HEAVY!r} if m in sys.modules and m not in before)
magics = sorted(ip.magics_manager.magics["line"]) + sorted(ip.magics_manager.magics["cell"])
print(json.dumps({{"heavy": heavy, "has_prompt": "prompt" in magics}}))
"""


def test_load_ext_imports_no_heavy_library_in_a_fresh_process():
    out = subprocess.run([sys.executable, "-c", LOAD_IN_FRESH_SHELL], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"heavy": [], "has_prompt": True}


def test_every_public_name_resolves():
    for name in llmops_magics.__all__:
        assert getattr(llmops_magics, name) is not None, name


def test_the_public_api_is_exactly_what_all_lists():
    public = {n for n in dir(llmops_magics) if not n.startswith("_")}
    assert public == set(llmops_magics.__all__) - {"__version__"}


def test_the_cli_lists_shows_and_checks_the_registry(workspace, capsys):
    llmops_magics.save_prompt("qa", "Answer {{ q }}", aliases=["production"])
    home = str(workspace.home)
    assert cli(["--home", home, "list"]) == 0
    assert "production→1" in capsys.readouterr().out
    assert cli(["--home", home, "show", "qa@production"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["content"]["template"] == "Answer {{ q }}"
    assert cli(["--home", home, "doctor"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("OK: 1 artifact versions")


def test_the_cli_reports_bad_references_with_exit_status_2(workspace, capsys):
    assert workspace.registry.names() == []  # an empty registry, but one that exists
    assert cli(["--home", str(workspace.home), "show", "prompt://nope"]) == 2
    assert "no prompt is named 'nope'" in capsys.readouterr().err


def test_the_doctor_exits_1_on_a_damaged_registry(workspace, capsys):
    import os

    art = llmops_magics.save_prompt("qa", "Answer {{ q }}").artifact
    os.unlink(workspace.registry.blobs.path(art.payload))
    assert cli(["--home", str(workspace.home), "doctor"]) == 1
    assert "missing" in capsys.readouterr().out
