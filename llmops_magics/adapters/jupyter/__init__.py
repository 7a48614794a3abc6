"""The Jupyter server extension: REST routes under ``/llmops/`` for the JupyterLab sidebar.

Enabled on install by ``jupyter-config/server-config/llmops_magics.json``. The routes
read the registry the kernel writes: ``resolve_home`` is asked from the server's root
folder, exactly as a kernel started there would ask (``LLMOPS_HOME`` wins for both).
Kernels inherit ``LLMOPS_SERVER_HOME``, so one opened in a subfolder of a project that
has no registry yet writes to the one the sidebar reads instead of making its own.
"""

from __future__ import annotations

from typing import Any

__all__ = ["_load_jupyter_server_extension"]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    import os

    from ...context.home import HOME_ENV, SERVER_HOME_ENV
    from .browse import Browser
    from .routes import setup_route_handlers

    browser = Browser(start=serverapp.root_dir)
    if not os.environ.get(HOME_ENV):
        os.environ[SERVER_HOME_ENV] = str(browser.home)  # kernels start with the server's environment
    setup_route_handlers(serverapp.web_app, browser)
    serverapp.log.info("llmops-magics: browsing the registry at %s under /llmops/", browser.home)
