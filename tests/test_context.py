"""The process-wide workspace: changing a setting must not pull the registry from under anyone."""

import llmops_magics as lm
from llmops_magics.context import workspaces as context
from llmops_magics.recording import MemoryRecorder


def test_a_workspace_obtained_before_a_settings_change_can_still_save(workspace):
    reg = workspace.registry
    context.configure(wandb_project="renamed")
    saved = lm.save_prompt("qa", "Answer {{ q }}", workspace=workspace)
    assert reg.resolve("prompt://qa").version == saved.version == 1
    assert lm.get_prompt("qa").ref == "prompt://qa/1"


def test_workspaces_on_the_same_folder_share_one_registry(workspace):
    before = workspace.registry
    assert context.configure(wandb_project="renamed").registry is before


def test_closing_a_workspace_leaves_the_shared_registry_open(workspace):
    reg = workspace.registry
    workspace.close()
    assert reg.names() == []
    assert workspace.registry is reg


def test_a_recorder_given_to_configure_survives_later_setting_changes(workspace):
    context.configure(wandb_project="renamed", home=str(workspace.home))
    lm.save_prompt("qa", "Answer {{ q }}")
    lm.flush()
    assert [a["name"] for a in workspace.memory.artifacts] == ["qa"]
    other = MemoryRecorder()
    assert context.configure(recorder=other).recorder.inner is other
    assert context.configure(recorder=None).recorder.enabled is False
