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
        assert not errors, errors
