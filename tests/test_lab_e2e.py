"""End to end: a real ``jupyter lab`` with a prepared registry, driven in Debian's chromium.

Opens the LLMOps sidebar, checks the listed artifacts, opens detail views, inserts code
into a notebook cell and runs it in a real kernel (which must find the same registry),
watches the list refresh by itself after a write from another process, and saves
screenshots (``.cache/e2e/``; with ``LLMOPS_UPDATE_SCREENSHOTS=1`` also ``docs/``, the
ones the README shows). Waits are on ``data-test-id`` states, never on sleeps.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
import pytest
from lab_harness import chromium, missing_prerequisites, open_sidebar, running_lab
from server_samples import HOSTILE, populate

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / ".cache" / "e2e"

pytestmark = pytest.mark.timeout(300)


class _Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = missing_prerequisites()
    if reason:
        pytest.fail(reason)
    root = tmp_path_factory.mktemp("lab") / "project"
    root.mkdir()
    refs = populate(root / ".llmops")
    health = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=health.serve_forever, daemon=True).start()
    from llmops_magics.store import Registry

    reg = Registry(root / ".llmops")
    reg.put_state(
        "deployments",
        "qa-svc",
        {"name": "qa-svc", "ref": refs["deployment"], "pid": os.getpid(), "port": health.server_address[1],
         "url": f"http://127.0.0.1:{health.server_address[1]}", "host": "127.0.0.1", "started_at": 0,
         "status": "running"},
    )  # fmt: skip
    reg.close()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "demo.ipynb")
    try:
        with running_lab(root) as server:
            yield server
    finally:
        health.shutdown()
        health.server_close()


def _shoot(page, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / name
    page.screenshot(path=str(path))
    if os.environ.get("LLMOPS_UPDATE_SCREENSHOTS") == "1":
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(path, ROOT / "docs" / name)
    return path


def test_sidebar_lists_details_inserts_code_and_refreshes(lab):
    from playwright.sync_api import expect

    with chromium() as page:
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(lab.page_url("lab/tree/demo.ipynb"))
        page.locator(".jp-NotebookPanel .jp-Cell").first.wait_for()

        # the list: every kind, with versions and aliases
        open_sidebar(page)
        ready = page.locator('[data-test-id="llmops-list"][data-state="ready"]')
        ready.wait_for()
        refs = page.locator('[data-test-id="llmops-item"]').evaluate_all("els => els.map(e => e.dataset.ref)")
        assert sorted(refs) == sorted(
            [
                "adapter://qa-lora",
                "dataset://tickets",
                "deployment://qa-svc",
                "eval://qa-eval",
                "model://tiny-base",
                "prompt://qa",
            ]
        )
        kinds = page.locator('[data-test-id="llmops-group"]').evaluate_all("els => els.map(e => e.dataset.kind)")
        assert kinds == ["prompt", "dataset", "model", "adapter", "eval", "deployment"]
        qa = page.locator('[data-test-id="llmops-item"][data-ref="prompt://qa"]')
        expect(qa).to_contain_text("v2 · 2")
        expect(qa).to_contain_text("production → v2")
        svc = page.locator('[data-test-id="llmops-item"][data-ref="deployment://qa-svc"]')
        expect(svc.locator('[data-test-id="llmops-item-state"]')).to_have_text("running")
        _shoot(page, "sidebar-list.png")

        # search narrows the list
        page.locator('[data-test-id="llmops-search"]').fill("qa-")
        expect(page.locator('[data-test-id="llmops-item"]')).to_have_count(3)
        page.locator('[data-test-id="llmops-search"]').fill("")
        expect(page.locator('[data-test-id="llmops-item"]')).to_have_count(6)

        # a prompt's detail: text, metadata as text (never HTML), lineage
        qa.click()
        detail = page.locator('[data-test-id="llmops-detail"][data-state="ready"][data-ref="prompt://qa/2"]')
        detail.wait_for()
        expect(page.locator('[data-test-id="llmops-prompt-text"]')).to_contain_text("You answer in one word.")
        expect(page.locator('[data-test-id="llmops-metadata"]')).to_contain_text(HOSTILE)
        assert page.locator('[data-test-id="llmops-sidebar"] img').count() == 0
        assert page.evaluate("document.body.dataset.pwned") is None
        expect(page.locator('[data-test-id="llmops-downstream"]')).to_contain_text("adapter://qa-lora/1")
        expect(page.locator('[data-test-id="llmops-downstream"]')).to_contain_text("eval://qa-eval/1")

        page.locator('[data-test-id="llmops-copy-ref"]').click()
        expect(page.locator('[data-test-id="llmops-status"]')).to_have_text("Copied prompt://qa/2")

        # insert code into the notebook's empty cell, then run it in a real kernel
        page.locator('[data-test-id="llmops-insert"][data-snippet="load"]').click()
        expect(page.locator('[data-test-id="llmops-status"]')).to_contain_text("Inserted into demo.ipynb")
        cell = page.locator(".jp-NotebookPanel .jp-CodeCell").first
        expect(cell.locator(".cm-content")).to_contain_text('llmops_magics.get_prompt("prompt://qa/2")')
        cell.locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")
        expect(cell.locator(".jp-OutputArea-output")).to_contain_text("You answer in one word.", timeout=120_000)
        _shoot(page, "sidebar-detail.png")

        # an eval's summary and a deployment's live status, reached through the lineage tree
        page.locator('[data-test-id="llmops-lineage-node"][data-ref="eval://qa-eval/1"]').click()
        page.locator('[data-test-id="llmops-detail"][data-state="ready"][data-ref="eval://qa-eval/1"]').wait_for()
        expect(page.locator('[data-test-id="llmops-eval-summary"]')).to_contain_text("exact_match")
        expect(page.locator('[data-test-id="llmops-eval-summary"]')).to_contain_text("0.75")
        page.locator('[data-test-id="llmops-back"]').click()
        page.locator('[data-test-id="llmops-item"][data-ref="deployment://qa-svc"]').click()
        page.locator('[data-test-id="llmops-detail"][data-state="ready"][data-ref="deployment://qa-svc/1"]').wait_for()
        expect(page.locator('[data-test-id="llmops-deployment-state"]')).to_have_text("running")

        # the adapter offers to replay the call that made it
        page.locator('[data-test-id="llmops-back"]').click()
        page.locator('[data-test-id="llmops-item"][data-ref="adapter://qa-lora"]').click()
        reproduce = page.locator('[data-test-id="llmops-insert"][data-snippet="reproduce"]')
        expect(reproduce).to_have_attribute(
            "title", 'import llmops_magics\n\nllmops_magics.replay("adapter://qa-lora/1")'
        )

        # another process writes: the list shows it without a reload
        page.locator('[data-test-id="llmops-back"]').click()
        from llmops_magics.store import Registry

        reg = Registry(lab.root / ".llmops")
        reg.save("dataset", "fresh-data", data=b"new rows")
        reg.close()
        expect(page.locator('[data-test-id="llmops-item"][data-ref="dataset://fresh-data"]')).to_be_visible(
            timeout=30_000
        )

        _lineage_graph_of_a_new_adapter(page, lab)
        assert not errors, errors


def _lineage_graph_of_a_new_adapter(page, lab) -> None:
    """An adapter saved now: its graph opens from the detail view, pans, zooms, and a node opens in the sidebar."""
    from playwright.sync_api import expect

    from llmops_magics.store import Registry
    from llmops_magics.store.graph import graph

    reg = Registry(lab.root / ".llmops")
    parents = [(reg.resolve(r), rel) for r, rel in [("dataset://tickets/1", "data"), ("model://tiny-base/1", "base"),
                                                    ("prompt://qa/2", "prompt")]]  # fmt: skip
    adapter = reg.save("adapter", "graph-lora", data=b"graph lora", parents=parents, aliases=["candidate"]).artifact
    reg.save("eval", "graph-eval", data=b"graph eval", parents=[(adapter, "evaluated")], aliases=["gate"])
    expected = graph(reg, adapter)
    reg.close()

    item = page.locator('[data-test-id="llmops-item"][data-ref="adapter://graph-lora"]')
    expect(item).to_be_visible(timeout=30_000)
    item.click()
    page.locator('[data-test-id="llmops-detail"][data-state="ready"][data-ref="adapter://graph-lora/1"]').wait_for()
    page.locator('[data-test-id="llmops-open-graph"]').click()
    panel = page.locator('[data-test-id="llmops-graph"][data-state="ready"][data-focus="adapter://graph-lora/1"]')
    panel.wait_for()

    nodes = panel.locator('[data-test-id="llmops-graph-node"]')
    assert sorted(nodes.evaluate_all("els => els.map(e => e.dataset.ref)")) == sorted(
        n["ref"] for n in expected["nodes"]
    )
    assert len(expected["nodes"]) == 5
    focus = panel.locator('[data-test-id="llmops-graph-node"][data-focus="true"]')
    expect(focus).to_have_count(1)
    expect(focus).to_have_attribute("data-ref", "adapter://graph-lora/1")
    expect(focus.locator('[data-test-id="llmops-graph-alias"]', has_text="candidate")).to_have_count(1)
    gate = panel.locator('[data-test-id="llmops-graph-node"][data-ref="eval://graph-eval/1"]')
    expect(gate.locator('[data-test-id="llmops-graph-alias"]', has_text="gate")).to_have_count(1)
    edges = panel.locator('[data-test-id="llmops-graph-edge"]').evaluate_all(
        "els => els.map(e => [e.dataset.src, e.dataset.dst])"
    )
    assert sorted(map(tuple, edges)) == sorted((e["src"], e["dst"]) for e in expected["edges"])

    # drag the background: the graph moves and nothing opens; the wheel zooms
    viewport = panel.locator('[data-test-id="llmops-graph-viewport"]')
    fitted = viewport.get_attribute("transform")
    box = panel.locator('[data-test-id="llmops-graph-canvas"]').bounding_box()
    page.mouse.move(box["x"] + 6, box["y"] + box["height"] - 6)
    page.mouse.down()
    page.mouse.move(box["x"] + 86, box["y"] + box["height"] - 46, steps=5)
    page.mouse.up()
    panned = viewport.get_attribute("transform")
    assert panned != fitted and panned.endswith(fitted.rsplit(" ", 1)[1]), (fitted, panned)  # moved, same scale
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -400)
    expect(viewport).not_to_have_attribute("transform", panned)
    page.locator('[data-test-id="llmops-graph-fit"]').click()
    expect(viewport).to_have_attribute("transform", fitted)
    _shoot(page, "lineage-graph.png")

    # click a node: the sidebar shows that version
    panel.locator('[data-test-id="llmops-graph-node"][data-ref="dataset://tickets/1"]').click()
    page.locator('[data-test-id="llmops-detail"][data-state="ready"][data-ref="dataset://tickets/1"]').wait_for()

    # a reload brings the panel back, drawing the same version (JupyterLab's layout restorer)
    deadline = time.monotonic() + 30  # the workspace is saved to the server a moment after a layout change
    while b"llmops-graph:lineage" not in lab.get("lab/api/workspaces")[1]:
        assert time.monotonic() < deadline, "the lab never saved the lineage panel in its workspace"
        time.sleep(0.2)
    page.reload()
    page.locator('[data-test-id="llmops-graph"][data-state="ready"][data-focus="adapter://graph-lora/1"]').wait_for()


def test_traces_section_shows_a_span_tree_and_an_eval_shows_its_charts(lab, tmp_path):
    """The Traces section lists the workspace's traces; a click shows the span tree with timeline bars.
    An eval's detail view shows its metric CIs and per-example deltas as images."""
    from playwright.sync_api import expect
    from trace_samples import save_scored_eval, write_traces

    write_traces(lab.root / ".llmops", "prompt://qa/2")
    save_scored_eval(lab.root / ".llmops", tmp_path)
    with chromium() as page:
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(lab.page_url("lab") + "&reset")  # a fresh layout, not the one the test before left saved
        open_sidebar(page)
        page.locator('[data-test-id="llmops-list"][data-state="ready"]').wait_for()

        rows = page.locator('[data-test-id="llmops-trace"]')
        expect(rows).to_have_count(3, timeout=30_000)
        assert rows.first.get_attribute("data-trace-id") == f"{3:032x}"
        expect(rows.first).to_contain_text("my pipeline")
        expect(rows.first).to_contain_text("1 error(s)")
        page.locator('[data-test-id="llmops-traces-filter"]').fill("qa/1")
        page.locator('[data-test-id="llmops-traces-filter"]').press("Enter")
        expect(rows).to_have_count(1)
        assert rows.first.get_attribute("data-trace-id") == f"{2:032x}"
        page.locator('[data-test-id="llmops-traces-filter"]').fill("")
        page.locator('[data-test-id="llmops-traces-filter"]').press("Enter")
        expect(rows).to_have_count(3)

        rows.first.click()
        tree = page.locator(f'[data-test-id="llmops-trace-tree"][data-trace-id="{3:032x}"]')
        tree.wait_for()
        spans = tree.locator('[data-test-id="llmops-span"]')
        expect(spans).to_have_count(4)
        assert spans.evaluate_all("els => els.map(e => e.dataset.depth)") == ["0", "1", "1", "2"]
        assert spans.evaluate_all("els => els.map(e => e.dataset.status)") == ["OK", "OK", "ERROR", "OK"]
        bars = tree.locator('[data-test-id="llmops-span-bar"]').evaluate_all(
            "els => els.map(e => [parseFloat(e.style.left), parseFloat(e.style.width)])"
        )
        assert bars == [[0.0, 100.0], [10.0, 25.0], [50.0, 40.0], [55.0, 5.0]]  # offsets and lengths / 200 ms
        _shoot(page, "trace-tree.png")
        page.locator('[data-test-id="llmops-trace-back"]').click()
        expect(rows).to_have_count(3)

        item = page.locator('[data-test-id="llmops-item"][data-ref="eval://scored"]')
        expect(item).to_be_visible(timeout=30_000)
        item.click()
        page.locator('[data-test-id="llmops-detail"][data-state="ready"][data-ref="eval://scored/1"]').wait_for()
        charts = page.locator('[data-test-id="llmops-chart"]')
        expect(charts).to_have_count(3)
        assert charts.evaluate_all("els => els.map(e => e.alt)") == [
            "exact_match: mean, 95% CI",
            "length: mean, 95% CI",
            "B - A on exact_match, per example",
        ]
        assert charts.evaluate_all("els => els.every(e => e.complete && e.naturalWidth > 0)")  # they decoded
        page.locator('[data-test-id="llmops-charts"]').scroll_into_view_if_needed()
        _shoot(page, "sidebar-charts.png")
        assert not errors, errors
