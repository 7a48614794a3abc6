"""Where the registry lives: the resolver every process (kernel, CLI, server extension) asks."""

from __future__ import annotations

from llmops_magics.context.home import resolve_home


def test_a_folder_with_nothing_uses_its_own_registry(tmp_path, monkeypatch):
    monkeypatch.delenv("LLMOPS_HOME", raising=False)
    monkeypatch.delenv("LLMOPS_SERVER_HOME", raising=False)
    assert resolve_home(start=tmp_path) == (tmp_path / ".llmops").resolve()


def test_a_jupyter_servers_registry_is_the_fallback_for_its_kernels(tmp_path, monkeypatch):
    monkeypatch.delenv("LLMOPS_HOME", raising=False)
    monkeypatch.setenv("LLMOPS_SERVER_HOME", str(tmp_path / "root" / ".llmops"))
    (tmp_path / "root" / "notebooks").mkdir(parents=True)
    assert resolve_home(start=tmp_path / "root" / "notebooks") == (tmp_path / "root" / ".llmops").resolve()


def test_a_project_of_its_own_wins_over_the_servers_registry(tmp_path, monkeypatch):
    monkeypatch.delenv("LLMOPS_HOME", raising=False)
    monkeypatch.setenv("LLMOPS_SERVER_HOME", str(tmp_path / "elsewhere"))
    (tmp_path / "proj" / ".llmops").mkdir(parents=True)
    assert resolve_home(start=tmp_path / "proj") == (tmp_path / "proj" / ".llmops").resolve()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "pyproject.toml").write_text('[tool.llmops]\nhome = "reg"\n')
    assert resolve_home(start=tmp_path / "other") == (tmp_path / "other" / "reg").resolve()


def test_llmops_home_wins_over_everything(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMOPS_HOME", str(tmp_path / "explicit"))
    monkeypatch.setenv("LLMOPS_SERVER_HOME", str(tmp_path / "server"))
    assert resolve_home(start=tmp_path) == (tmp_path / "explicit").resolve()


def test_a_pyproject_that_is_not_valid_toml_is_named_not_silently_ignored(tmp_path, monkeypatch):
    import pytest

    from llmops_magics.context.home import project_config

    monkeypatch.delenv("LLMOPS_HOME", raising=False)
    (tmp_path / "pyproject.toml").write_text('[tool.llmops]\nhome = "reg"\njudge_model = \n')
    with pytest.warns(UserWarning, match=r"pyproject.toml is not valid TOML \(.*line 3.*\); its \[tool.llmops\]"):
        config = project_config(tmp_path)
    assert config.values == {}
