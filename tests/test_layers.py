"""Who may import whom: the core never reaches the UI, not even lazily (see docs/ARCHITECTURE.md)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import llmops_magics

PACKAGE = Path(llmops_magics.__file__).parent
UI = ("IPython", "ipywidgets", "tornado", "jupyter_server")
ADAPTERS = PACKAGE / "adapters"


def _core_files() -> list[Path]:
    """Everything but the adapters, and the package root, whose extension hooks hand over to them."""
    root = PACKAGE / "__init__.py"
    return [p for p in sorted(PACKAGE.rglob("*.py")) if ADAPTERS not in p.parents and p != root]


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function, as an absolute name."""
    tree = ast.parse(path.read_text())
    out = set()
    package = _module(path) if path.name == "__init__.py" else _module(path).rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                out.add(".".join([*base, node.module] if node.module else base))
            else:
                out.add(node.module or "")
    return out


def test_no_core_module_imports_ui_code_even_inside_a_function():
    offenders = {
        str(p.relative_to(PACKAGE)): sorted(m for m in _imports(p) if m.split(".")[0] in UI or ".adapters" in m)
        for p in _core_files()
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_importing_every_core_module_in_a_fresh_process_loads_no_ui_library():
    modules = [_module(p) for p in _core_files()]
    code = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in {UI!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_the_model_server_is_not_imported_by_the_kernel_side():
    kernel_side = [p for p in _core_files() if "modelserver" not in p.parts]
    offenders = [str(p.relative_to(PACKAGE)) for p in kernel_side if any("modelserver" in m for m in _imports(p))]
    assert offenders == []
