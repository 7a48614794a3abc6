"""The ``/llmops/`` REST routes against a real Jupyter server (pytest-jupyter's ``jp_fetch``).

The pytest-jupyter fixtures are imported here, not registered suite-wide: its autouse
fixtures (a fresh event loop and a ServerApp cleanup per test) would otherwise run for
every test of the project.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from route_fixtures import *  # noqa: F403
from server_samples import populate


@pytest.fixture
def home(jp_root_dir, monkeypatch):
    """The registry lives in the server's root folder; no ``LLMOPS_HOME``: the resolver must find it."""
    monkeypatch.delenv("LLMOPS_HOME", raising=False)
    return jp_root_dir / ".llmops"


@pytest.fixture
def refs(home):
    return populate(home)


@pytest.fixture
def fetch(jp_fetch, jp_asyncio_loop):
    """``fetch("artifacts", params=...)`` → (status, json body or None, response)."""

    def call(*parts, **kwargs):
        kwargs.setdefault("raise_error", False)
        resp = jp_asyncio_loop.run_until_complete(jp_fetch("llmops", *parts, **kwargs))
        body = json.loads(resp.body) if resp.body else None
        return resp.code, body, resp

    return call


ROUTES = [
    "/llmops/artifacts",
    "/llmops/artifacts/prompt/qa",
    "/llmops/artifacts/prompt/qa/2",
    "/llmops/lineage/prompt/qa/2",
    "/llmops/prompts/qa/2",
    "/llmops/evals/qa-eval/1",
    "/llmops/deployments",
    "/llmops/changes",
    "/llmops/nothing-here",
]


# ---------------------------------------------------------------- auth and errors


@pytest.mark.parametrize("path", ROUTES)
def test_every_route_refuses_a_request_without_a_token(refs, send, path):
    code, _ = send(path, headers={"Authorization": ""})
    assert code == 403


@pytest.mark.parametrize("path", ROUTES[:-1])
def test_every_route_answers_json_with_a_token(refs, send, path):
    code, body = send(path)
    assert code == 200, body
    assert isinstance(body, dict)


@pytest.mark.parametrize(
    "path",
    [
        "/llmops/artifacts/prompt/..",
        "/llmops/artifacts/prompt/..%2F..%2Fetc",
        "/llmops/artifacts/prompt/a%2Fb/1",
        "/llmops/artifacts/prompt/bad%20name",
        "/llmops/artifacts/prompt/qa/..",
        "/llmops/artifacts/prompt/qa/0",
        "/llmops/artifacts/prompt/qa/99999999999999999999999",
        "/llmops/prompts/qa/%C2%B2",
        "/llmops/lineage/prompt/qa/99999999999999999999999",
        "/llmops/artifacts/secrets/qa",
        "/llmops/lineage/prompt/%2E%2E/1",
        "/llmops/prompts/..%5C..%5Cwin/1",
        "/llmops/evals/qa-eval/a%00b",
        "/llmops/artifacts?kind=secrets",
        "/llmops/artifacts?limit=-1",
        "/llmops/artifacts?limit=many",
        "/llmops/artifacts?offset=-5",
        "/llmops/lineage/prompt/qa/2?depth=0",
    ],
)
def test_bad_names_and_parameters_are_a_json_400_without_traceback(refs, send, path):
    code, body = send(path)
    assert code == 400, body
    assert body["reason"] == "invalid"
    assert "Traceback" not in json.dumps(body)


@pytest.mark.parametrize(
    "path",
    [
        "/llmops/artifacts/prompt/nope",
        "/llmops/artifacts/prompt/qa/9",
        "/llmops/artifacts/prompt/qa/staging",
        "/llmops/prompts/nope/1",
        "/llmops/evals/qa/1",
        "/llmops/lineage/model/nope/1",
        "/llmops/no/such/route/here",
    ],
)
def test_unknown_artifacts_and_routes_are_a_json_404(refs, send, path):
    code, body = send(path)
    assert code == 404, body
    assert body["message"]


# ---------------------------------------------------------------- listing


def test_list_groups_every_kind_with_counts_and_aliases(refs, fetch):
    code, body, _ = fetch("artifacts")
    assert code == 200
    assert body["total"] == 6
    assert body["counts"] == {
        **{k: 1 for k in ("prompt", "dataset", "model", "adapter", "eval", "deployment")},
        "selection": 0,
        "abtest": 0,
        "monitor": 0,
        "pii-scan": 0,
        "fairness": 0,
        "pipeline": 0,
        "card": 0,
    }
    by_ref = {item["ref"]: item for item in body["items"]}
    assert by_ref["prompt://qa"]["versions"] == 2
    assert by_ref["prompt://qa"]["aliases"] == {"production": 2}
    assert [i["kind"] for i in body["items"]] == sorted(i["kind"] for i in body["items"])


def test_list_filters_by_kind_and_name_substring(refs, fetch):
    _, by_kind, _ = fetch("artifacts", params={"kind": "eval"})
    assert [i["ref"] for i in by_kind["items"]] == ["eval://qa-eval"]
    _, by_search, _ = fetch("artifacts", params={"search": "QA-"})
    assert sorted(i["ref"] for i in by_search["items"]) == [
        "adapter://qa-lora",
        "deployment://qa-svc",
        "eval://qa-eval",
    ]
    assert by_search["counts"]["prompt"] == 0


def test_list_pages_with_limit_and_offset(refs, fetch):
    _, first, _ = fetch("artifacts", params={"limit": "2"})
    _, second, _ = fetch("artifacts", params={"limit": "2", "offset": "2"})
    _, counts_only, _ = fetch("artifacts", params={"limit": "0"})
    assert len(first["items"]) == len(second["items"]) == 2
    assert not {i["ref"] for i in first["items"]} & {i["ref"] for i in second["items"]}
    assert counts_only["items"] == [] and counts_only["total"] == 6


def test_list_of_a_folder_without_registry_is_empty_and_creates_nothing(home, fetch):
    code, body, _ = fetch("artifacts")
    assert code == 200 and body["total"] == 0 and body["items"] == []
    assert not home.exists()


# ---------------------------------------------------------------- one artifact


def test_artifact_lists_versions_newest_first_with_aliases_and_latest_detail(refs, fetch):
    code, body, _ = fetch("artifacts", "prompt", "qa")
    assert code == 200
    assert [v["version"] for v in body["versions"]] == [2, 1]
    assert body["aliases"] == {"latest": 2, "production": 2}
    latest = body["latest"]
    assert latest["ref"] == "prompt://qa/2"
    assert latest["metadata"]["format"] == "chat"
    assert latest["source"]["libraries"]


def test_version_resolves_numbers_and_aliases(refs, fetch):
    _, by_alias, _ = fetch("artifacts", "prompt", "qa", "production")
    _, by_number, _ = fetch("artifacts", "prompt", "qa", "1")
    assert by_alias["ref"] == "prompt://qa/2"
    assert by_number["ref"] == "prompt://qa/1"


def test_version_offers_code_that_loads_it_and_the_magic_that_made_it(refs, fetch):
    _, prompt, _ = fetch("artifacts", "prompt", "qa", "2")
    _, adapter, _ = fetch("artifacts", "adapter", "qa-lora", "1")
    prompt_code = {c["id"]: c["code"] for c in prompt["code"]}
    adapter_code = {c["id"]: c["code"] for c in adapter["code"]}
    assert 'llmops_magics.get_prompt("prompt://qa/2")' in prompt_code["load"]
    assert "%prompt show prompt://qa/2" in prompt_code["show"]
    assert 'llmops_magics.registry().resolve("adapter://qa-lora/1")' in adapter_code["load"]
    assert adapter_code["reproduce"].endswith('llmops_magics.replay("adapter://qa-lora/1")')


def test_version_carries_its_direct_parents_and_children(refs, fetch):
    _, adapter, _ = fetch("artifacts", "adapter", "qa-lora", "1")
    assert {e["source"] for e in adapter["parents"]} == {"prompt://qa/2", "dataset://tickets/1", "model://tiny-base/1"}
    assert {e["target"] for e in adapter["children"]} == {"eval://qa-eval/1", "deployment://qa-svc/1"}


def test_lineage_walks_upstream_and_downstream(refs, fetch):
    _, down, _ = fetch("lineage", "prompt", "qa", "production")
    _, up, _ = fetch("lineage", "eval", "qa-eval", "1")
    assert {e["target"] for e in down["downstream"]} == {
        "adapter://qa-lora/1",
        "eval://qa-eval/1",
        "deployment://qa-svc/1",
    }
    assert down["upstream"] == []
    assert {e["source"] for e in up["upstream"]} >= {"prompt://qa/2", "dataset://tickets/1", "model://tiny-base/1"}
    assert "eval://qa-eval/1" in up["nodes"]


def test_lineage_depth_limits_the_walk(refs, fetch):
    _, one, _ = fetch("lineage", "prompt", "qa", "2", params={"depth": "1"})
    assert {e["target"] for e in one["downstream"]} == {"adapter://qa-lora/1"}


def test_prompt_route_returns_the_template_and_params(refs, fetch):
    code, body, _ = fetch("prompts", "qa", "2")
    assert code == 200
    assert body["template"] == "system:\nYou answer in one word.\nuser:\n{{ question }}"
    assert body["params"] == {"question": "What is 2+2?"}
    assert body["variables"] == ["question"]


def test_eval_route_returns_whatever_summary_is_stored(refs, fetch):
    code, body, _ = fetch("evals", "qa-eval", "baseline")
    assert code == 200
    assert body["summary"] == {"exact_match": 0.75, "rouge_l": 0.81}


# ---------------------------------------------------------------- deployments


class _Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

    def log_message(self, *args):
        pass


@pytest.fixture
def health_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_deployments_report_live_and_stopped_services(refs, home, fetch, health_server):
    from llmops_magics.store import Registry

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    reg = Registry(home)
    reg.put_state(
        "deployments",
        "qa-svc",
        {"name": "qa-svc", "ref": refs["deployment"], "pid": os.getpid(), "port": 0, "url": health_server,
         "host": "127.0.0.1", "started_at": 1.0, "status": "running"},
    )  # fmt: skip
    reg.put_state("deployments", "old-svc", {"pid": int(finished.stdout), "url": "http://127.0.0.1:9/"})
    reg.put_state("deployments", "bare", {})
    reg.close()
    code, body, _ = fetch("deployments")
    assert code == 200
    by_name = {d["name"]: d for d in body["items"]}
    assert by_name["qa-svc"]["state"] == "running" and by_name["qa-svc"]["health"] == "ok"
    assert by_name["old-svc"]["state"] == "stopped" and by_name["old-svc"]["alive"] is False
    assert by_name["bare"]["state"] == "unknown" and by_name["bare"]["url"] is None
    _, detail, _ = fetch("artifacts", "deployment", "qa-svc", "1")
    assert detail["deployment"]["url"] == health_server


# ---------------------------------------------------------------- polling


def test_changes_answers_304_until_the_registry_changes(refs, home, fetch):
    from llmops_magics.store import Registry

    code, body, resp = fetch("changes")
    etag = resp.headers["ETag"]
    assert code == 200 and etag == f'"{body["changes"]}"'
    assert fetch("changes", headers={"If-None-Match": etag})[0] == 304
    reg = Registry(home)
    reg.save("dataset", "new-data", data=b"rows")
    reg.close()
    code, body, resp = fetch("changes", headers={"If-None-Match": etag})
    assert code == 200 and resp.headers["ETag"] != etag


def test_a_kernel_in_a_subfolder_without_a_registry_writes_where_the_sidebar_reads(fetch, home, jp_root_dir):
    assert fetch("artifacts")[0] == 200  # the server (and its extension) is up, with no registry yet
    assert not home.exists()
    notebooks = jp_root_dir / "notebooks"
    notebooks.mkdir()
    code = "from llmops_magics.context.home import resolve_home; print(resolve_home())"
    out = subprocess.run([sys.executable, "-c", code], cwd=notebooks, env=dict(os.environ), capture_output=True)
    assert out.stdout.decode().strip() == str(home.resolve()), out.stderr.decode()


# ---------------------------------------------------------------------- bodies (aliases)


def _post(fetch, body: bytes, *parts):
    return fetch("aliases", *(parts or ("prompt", "qa", "1")), method="POST", body=body)


def test_posting_an_alias_points_it_at_that_version(refs, fetch):
    status, body, _ = _post(fetch, json.dumps({"alias": "staging"}).encode())
    assert status == 200 and body["ref"] == "prompt://qa/1" and "staging" in body["aliases"]
    assert fetch("artifacts", "prompt", "qa", "staging")[1]["ref"] == "prompt://qa/1"


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"[" * 10_000 + b"]" * 10_000, 400, "nested more than 64 levels"),
        (b'{"alias": ' + b"[" * 200 + b"]" * 200 + b"}", 400, "nested more than 64 levels"),
        (b'{"alias": "' + b"x" * 70_000 + b'"}', 413, "larger than 65536 bytes"),
        (b"\xff\xfe not utf-8", 400, "not valid"),
        (b"[1, 2]", 400, "must be a JSON object"),
        (b'{"alias": "latest"}', 400, "latest' is automatic"),
        (b'{"alias": 7}', 400, "alias must be a non-empty string"),
    ],
    ids=["arrays-10000", "nested-field", "too-large", "not-utf8", "not-an-object", "latest", "not-text"],
)
def test_a_hostile_body_is_a_json_4xx_and_moves_nothing(refs, fetch, body, status, message):
    got, error, _ = _post(fetch, body)
    assert got == status and message in error["message"] and error["reason"]
    assert fetch("artifacts", "prompt", "qa", "1")[1]["aliases"] == []


def test_an_alias_for_a_version_that_does_not_exist_is_a_404(refs, fetch):
    status, error, _ = _post(fetch, b'{"alias": "x"}', "prompt", "qa", "99")
    assert status == 404 and "no version 99" in error["message"]
