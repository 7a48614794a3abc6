"""A deployment's life: started by the magic, recorded, inspected, found and stopped by a new process, in W&B."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import requests
from conftest import ipython_shell, read_wandb_run
from deploy_support import build_folders, logged_requests, module_workspace, quiet_workspace, register, stop_all

pytestmark = [pytest.mark.slow, pytest.mark.wandb]

SIDEBAR_FIELDS = {
    "name",
    "ref",
    "target",
    "pid",
    "port",
    "url",
    "host",
    "started_at",
    "status",
    "engine",
    "canary",
    "log_path",
}


@pytest.fixture(scope="module")
def life(tmp_path_factory):
    """``%deploy`` in a real IPython shell, W&B offline, monitoring logged every 0.5 s.

    The magics' W&B mode comes from the module's workspace (offline); setting it with
    ``%config`` would stay in the shared shell's config for later tests.
    """
    from llmops_magics.store.refs import validate_name

    base = tmp_path_factory.mktemp("deploy-life")
    home = base / ".llmops"
    refs = register(quiet_workspace(home), build_folders(str(tmp_path_factory.getbasetemp())))
    with module_workspace(home, wandb_dir=base / "wandb") as ws:
        shell = ipython_shell()
        shell.run_line_magic("load_ext", "llmops_magics")
        shell.run_line_magic("config", f"LLMOps.home = {str(home)!r}")
        try:
            line = f"{refs.adapter} --name svc --prompt {refs.prompt} --api-key s3cret --metrics-interval 0.5"
            handle = shell.run_line_magic("deploy", line)
            handle.api_key = "s3cret"
            yield {"ws": ws, "shell": shell, "refs": refs, "handle": handle, "home": home, "name": validate_name("svc")}
        finally:
            from llmops_magics.context import workspaces as context

            stop_all(context.current())
            shell.run_line_magic("unload_ext", "llmops_magics")


def registry():
    from llmops_magics.context import workspaces as context

    return context.current().registry


def test_the_magic_returns_a_handle_whose_url_answers(life):
    assert requests.get(life["handle"].url + "/health").json()["deployment"] == "svc"


def test_the_deployment_artifact_links_the_adapter_it_serves_and_the_prompt(life):
    edges = {(e.source, e.relation) for e in registry().upstream(life["handle"].ref, depth=1)}
    assert edges == {(life["refs"].adapter, "serves"), (life["refs"].prompt, "prompt")}


def test_the_spec_holds_resolved_arguments_and_the_magic_line_without_the_key(life):
    stored = registry().resolve(life["handle"].ref).spec
    spec = stored["args"]
    assert (spec["target"], spec["prompt"], spec["api_key"]) == (life["refs"].adapter, life["refs"].prompt, "***")
    assert stored["command"] == f"%deploy {life['refs'].adapter} --name svc --prompt {life['refs'].prompt} " + (
        "--api-key *** --metrics-interval 0.5"
    )


def test_the_api_key_is_written_nowhere_under_the_registry_home(life):
    files = [p for p in life["home"].rglob("*") if p.is_file()]
    assert files and not [p for p in files if b"s3cret" in p.read_bytes()]


def test_a_first_deployment_version_gets_the_production_alias(life):
    assert "production" in registry().resolve(life["handle"].ref).aliases


def test_the_state_record_has_the_fields_the_sidebar_reads(life):
    state = registry().get_state("deployments", "svc")
    assert SIDEBAR_FIELDS <= set(state) and state["status"] == "running" and state["url"] == life["handle"].url


def test_status_says_running_and_counts_recent_requests(life):
    life["handle"].complete(variables={"question": "What is the capital of Brailand?"}, max_tokens=4)
    logged_requests(life["handle"], at_least=1)
    status = life["shell"].run_line_magic("deploy", "status svc")
    assert status.alive and status.summary["all"]["requests"] >= 1


def test_list_shows_the_deployment_running(life):
    listing = life["shell"].run_line_magic("deploy", "list")
    assert [(row["name"], row["status"]) for row in listing] == [("svc", "running")]


def test_logs_tail_the_server_output(life):
    logs = life["shell"].run_line_magic("deploy", "logs svc -n 20")
    assert "serving svc at" in str(logs)


def test_a_second_deploy_under_a_running_name_is_refused_and_writes_nothing(life):
    from IPython.core.error import UsageError

    before = len(registry().versions("deployment", "svc"))
    with pytest.raises(UsageError, match="already running"):
        life["shell"].run_line_magic("deploy", f"{life['refs'].adapter_v2} --name svc")
    assert len(registry().versions("deployment", "svc")) == before


def test_texts_stay_out_of_the_request_log_unless_asked(life):
    from llmops_magics.serving.requestlog import read_requests

    before = len(read_requests(life["handle"].state["monitor_db"]))
    life["handle"].complete(variables={"question": "What color is the flag of Brailand?"}, max_tokens=2)
    rows = logged_requests(life["handle"], at_least=before + 1, with_text=True)
    assert rows and all(r["input_text"] is None and r["output_text"] is None for r in rows)
    assert all(r["input_chars"] > 0 for r in rows if r["status"] == 200)


def test_a_fresh_process_finds_it_running_and_stops_it(life):
    script = textwrap.dedent(
        f"""
        import json, llmops_magics as L
        L.configure(home={str(life["home"])!r}, wandb_mode="disabled")
        before = [(d["name"], d["status"]) for d in L.list_deployments()]
        stopped = L.stop_deployment("svc")
        print(json.dumps({{"before": before, "outcome": stopped.outcome, "after": len(L.list_deployments())}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    from llmops_magics.serving.launcher import pid_alive

    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"before": [["svc", "running"]], "outcome": "stopped", "after": 0}
    assert not pid_alive(life["handle"].pid)


@pytest.fixture(scope="module")
def wandb_records(life):
    """The deployment's offline W&B run, read back once the server has stopped."""
    from llmops_magics.serving import stop_deployment

    if registry().get_state("deployments", "svc") is not None:
        stop_deployment("svc")
    info = registry().resolve(life["handle"].ref).wandb
    return read_wandb_run(info["run_dir"])


def test_the_wandb_run_logged_monitoring_metrics(wandb_records):
    history = [r for r in wandb_records if r.get("type") == "history" or "history" in r]
    text = json.dumps(history)
    assert "total/requests" in text and "latency_p50_ms" in text


def test_the_wandb_run_holds_the_deployment_artifact(wandb_records):
    text = json.dumps(wandb_records)
    assert '"deployment"' in text and "llmops-v1" in text


def test_a_replacement_listener_leaves_connections_to_the_old_one_until_it_is_ready():
    import socket

    from llmops_magics.modelserver.server import bind_socket, steer_port

    def accepted(sock):
        sock.setblocking(False)
        n = 0
        while True:
            try:
                sock.accept()[0].close()
            except BlockingIOError:
                return n
            n += 1

    old = bind_socket("127.0.0.1", 0)
    old.listen(64)
    port = old.getsockname()[1]
    new = bind_socket("127.0.0.1", port)
    new.listen(64)
    clients = []
    try:
        assert steer_port(new, 0)
        clients += [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
        assert (accepted(old), accepted(new)) == (10, 0)
        assert steer_port(new, 1)
        clients += [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
        assert (accepted(old), accepted(new)) == (0, 10)
    finally:
        for c in [*clients, old, new]:
            c.close()
