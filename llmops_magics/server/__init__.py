"""The Jupyter server extension: REST routes under ``/llmops/`` for the JupyterLab sidebar.

Enabled on install by ``jupyter-config/server-config/llmops_magics.json``. The routes
read the registry the kernel writes: ``resolve_home`` is asked from the server's root
folder, exactly as a kernel started there would ask (``LLMOPS_HOME`` wins for both).
"""

from __future__ import annotations

from typing import Any

__all__ = ["_load_jupyter_server_extension"]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from ..browse import Browser
    from .routes import setup_route_handlers

    browser = Browser(start=serverapp.root_dir)
    setup_route_handlers(serverapp.web_app, browser)
    serverapp.log.info("llmops-magics: browsing the registry at %s under /llmops/", browser.home)
