"""Fixtures of the tests that call the ``/llmops/`` routes of a real Jupyter server.

Star-imported by each route test file (``from route_fixtures import *``), never registered
suite-wide: pytest-jupyter's autouse fixtures (a fresh event loop and a ServerApp per test)
must run only for those tests. The import also brings ``pytestmark``.
"""

from __future__ import annotations

import json

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403

pytestmark = [pytest.mark.timeout(120), pytest.mark.filterwarnings("ignore:Extension endpoints without")]


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"llmops_magics": True}, "allow_unauthenticated_access": False}}


@pytest.fixture(autouse=True)
def server_home_env(monkeypatch):
    """Loading the extension exports LLMOPS_SERVER_HOME for kernels; undo it after each test."""
    monkeypatch.setenv("LLMOPS_SERVER_HOME", "")


@pytest.fixture
def send(http_server_client, jp_auth_header, jp_base_url, jp_asyncio_loop):
    """(status, JSON body) of a request to an exact, unescaped URL path (``%2F`` and ``..`` as they are),
    with the token unless ``headers`` say otherwise; ``method=``/``body=`` for other verbs."""

    def call(path, headers=None, **kwargs):
        resp = jp_asyncio_loop.run_until_complete(
            http_server_client.fetch(
                jp_base_url.rstrip("/") + path, headers=headers or dict(jp_auth_header), raise_error=False, **kwargs
            )
        )
        return resp.code, json.loads(resp.body) if resp.body else None

    return call
