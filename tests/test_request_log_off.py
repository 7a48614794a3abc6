"""``--no-request-log``: a deployment that logs no request, and what reads the log saying so.

The fast tests check the option itself (default on, the flag, its refusal beside
``--log-text``, the no-op log). The slow ones deploy the cached tiny model with
``request_log=False`` on 127.0.0.1, send it real requests, and check that they are
answered while no request log file appears, that every reader (monitor, ``%deploy ab``,
feedback from the kernel and over HTTP, ``%dataset from-log``, status, the monitor panel)
refuses or says why in one line, and that a canary and a promote keep the option.
"""

from __future__ import annotations

import argparse
import json

import pytest
import requests

from llmops_magics import ValidationError
from llmops_magics.ops.argv import add_options, parse_line
from llmops_magics.ops.deploy import DeploySpec
from llmops_magics.serving.requestlog import NoRequestLog, RequestLog, logs_requests, read_requests

NO_LOG = r"deployment 'quiet' keeps no request log \(deployed with --no-request-log\)"


def test_the_request_log_is_on_unless_the_flag_turns_it_off_and_the_choice_is_stored():
    parser = argparse.ArgumentParser()
    add_options(parser, DeploySpec, "magic")
    on, _ = parse_line(parser, ["model://m/1"], DeploySpec)
    off, _ = parse_line(parser, ["model://m/1", "--no-request-log"], DeploySpec)
    assert DeploySpec(**on).request_log is True and DeploySpec(**off).request_log is False
    stored = DeploySpec(**off).to_dict()
    assert stored["request_log"] is False
    assert DeploySpec.from_dict(stored).request_log is False
    assert logs_requests(stored) is False and logs_requests(DeploySpec(**on).to_dict()) is True
    assert logs_requests({}) is True  # a spec stored before the option existed logged requests


def test_texts_cannot_be_logged_without_a_request_log():
    with pytest.raises(ValidationError, match="--log-text and --no-request-log exclude each other"):
        DeploySpec(target="model://m/1", request_log=False, log_text=True)


def test_a_deployment_spec_without_a_log_replays_with_it_off(workspace):
    import llmops_magics as lm

    made = DeploySpec(name="svc", target="model://m/1", request_log=False)
    call = lm.replay({"op": "deploy", "args": made.to_dict()}, dry_run=True).call
    assert call == "deploy(target='model://m/1', name='svc', request_log=False)"


def test_the_no_op_log_writes_no_file_while_the_real_one_does(tmp_path):
    row = {"ts": 1.0, "request_id": "r1", "endpoint": "/v1/completions", "status": 200, "user": "u1"}
    quiet = NoRequestLog(tmp_path / "quiet.sqlite", salt="quiet")
    quiet.record(row)
    assert quiet.flush() and not quiet.enabled
    quiet.close()
    loud = RequestLog(tmp_path / "loud.sqlite", salt="loud")
    loud.record(row)
    loud.close()
    assert not (tmp_path / "quiet.sqlite").exists()
    assert [r["request_id"] for r in read_requests(tmp_path / "loud.sqlite")] == ["r1"]
    assert quiet.user_digest("u1") != "u1"  # the feedback route's digest still works


# ---------------------------------------------------------------------- a real server


@pytest.fixture(scope="module")
def quiet(tmp_path_factory, tiny_model_dir):
    from deploy_support import module_workspace, stop_all

    from llmops_magics import deploy

    home = tmp_path_factory.mktemp("nolog") / ".llmops"
    with module_workspace(home) as ws:
        base = ws.registry.save("model", "tiny-gpt2", path=tiny_model_dir, metadata={"architecture": "gpt2"})
        other = ws.registry.save("model", "tiny-gpt2-b", path=tiny_model_dir, metadata={"architecture": "gpt2"})
        try:
            handle = deploy(base.artifact.ref, name="quiet", request_log=False, threads=1, workspace=ws)
            ids = [handle.complete("Question: what is a lynx?\nAnswer:", max_tokens=3, user=f"u{i}")["id"]
                   for i in range(6)]  # fmt: skip
            yield {"ws": ws, "home": home, "handle": handle, "ids": ids, "other": other.artifact.ref}
        finally:
            stop_all(ws)


@pytest.mark.slow
def test_requests_are_served_and_nothing_is_logged(quiet):
    handle = quiet["handle"]
    assert len(set(quiet["ids"])) == 6
    assert handle.state["request_log"] is False
    spec = quiet["ws"].registry.resolve(handle.ref).spec
    assert spec["args"]["request_log"] is False
    # a server with a log creates its file before the first request (RequestLog prepares it at start)
    assert not (quiet["home"] / "monitoring" / "quiet.sqlite").exists()


@pytest.mark.slow
def test_feedback_over_http_is_a_409_naming_the_missing_log(quiet):
    r = requests.post(quiet["handle"].url + "/v1/feedback", json={"request_id": quiet["ids"][0], "label": "up"},
                      timeout=30)  # fmt: skip
    error = r.json()["error"]
    assert r.status_code == 409 and error["code"] == "request_log_off"
    assert "keeps no request log" in error["message"] and "\n" not in error["message"]


@pytest.mark.slow
def test_kernel_feedback_from_log_and_ab_refuse_with_the_reason(quiet):
    from llmops_magics import ab, dataset_from_log, feedback, monitor, retrain

    ws = quiet["ws"]
    with pytest.raises(ValidationError, match=NO_LOG + ", so there is no logged request to rate"):
        feedback("quiet", quiet["ids"][0], label="down", workspace=ws)
    with pytest.raises(ValidationError, match=NO_LOG):
        dataset_from_log("quiet", workspace=ws)
    with pytest.raises(ValidationError, match=NO_LOG + ", so there is no traffic to compare the arms on"):
        ab("quiet", workspace=ws)
    with pytest.raises(ValidationError, match=NO_LOG + ", so there is nothing to monitor"):
        monitor("quiet", workspace=ws)
    with pytest.raises(ValidationError, match=NO_LOG):  # refused at once, not by a job that keeps trying
        monitor("quiet", every="5m", workspace=ws)
    with pytest.raises(ValidationError, match=NO_LOG + ", so a retrain's canary would have no logged traffic"):
        retrain("quiet", data="anything", workspace=ws)  # before any training, not at its A/B step


@pytest.mark.slow
def test_status_and_the_monitor_panel_say_there_is_no_log_instead_of_zeros(quiet):
    from llmops_magics.adapters.widgets.deploy_monitor import DeploymentMonitor
    from llmops_magics.serving import deployment_status, monitor_snapshot

    ws = quiet["ws"]
    status = deployment_status("quiet", workspace=ws)
    assert status.alive and status.note and "keeps no request log" in status.note
    assert str(status).splitlines()[1] == status.note  # the line, not a table of zero requests
    assert "keeps no request log" in json.dumps(status._repr_mimebundle_())
    assert "keeps no request log" in monitor_snapshot("quiet", workspace=ws)["note"]
    panel = DeploymentMonitor("quiet", workspace=ws, live=False)
    try:
        assert "keeps no request log" in panel.table.value and "<table" not in panel.table.value
    finally:
        panel.close()


@pytest.mark.slow
def test_percent_monitor_and_percent_deploy_ab_refuse_in_one_line(quiet):
    from conftest import ipython_shell
    from IPython.core.error import UsageError

    shell = ipython_shell()
    shell.run_line_magic("load_ext", "llmops_magics")
    shell.run_line_magic("config", f"LLMOps.home = {str(quiet['home'])!r}")
    try:
        for magic, line in (("monitor", "quiet"), ("deploy", "ab quiet"), ("dataset", "from-log quiet")):
            with pytest.raises(UsageError, match="keeps no request log") as err:
                shell.run_line_magic(magic, line)
            assert "\n" not in str(err.value)
    finally:
        shell.run_line_magic("unload_ext", "llmops_magics")
        shell.config.pop("LLMOps", None)


@pytest.mark.slow
def test_a_canary_and_a_promote_keep_the_log_off(quiet):
    from llmops_magics.serving import promote_deployment, set_canary

    ws = quiet["ws"]
    with_canary = set_canary("quiet", f"{quiet['other']}:50%", workspace=ws)
    promoted = promote_deployment("quiet", workspace=ws)
    for handle in (with_canary, promoted):
        assert ws.registry.resolve(handle.ref).spec["args"]["request_log"] is False
    assert promoted.state["request_log"] is False
    promoted.complete("Question: what is a lynx?\nAnswer:", max_tokens=3, user="after")
    promoted.stop()
    assert not (quiet["home"] / "monitoring" / "quiet.sqlite").exists()
