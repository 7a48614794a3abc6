"""Many adapters on one base in one server process: routing, hot load/unload, errors, the kernel side.

A real server on 127.0.0.1 serves the tiny GPT-2 base with adapter A as the primary and
adapter B as a 30% canary, both on one copy of the base. Adapters are then loaded and
unloaded by name while traffic flows; every answer is checked against the same adapter
loaded alone (greedy decoding), and no request may fail.
"""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest
import requests
from deploy_support import build_folders, module_workspace, register, stop_all

from llmops_magics.models.generation import generate

pytestmark = pytest.mark.slow

KEY = "adapters-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
PROMPTS = ["The capital of", "People in", "The flag of", "has a"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    from llmops_magics import deploy

    folders = build_folders(str(tmp_path_factory.getbasetemp()))
    with module_workspace(tmp_path_factory.mktemp("adapters") / ".llmops") as ws:
        refs = register(ws, folders)
        try:
            handle = deploy(
                refs.adapter, name="qa", canary=f"{refs.adapter_v2}:30%", api_key=KEY, threads=1, workspace=ws
            )
            yield ws, folders, refs, handle
        finally:
            stop_all(ws)


@pytest.fixture(scope="module")
def alone(setup):
    """Greedy answers of each adapter (and the base) loaded on its own, the reference for every check."""
    from llmops_magics.models.loading import load_model

    _, folders, _, _ = setup
    out = {}
    for key, folder in (("a", folders.adapter_a), ("b", folders.adapter_b), ("base", folders.base)):
        loaded = load_model(folder)
        out[key] = {p: generate(loaded, [p], max_new_tokens=8)[0].text for p in PROMPTS}
    return out


def post(url: str, path: str, body, headers=AUTH, **kw) -> requests.Response:
    return requests.post(url + path, json=body, headers=headers, timeout=120, **kw)


def complete(url: str, model: str, prompt: str) -> str:
    r = post(url, "/v1/completions", {"model": model, "prompt": prompt, "max_tokens": 8, "temperature": 0})
    assert r.status_code == 200, r.text
    return r.json()["choices"][0]["text"]


def test_primary_and_canary_adapters_share_one_copy_of_the_base(setup, alone):
    _, _, refs, handle = setup
    health = requests.get(handle.url + "/health").json()
    assert len(health["engines"]) == 1 and len(health["engines"][0]["adapters"]) == 2
    for prompt in PROMPTS:
        assert complete(handle.url, refs.adapter, prompt) == alone["a"][prompt]
        assert complete(handle.url, refs.adapter_v2, prompt) == alone["b"][prompt]


def test_a_mixed_concurrent_load_over_adapters_answers_each_as_its_own_adapter(setup, alone):
    import httpx

    _, folders, refs, handle = setup
    assert post(handle.url, "/v1/load_lora_adapter", {"lora_name": "b-again", "lora_path": str(folders.adapter_b)}).ok
    asks = [(m, p) for m in (refs.adapter, refs.adapter_v2, "b-again") for p in PROMPTS] * 2

    async def run():
        async with httpx.AsyncClient(base_url=handle.url, headers=AUTH, timeout=120) as client:
            body = lambda m, p: {"model": m, "prompt": p, "max_tokens": 8, "temperature": 0}
            return await asyncio.gather(*(client.post("/v1/completions", json=body(m, p)) for m, p in asks))

    try:
        answers = asyncio.run(run())
    finally:
        post(handle.url, "/v1/unload_lora_adapter", {"lora_name": "b-again"})
    expected = {refs.adapter: alone["a"], refs.adapter_v2: alone["b"], "b-again": alone["b"]}
    assert [r.json()["choices"][0]["text"] for r in answers] == [expected[m][p] for m, p in asks]
    assert max(int(r.headers["X-LLMOps-Batch-Size"]) for r in answers) > 1


def test_load_by_reference_lists_serves_and_unloads_by_name(setup, alone):
    _, _, refs, handle = setup
    r = post(handle.url, "/v1/load_lora_adapter", {"lora_name": "sql", "lora_path": refs.adapter_v2})
    assert r.status_code == 200 and r.json()["version"] == refs.adapter_v2
    models = {m["id"]: m for m in requests.get(handle.url + "/v1/models", headers=AUTH).json()["data"]}
    assert models["sql"]["parent"] == refs.base and models["sql"]["llmops"]["weight"] == 0
    assert complete(handle.url, "sql", "The capital of") == alone["b"]["The capital of"]
    assert post(handle.url, "/v1/unload_lora_adapter", {"lora_name": "sql"}).status_code == 200
    gone = post(handle.url, "/v1/completions", {"model": "sql", "prompt": "x", "max_tokens": 2})
    assert gone.status_code == 404 and gone.json()["error"]["param"] == "model"
    assert "sql" not in {m["id"] for m in requests.get(handle.url + "/v1/models", headers=AUTH).json()["data"]}


def _foreign_adapter(dest: Path, tokenizer_from: Path) -> Path:
    """A LoRA adapter of a Llama-architecture model: not an adapter for the GPT-2 base."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_from)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128)  # fmt: skip
    model = get_peft_model(LlamaForCausalLM(config), LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    model.save_pretrained(dest)
    tok.save_pretrained(dest)
    return dest


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({"lora_name": "x", "lora_path": "adapter://no-such-adapter/1"}, 404, "lora_path"),
        ({"lora_name": "x", "lora_path": "no-such-name"}, 404, "lora_path"),
        ({"lora_name": "x", "lora_path": "model://tiny-gpt2/1"}, 400, "lora_path"),
        ({"lora_name": "x"}, 400, "lora_path"),
        ({"lora_name": "x", "lora_path": "p", "extra": 1}, 400, "extra"),
        ({"lora_name": "qa", "lora_path": "qa-lora"}, 400, "lora_name"),
        ({"lora_name": "bad name!", "lora_path": "qa-lora"}, 400, "lora_name"),
    ],
)
def test_loading_what_is_not_there_or_not_an_adapter_is_a_4xx_json_error(setup, body, status, param):
    r = post(setup[3].url, "/v1/load_lora_adapter", body)
    assert (r.status_code, r.json()["error"]["param"]) == (status, param)


def test_a_folder_that_is_not_an_adapter_of_this_base_is_a_400(setup, tmp_path):
    _, folders, _, handle = setup
    not_adapter = post(handle.url, "/v1/load_lora_adapter", {"lora_name": "x", "lora_path": str(folders.base)})
    assert not_adapter.status_code == 400 and "adapter_config.json" in not_adapter.json()["error"]["message"]
    foreign = _foreign_adapter(tmp_path / "llama-lora", folders.base)
    r = post(handle.url, "/v1/load_lora_adapter", {"lora_name": "x", "lora_path": str(foreign)})
    assert r.status_code == 400 and r.json()["error"]["code"] == "wrong_base_model"
    assert "x" not in {m["id"] for m in requests.get(handle.url + "/v1/models", headers=AUTH).json()["data"]}
    assert complete(handle.url, "qa", "The capital of")  # the server serves on


def test_a_registered_adapter_of_another_base_is_a_400(setup, tmp_path):
    ws, folders, _, handle = setup
    meta = {"base_model": "model://llama-tiny/1", "base_digest": "f" * 64}
    other = ws.registry.save(
        "adapter", "llama-lora", path=_foreign_adapter(tmp_path / "l", folders.base), metadata=meta
    )
    r = post(handle.url, "/v1/load_lora_adapter", {"lora_name": "x", "lora_path": other.artifact.ref})
    assert r.status_code == 400 and r.json()["error"]["code"] == "wrong_base_model"
    assert "model://llama-tiny/1" in r.json()["error"]["message"]


def test_unloading_what_is_not_loaded_or_is_part_of_the_split_is_refused(setup):
    url = setup[3].url
    missing = post(url, "/v1/unload_lora_adapter", {"lora_name": "never-loaded"})
    assert (missing.status_code, missing.json()["error"]["param"]) == (404, "lora_name")
    split = post(url, "/v1/unload_lora_adapter", {"lora_name": "canary"})
    assert split.status_code == 400 and "roll back" in split.json()["error"]["message"]


def test_admin_routes_want_a_key_even_when_reading_models_does_not(setup):
    url = setup[3].url
    assert post(url, "/v1/load_lora_adapter", {"lora_name": "y", "lora_path": "qa-lora"}, headers={}).status_code == 401


def test_requests_in_flight_finish_before_their_adapter_is_unloaded(setup):
    import time

    _, folders, _, handle = setup
    assert post(handle.url, "/v1/load_lora_adapter", {"lora_name": "leaving", "lora_path": str(folders.adapter_a)}).ok
    long = {"model": "leaving", "prompt": "The capital of", "max_tokens": 60, "min_tokens": 60, "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
    started = [threading.Event() for _ in range(3)]
    results = []

    def stream(i: int):
        with post(handle.url, "/v1/completions", long, stream=True) as r:
            events = []
            for line in r.iter_lines():
                if line.startswith(b"data: "):
                    events.append(line)
                    started[i].set()
            results.append((r.status_code, events[-1], json.loads(events[-2][6:])["usage"], time.monotonic()))

    threads = [threading.Thread(target=stream, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    assert all(e.wait(60) for e in started)
    unloaded = post(handle.url, "/v1/unload_lora_adapter", {"lora_name": "leaving"})
    unloaded_at = time.monotonic()
    for t in threads:
        t.join(120)
    assert unloaded.status_code == 200
    assert [(s, last, usage["completion_tokens"]) for s, last, usage, _ in results] == [(200, b"data: [DONE]", 60)] * 3
    assert max(done for *_, done in results) <= unloaded_at  # the unload answered after every stream ended


def test_loading_and_unloading_while_traffic_flows_fails_no_request(setup):
    _, folders, refs, handle = setup
    statuses: list[int] = []
    stop = threading.Event()

    def traffic(model: str):
        while not stop.is_set():
            body = {"model": model, "prompt": "People in", "max_tokens": 6, "user": f"u{len(statuses)}"}
            statuses.append(post(handle.url, "/v1/completions", body).status_code)

    threads = [threading.Thread(target=traffic, args=(m,)) for m in ("qa", refs.adapter_v2, "qa")]
    for t in threads:
        t.start()
    try:
        for i in range(3):
            name = f"hot{i}"
            assert post(
                handle.url, "/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(folders.adapter_b)}
            ).ok
            assert complete(handle.url, name, "The flag of")
            assert post(handle.url, "/v1/unload_lora_adapter", {"lora_name": name}).ok
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert len(statuses) > 10 and set(statuses) == {200}


def test_the_kernel_adds_and_removes_adapters_as_recorded_deployment_versions(setup, alone, ip):
    from IPython.core.error import UsageError

    import llmops_magics
    from llmops_magics.governance.audit import audit_events

    ws, _, refs, handle = setup
    before = ws.registry.resolve("deployment://qa").version
    added = llmops_magics.add_adapter("qa", refs.adapter_v2, as_name="sql", workspace=ws)
    assert added.artifact.version == before + 1
    edges = {(e.source, e.relation) for e in ws.registry.upstream(added.artifact.ref, depth=1)}
    assert (refs.adapter_v2, "adapter") in edges
    assert ws.registry.get_state("deployments", "qa")["adapters"] == [f"sql={refs.adapter_v2}"]
    assert complete(handle.url, "sql", "People in") == alone["b"]["People in"]
    ip.run_line_magic("config", f"LLMOps.home = {str(ws.registry.home)!r}")  # the magics on this registry
    with pytest.raises(UsageError, match="already serves an adapter named 'sql'"):
        ip.run_line_magic("deploy", f"add-adapter qa {refs.adapter} --as sql")
    ip.run_line_magic("deploy", "remove-adapter qa sql")
    assert list(ws.registry.resolve("deployment://qa").spec["args"]["adapters"]) == []
    with pytest.raises(UsageError, match="serves no adapter named 'sql'"):
        ip.run_line_magic("deploy", "remove-adapter qa sql")
    events = [(e.action, e.to_ref or e.from_ref, e.detail) for e in audit_events(workspace=ws)
              if e.action in ("add-adapter", "remove-adapter")]  # fmt: skip
    assert events == [("add-adapter", refs.adapter_v2, {"lora_name": "sql"}),
                      ("remove-adapter", refs.adapter_v2, {"lora_name": "sql"})]  # fmt: skip


def test_an_adapter_added_to_a_running_server_meets_the_deploy_policy_or_is_overridden(setup, tmp_path, monkeypatch):
    import llmops_magics
    from llmops_magics.errors import PolicyError
    from llmops_magics.governance.audit import audit_events

    ws, _, refs, _handle = setup
    monkeypatch.chdir(tmp_path)  # this folder's pyproject.toml is the project's
    (tmp_path / "pyproject.toml").write_text("[tool.llmops.policy.deploy]\ncard = true\n")
    before = ws.registry.get_state("deployments", "qa")["adapters"]
    with pytest.raises(PolicyError, match="a model card"):
        llmops_magics.add_adapter("qa", refs.adapter_v2, as_name="gov", workspace=ws)
    assert ws.registry.get_state("deployments", "qa")["adapters"] == before  # nothing loaded
    added = llmops_magics.add_adapter("qa", refs.adapter_v2, as_name="gov", override_policy="hotfix", workspace=ws)
    (override,) = [e for e in audit_events(workspace=ws) if e.action == "policy-override" and e.reason == "hotfix"]
    assert override.ref == refs.adapter_v2 and override.detail["action"] == "add-adapter"
    assert added.state["adapters"] == [*before, f"gov={refs.adapter_v2}"]
    llmops_magics.remove_adapter("qa", "gov", workspace=ws)


def test_adapters_named_at_deploy_are_served_from_the_start_and_a_foreign_one_is_refused(setup, alone, tmp_path):
    from llmops_magics import deploy
    from llmops_magics.errors import ValidationError

    ws, folders, refs, _ = setup
    handle = deploy(refs.base, name="base-plus", adapters=(f"b={refs.adapter_v2}",), threads=1, workspace=ws)
    try:
        assert complete(handle.url, "b", "The flag of") == alone["b"]["The flag of"]
        assert complete(handle.url, "base-plus", "The flag of") == alone["base"]["The flag of"]
        stored = json.loads(Path(ws.registry.get_state("deployments", "base-plus")["config_path"]).read_text())
        assert stored["spec"]["adapters"] == [f"b={refs.adapter_v2}"]
    finally:
        handle.stop()
    other = ws.registry.save("model", "other-base", path=_foreign_adapter(tmp_path / "x", folders.base), metadata={})
    with pytest.raises(ValidationError, match="is a model, not an adapter"):
        deploy(refs.base, name="wrong", adapters=(other.artifact.ref,), workspace=ws)


def test_timings_per_request_and_per_adapter_reach_metrics_and_the_request_log(setup):
    from deploy_support import logged_requests

    _, folders, _, handle = setup
    assert post(handle.url, "/v1/load_lora_adapter", {"lora_name": "timed", "lora_path": str(folders.adapter_b)}).ok
    try:
        body = {"model": "timed", "prompt": "The capital of", "max_tokens": 8, "min_tokens": 8, "stream": True}
        with post(handle.url, "/v1/completions", body, stream=True) as r:
            assert r.status_code == 200 and b"[DONE]" in r.content
        import time

        deadline, rows = time.monotonic() + 20, []
        while not rows and time.monotonic() < deadline:  # the server writes its log every 0.25 s
            rows = [row for row in logged_requests(handle, at_least=1) if row["arm"] == "timed"]
            time.sleep(0.05)
        assert rows and rows[-1]["tpot_ms"] > 0 and rows[-1]["queue_ms"] >= 0 and rows[-1]["ttft_ms"] > 0
        metrics = requests.get(handle.url + "/metrics").text
        for name in ("gen_ai_server_time_per_output_token_seconds", "llmops_request_queue_time_seconds"):
            assert f'{name}_count{{arm="timed"}} 1.0' in metrics
        assert 'gen_ai_server_time_to_first_token_seconds_count{arm="timed"} 1.0' in metrics
    finally:
        post(handle.url, "/v1/unload_lora_adapter", {"lora_name": "timed"})


def test_the_cli_adds_and_removes_an_adapter_of_a_running_deployment(setup, alone, capsys):
    from llmops_magics.adapters.cli import main

    ws, _, refs, handle = setup
    home = str(ws.registry.home)
    assert main(["--home", home, "add-adapter", "qa", refs.adapter_v2, "--as", "from-cli"]) == 0
    assert capsys.readouterr().out.strip().startswith("deployment://qa/")
    assert complete(handle.url, "from-cli", "People in") == alone["b"]["People in"]
    assert main(["--home", home, "remove-adapter", "qa", "from-cli"]) == 0
    gone = post(handle.url, "/v1/completions", {"model": "from-cli", "prompt": "x", "max_tokens": 2})
    assert gone.status_code == 404
    assert main(["--home", home, "deployments"]) == 0 and "qa" in capsys.readouterr().out
