"""The ``llmops`` command: it inspects and maintains registries, and never makes one by mistake."""

import pytest

from llmops_magics.adapters.cli import main as cli


@pytest.mark.parametrize(
    "command",
    [
        ["list"],
        ["show", "qa"],
        ["lineage", "qa"],
        ["doctor"],
        ["tag", "qa", "production"],
        ["gc"],
        ["gc", "--yes"],
        ["run", "qa"],
        ["run", "spec.json", "--dry-run"],
        ["deployments"],
        ["stop", "svc"],
        ["promote", "svc"],
        ["add-adapter", "svc", "qa-lora"],
        ["traces"],
        ["trace"],
    ],
)
def test_a_folder_without_a_registry_is_refused_and_left_alone(tmp_path, capsys, command):
    typo = tmp_path / "x" / "typo-home"
    assert cli(["--home", str(typo), *command]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"llmops: no registry at {typo}: check --home or $LLMOPS_HOME (a first save creates one)"
    assert not (tmp_path / "x").exists()


def test_the_default_folder_without_a_registry_is_refused_too(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LLMOPS_HOME", raising=False)
    assert cli(["doctor"]) == 2
    assert "no registry at" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_deployment_and_trace_commands_name_what_is_missing_in_one_line(workspace, capsys):
    home = str(workspace.home)
    workspace.registry.save("prompt", "p", data=b"x")  # the registry exists
    assert cli(["--home", home, "deployments"]) == 0
    for command in (["stop", "svc"], ["promote", "svc"], ["remove-adapter", "svc", "sql"]):
        assert cli(["--home", home, *command]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("llmops: no deployment is named 'svc'") and "\n" not in err
    assert cli(["--home", home, "traces"]) == 0
