"""`make demo`: run the example notebooks headless, in order, and print what the lifecycle made.

Every notebook runs in a real kernel (nbclient) against the project's registry
(`.llmops/`), with the hub offline and W&B offline inside the workspace. Executed
copies go to `.demo/` so the committed notebooks stay clean.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
OUT = ROOT / ".demo"


def _offline_env() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.pop("WANDB_API_KEY", None)
    for var, sub in (
        ("WANDB_DIR", "wandb"),
        ("WANDB_DATA_DIR", "wandb-data"),
        ("WANDB_CACHE_DIR", "wandb-cache"),
        ("WANDB_CONFIG_DIR", "wandb-config"),
    ):
        path = Path(os.environ.setdefault(var, str(ROOT / ".cache" / sub)))
        path.mkdir(parents=True, exist_ok=True)


def run_notebook(path: Path) -> tuple[bool, float, str]:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}})
    started = time.perf_counter()
    try:
        client.execute()
        ok, detail = True, f"{sum(c.cell_type == 'code' for c in nb.cells)} code cells"
    except CellExecutionError as exc:
        ok, detail = False, str(exc).strip().splitlines()[-1][:200]
    OUT.mkdir(exist_ok=True)
    nbformat.write(nb, OUT / path.name)
    return ok, time.perf_counter() - started, detail


def _made_by_this_run(reg, kind: str, since: float) -> list:
    """The latest version of each ``kind`` name, keeping only those this run made when it made any.

    The registry keeps every earlier ``make demo``; a second run should report its own
    adapter and evals, not one block per run so far.
    """
    latest = [reg.resolve(f"{kind}://{s.name}") for s in reg.names(kind)]
    fresh = [a for a in latest if a.created_at >= since]
    return fresh or latest


def summary(since: float = 0.0) -> None:
    import llmops_magics as lm

    reg = lm.registry()
    print(f"\nRegistry {reg.home}:")
    print(reg.list())
    for art in _made_by_this_run(reg, "adapter", since):
        metrics = {k: round(v, 4) for k, v in art.metadata.get("metrics", {}).items() if k.endswith("loss")}
        print(f"\n{art.ref} (base {art.metadata.get('base_model')}): {metrics}")
    for art in _made_by_this_run(reg, "eval", since):
        print(f"\n{art.ref} on {art.metadata.get('data')} ({art.metadata.get('num_examples')} examples):")
        for label, means in art.metadata.get("summary", {}).items():
            shown = {
                k: round(v, 3) for k, v in means.items() if isinstance(v, float) and not k.endswith(("_var", "_ci"))
            }
            print(f"  {label}: {dict(list(shown.items())[:6])}")
        for verdict in art.metadata.get("verdicts", []):
            print(f"  {verdict}")
    for name, state in reg.list_state("deployments").items():
        print(f"\ndeployment {name}: {state.get('status')} at {state.get('url')} serving {state.get('target')}")
    newest = max(reg.all_artifacts(), key=lambda a: a.created_at, default=None)
    if newest is not None:
        edges = reg.upstream(newest)
        if edges:
            print(f"\nLineage of {newest.ref}:")
            for e in edges:
                print(f"  {e.source} --{e.relation}--> {e.target}")
    report = reg.verify(rehash=False)
    print(f"\nverify: {report}")
    synced = lm.flush(120)
    print(
        f"W&B: offline runs under {os.environ['WANDB_DIR']}/wandb ({'all mirrored' if synced else 'still mirroring'}); "
        "upload later with `wandb sync`."
    )


def main() -> int:
    _offline_env()
    os.chdir(ROOT)
    started = time.time()
    books = sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb"))
    results = []
    for book in books:
        print(f"running {book.relative_to(ROOT)} …", flush=True)
        ok, seconds, detail = run_notebook(book)
        results.append((book.name, ok, seconds, detail))
        print(f"  {'ok ' if ok else 'FAILED'} {seconds:6.1f} s  {detail}", flush=True)
        if not ok:
            break
    summary(since=started)
    failed = [r for r in results if not r[1]]
    print(f"\n{len(results) - len(failed)} notebook(s) ran, {len(failed)} failed; executed copies in {OUT}/")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
