"""``%config LLMOps.…`` and ``%load_ext``: settings change the workspace without breaking its users."""

import pytest

import llmops_magics as lm
from llmops_magics.context import workspaces as context


@pytest.fixture
def configure_calls(monkeypatch):
    calls = []
    real = context.configure

    def counting(**kwargs):
        calls.append(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(context, "configure", counting)
    return calls


def reload_extension(ip):
    ip.run_line_magic("unload_ext", "llmops_magics")
    ip.run_line_magic("load_ext", "llmops_magics")


def test_a_config_change_leaves_a_running_jobs_workspace_usable(ip):
    job_ws = lm.workspace()
    reg = job_ws.registry
    ip.run_line_magic("config", "LLMOps.wandb_project = 'renamed'")
    assert lm.workspace().settings.wandb_project == "renamed"
    saved = lm.save_prompt("qa", "Answer {{ q }}", workspace=job_ws)
    assert reg.resolve("prompt://qa").ref == saved.ref
    assert lm.get_prompt("qa").ref == "prompt://qa/1"


def test_a_config_change_keeps_the_recorder_the_caller_configured(ip, workspace):
    ip.run_line_magic("config", "LLMOps.wandb_project = 'renamed'")
    ip.run_cell_magic("prompt", "qa", "Answer {{ q }}")
    lm.flush()
    assert [a["name"] for a in workspace.memory.artifacts] == ["qa"]


def test_load_ext_applies_config_values_in_one_change_and_keeps_the_recorder(ip, workspace, configure_calls):
    ip.run_line_magic("unload_ext", "llmops_magics")
    ip.config.LLMOps.wandb_project = "proj"
    ip.run_line_magic("load_ext", "llmops_magics")
    assert [c["wandb_project"] for c in configure_calls] == ["proj"]
    assert configure_calls[0]["home"] == str(workspace.home)
    assert lm.workspace().recorder.inner is workspace.memory


def test_load_ext_with_project_defaults_already_in_use_changes_nothing(ip, workspace, configure_calls):
    ws = context.configure(wandb_project="proj")
    reg = ws.registry
    reload_extension(ip)
    assert configure_calls == [{"wandb_project": "proj"}]  # the test's own call, none from %load_ext
    assert lm.workspace() is ws
    lm.save_prompt("qa", "Answer {{ q }}", workspace=ws)
    assert reg.resolve("prompt://qa").version == 1


def test_moving_the_home_with_config_leaves_no_trace_for_the_next_test(ip, tmp_path):
    ip.run_line_magic("config", f"LLMOps.home = {str(tmp_path / 'other')!r}")
    assert lm.registry().home == tmp_path / "other"


def test_the_fixture_recorder_receives_the_prompt_mirror(ip, workspace):
    ip.run_cell_magic("prompt", "qa", "Answer {{ q }}")
    lm.flush()
    assert lm.registry().home == workspace.home
    assert [a["name"] for a in workspace.memory.artifacts] == ["qa"]
