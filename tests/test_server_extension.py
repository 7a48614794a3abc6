"""The server extension and the labextension are installed, enabled, and cost nothing at import."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import llmops_magics

ROOT = Path(__file__).resolve().parent.parent
JUPYTER = str(Path(sys.executable).with_name("jupyter"))
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _run(*args: str) -> str:
    out = subprocess.run(args, capture_output=True, text=True, timeout=180)
    return ANSI.sub("", out.stdout + out.stderr)


def test_package_declares_the_server_extension_and_the_labextension():
    assert llmops_magics._jupyter_server_extension_points() == [{"module": "llmops_magics.adapters.jupyter"}]
    assert llmops_magics._jupyter_labextension_paths() == [{"src": "labextension", "dest": "llmops-magics"}]


def test_declaring_the_extensions_imports_no_server_code():
    code = (
        "import sys, llmops_magics as m; m._jupyter_server_extension_points(); m._jupyter_labextension_paths(); "
        "import llmops_magics.adapters.jupyter.browse; "
        "print(sorted(x for x in ('tornado', 'jupyter_server', 'IPython', 'torch') if x in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "[]"


def test_jupyter_server_lists_the_server_extension_enabled():
    listing = _run(JUPYTER, "server", "extension", "list")
    assert re.search(r"llmops_magics\s+enabled", listing), listing
    assert re.search(r"llmops_magics\s+\S+\s+OK", listing), listing


def test_jupyter_lab_lists_the_labextension_enabled():
    listing = _run(JUPYTER, "labextension", "list")
    assert re.search(r"llmops-magics v\S+ enabled\s+OK", listing), listing


def test_the_labextension_version_follows_the_python_package():
    package = json.loads((ROOT / "labextension" / "package.json").read_text())
    assert package["version"] == llmops_magics.__version__
    assert package["jupyterlab"]["outputDir"] == "../llmops_magics/labextension"
