"""A real ``jupyter lab`` on 127.0.0.1 and Debian's chromium driven by Playwright, for the e2e test
and the sidebar benchmark.

Nothing is faked: the lab runs as a subprocess with its own settings, workspaces and
runtime folders under ``root``; the browser is ``/usr/bin/chromium`` (``apt-get install -y
chromium``; ``playwright install`` is never run).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass(frozen=True)
class Lab:
    url: str
    token: str
    root: Path
    process: subprocess.Popen

    def page_url(self, path: str = "lab") -> str:
        return f"{self.url}{path}?token={self.token}"

    def get(self, path: str) -> tuple[int, bytes, float]:
        """(status, body, seconds) of an authenticated GET."""
        req = urllib.request.Request(self.url + path.lstrip("/"), headers={"Authorization": f"token {self.token}"})
        start = time.perf_counter()
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = resp.read()
            return resp.status, body, time.perf_counter() - start


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def missing_prerequisites() -> str | None:
    """Why the browser test cannot run here, or None."""
    if not Path(CHROMIUM).exists():
        return f"{CHROMIUM} is missing: `apt-get install -y chromium` (make test does it)"
    jupyter = Path(sys.executable).with_name("jupyter")
    out = subprocess.run([str(jupyter), "labextension", "list"], capture_output=True, text=True, timeout=120)
    listing = out.stdout + out.stderr
    if "llmops-magics" not in listing or "enabled" not in listing:
        return "the llmops-magics labextension is not installed: run `make install` (pip install -e . builds it)"
    return None


@contextlib.contextmanager
def running_lab(root: Path, timeout: float = 120.0) -> Iterator[Lab]:
    """Start ``jupyter lab`` serving ``root`` (whose ``.llmops/`` the resolver must find by itself)."""
    token = secrets.token_hex(16)
    port = _free_port()
    state = root.parent / f"{root.name}-lab-state"
    settings = state / "app-settings"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "overrides.json").write_text(
        json.dumps(
            {
                "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
            }
        )
    )
    env = {k: v for k, v in os.environ.items() if k != "LLMOPS_HOME"}
    env.update(
        JUPYTER_CONFIG_DIR=str(state / "config"),
        JUPYTER_RUNTIME_DIR=str(state / "runtime"),
        IPYTHONDIR=str(state / "ipython"),
        JUPYTER_PLATFORM_DIRS="1",
        PYTHONUNBUFFERED="1",
    )
    log = (state / "lab.log").open("wb")
    cmd = [
        str(Path(sys.executable).with_name("jupyter")),
        "lab",
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--allow-root",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.app_settings_dir={settings}",
        f"--LabApp.user_settings_dir={state / 'user-settings'}",
        f"--LabApp.workspaces_dir={state / 'workspaces'}",
    ]
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    lab = Lab(f"http://127.0.0.1:{port}/", token, root, proc)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"jupyter lab exited with {proc.returncode}:\n{(state / 'lab.log').read_text()[-4000:]}"
                )
            try:
                if lab.get("api/status")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"jupyter lab did not answer in {timeout}s:\n{(state / 'lab.log').read_text()[-4000:]}"
                )
            time.sleep(0.2)
        yield lab
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


@contextlib.contextmanager
def chromium(viewport: tuple[int, int] = (1400, 900)):
    """A Playwright page on Debian's chromium (headless)."""
    from playwright.sync_api import sync_playwright

    if shutil.which(CHROMIUM) is None:
        raise RuntimeError(f"{CHROMIUM} is missing: apt-get install -y chromium")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            page = context.new_page()
            page.set_default_timeout(60_000)
            yield page
        finally:
            browser.close()


def open_sidebar(page) -> None:
    """Click the LLMOps tab in the left sidebar (if it is not already the open panel)."""
    tab = page.locator('.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="llmops-sidebar"]')
    tab.wait_for()
    if "lm-mod-current" not in (tab.get_attribute("class") or ""):
        tab.click()
    page.locator('[data-test-id="llmops-list"]').wait_for()
