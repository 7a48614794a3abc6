"""How fast the LLMOps sidebar shows a registry of 5,000 artifact names.

Prepares a registry with 5,000 names across the six kinds (some with two versions and
aliases) through the real ``Registry.save``, starts a real ``jupyter lab`` on 127.0.0.1,
and drives Debian's chromium with Playwright:

* cold: page loaded with a reset layout, then the time from the click on the LLMOps tab
  to the first frame painted with the list ready (every request the sidebar makes included);
* warm: hide and show the sidebar again (the list is kept; a conditional poll runs);
* the REST routes' latency (p50/p95 over many sequential requests).

Run: ``make bench`` or ``.venv/bin/python benchmarks/bench_sidebar.py [--names 5000] [--runs 5]``.
Exits 1 when the cold open misses the 1 s goal.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from lab_harness import chromium, missing_prerequisites, open_sidebar, running_lab  # noqa: E402

MIX = {"prompt": 0.3, "dataset": 0.2, "model": 0.1, "adapter": 0.2, "eval": 0.16, "deployment": 0.04}
GOAL_S = 1.0

WATCH = """() => {
  window.__llmopsT0 = null;
  document.addEventListener('pointerdown', () => { window.__llmopsT0 ??= performance.now(); }, { capture: true, once: true });
  window.__llmopsReady = new Promise(resolve => {
    const shown = () => {
      const list = document.querySelector('[data-test-id="llmops-list"][data-state="ready"]');
      return list && list.offsetParent !== null && list.querySelector('[data-test-id="llmops-item"]');
    };
    const done = () => requestAnimationFrame(() => resolve(performance.now()));
    const observer = new MutationObserver(() => { if (shown()) { observer.disconnect(); done(); } });
    observer.observe(document.body, { subtree: true, childList: true, attributes: true });
  });
}"""

ELAPSED = "async () => (await window.__llmopsReady) - window.__llmopsT0"


def prepare(home: Path, names: int) -> tuple[int, float]:
    from llmops_magics.store import Registry

    reg = Registry(home)
    start = time.perf_counter()
    versions = 0
    i = 0
    for kind, share in MIX.items():
        for _ in range(round(names * share)):
            name = f"{kind}-{i:05d}"
            reg.save(kind, name, data=f"{kind} {i} v1".encode(), metadata={"i": i})
            versions += 1
            if i % 5 == 0:
                reg.save(kind, name, data=f"{kind} {i} v2".encode(), metadata={"i": i}, aliases=["production"])
                versions += 1
            i += 1
    reg.close()
    return versions, time.perf_counter() - start


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def route_latency(lab, path: str, n: int) -> list[float]:
    lab.get(path)  # warm the route (imports, the registry connection)
    return [lab.get(path)[2] for _ in range(n)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    reason = missing_prerequisites()
    if reason:
        print(f"bench_sidebar: {reason}", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="bench-sidebar-") as tmp:
        root = Path(tmp) / "project"
        root.mkdir()
        versions, prep_s = prepare(root / ".llmops", args.names)
        rows: list[tuple[str, list[float]]] = []
        with running_lab(root) as lab:
            for path in (
                "llmops/artifacts?limit=0",
                "llmops/artifacts?kind=prompt&limit=50",
                "llmops/artifacts?kind=dataset&limit=50&offset=900",
                "llmops/artifacts?search=0042&limit=50",
                "llmops/artifacts/prompt/prompt-00000",
                "llmops/changes",
            ):
                rows.append((f"GET /{path}", route_latency(lab, path, args.requests)))

            cold, warm = [], []
            with chromium() as page:
                for _ in range(args.runs):
                    page.goto(lab.page_url("lab") + "&reset")
                    tab = page.locator('.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="llmops-sidebar"]')
                    tab.wait_for()
                    page.locator(".jp-DirListing").wait_for()
                    page.evaluate(WATCH)
                    tab.click()
                    cold.append(page.evaluate(ELAPSED) / 1000)
                    # hide (show the file browser), then show the sidebar again
                    page.locator('.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="filebrowser"]').click()
                    page.locator('[data-test-id="llmops-list"]').wait_for(state="hidden")
                    page.evaluate(WATCH)
                    tab.click()
                    warm.append(page.evaluate(ELAPSED) / 1000)
                open_sidebar(page)
                shown = page.locator('[data-test-id="llmops-item"]').count()
                browser_version = page.context.browser.version
        rows[:0] = [
            ("open sidebar → list shown (cold, after page load)", cold),
            ("reopen sidebar → list shown (warm)", warm),
        ]

    from jupyterlab import __version__ as lab_version

    print(
        f"\nLLMOps sidebar, {args.names:,} artifact names ({versions:,} versions, prepared in {prep_s:.1f} s); "
        f"JupyterLab {lab_version}, Chromium {browser_version}; {shown} rows rendered (paged per kind)\n"
    )
    width = max(len(r[0]) for r in rows)
    print(f"| {'measure'.ljust(width)} | p50 ms | p95 ms | n   |")
    print(f"|{'-' * (width + 2)}|--------|--------|-----|")
    for label, values in rows:
        print(
            f"| {label.ljust(width)} | {pct(values, 0.5) * 1000:6.1f} | {pct(values, 0.95) * 1000:6.1f} | {len(values):<3} |"
        )
    p50 = statistics.median(cold)
    verdict = "met" if p50 < GOAL_S else "MISSED"
    print(
        f"\ngoal: sidebar open → list shown < {GOAL_S:.0f} s with {args.names:,} artifacts: {verdict} (p50 {p50 * 1000:.0f} ms)"
    )
    return 0 if p50 < GOAL_S else 1


if __name__ == "__main__":
    sys.exit(main())
