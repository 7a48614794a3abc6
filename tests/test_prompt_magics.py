"""The magics in a real IPython shell: they parse, call the core, and return what they made."""

import pytest
from IPython.core.error import UsageError

import llmops_magics as lm


def cell(ip, line, body):
    return ip.run_cell_magic("prompt", line, body)


def test_a_prompt_cell_saves_a_version_and_returns_it(ip):
    p = cell(ip, "qa --alias production --param tone=formal --description 'first cut'", "Answer {{ q }}\n")
    assert (p.ref, p.aliases, dict(p.params), p.description) == (
        "prompt://qa/1",
        ("latest", "production"),
        {"tone": "formal"},
        "first cut",
    )


def test_a_prompt_cell_records_its_command_line_in_the_spec(ip):
    p = cell(ip, "qa --alias production", "Answer {{ q }}")
    assert p.artifact.spec["command"] == "%%prompt qa --alias production"
    assert p.artifact.spec["args"]["aliases"] == ("production",)
    assert p.artifact.spec["args"]["template"] == "Answer {{ q }}"


def test_param_values_are_parsed_as_json_when_they_can_be(ip):
    p = cell(ip, "qa -p temperature=0.2 -p stop='[\"\\n\"]' -p label=plain", "x {{ q }}")
    assert dict(p.params) == {"temperature": 0.2, "stop": ["\n"], "label": "plain"}


def test_running_the_same_cell_twice_keeps_one_version(ip):
    cell(ip, "qa", "Answer {{ q }}")
    assert cell(ip, "qa", "Answer {{ q }}").created is False


def test_rerunning_an_older_cell_says_latest_moved_back_to_it(ip):
    cell(ip, "qa", "A {{ q }}")
    cell(ip, "qa", "B {{ q }}")
    back = cell(ip, "qa", "A {{ q }}")
    assert "latest now points to it" in str(back)
    assert ip.run_line_magic("prompt", "show qa").version == 1
    assert ip.run_line_magic("prompt", "render qa q=x") == "A x"


def test_the_line_subcommands_return_displayable_results(ip):
    cell(ip, "qa", "v1 {{ q }}")
    cell(ip, "qa", "v2 {{ q }}")
    assert len(ip.run_line_magic("prompt", "list")) == 1
    assert ip.run_line_magic("prompt", "show qa/1").version == 1
    assert "+v2 {{ q }}" in ip.run_line_magic("prompt", "diff qa/1 qa/2").text
    assert ip.run_line_magic("prompt", "tag qa/1 production").aliases == ("production",)
    assert ip.run_line_magic("prompt", "render qa@production q='a b'") == "v1 a b"
    assert len(ip.run_line_magic("prompt", "history qa")) == 2
    for obj in (ip.run_line_magic("prompt", "list"), ip.run_line_magic("prompt", "history qa")):
        data = obj._repr_mimebundle_()
        data = data[0] if isinstance(data, tuple) else data
        assert {"text/plain", "text/html"} <= set(data)


def test_render_accepts_variables_named_like_the_api_arguments(ip):
    cell(ip, "qa", "{{ ref }} {{ workspace }} {{ values }}")
    assert ip.run_line_magic("prompt", "render qa ref=1 workspace=2 values=3") == "1 2 3"


def test_a_cell_records_its_code_and_execution_count(ip):
    running = ip.execution_count
    ip.run_cell("%%prompt cellsrc\nHello {{ who }}", store_history=True)
    src = lm.get_prompt("cellsrc").artifact.source
    assert src["code"] == "%%prompt cellsrc\nHello {{ who }}"
    assert src["execution_count"] == running


@pytest.mark.parametrize(
    ("line", "body", "message"),
    [
        ("", "x", "the following arguments are required: name"),
        ("bad/name", "x", "path separators"),
        ("qa", "   ", "empty"),
        ("qa --bogus", "x", "unrecognized arguments: --bogus"),
        ("qa --param novalue", "x", "key=value"),
        ("qa", "{% if %}", "syntax error"),
        ("qa", "{{ x | nosuchfilter }}", "unknown filter 'nosuchfilter'"),
        ("qa", "{% include 'other' %}", "include %} is not supported"),
    ],
)
def test_bad_cells_raise_a_one_line_usage_error_and_write_nothing(ip, workspace, line, body, message):
    with pytest.raises(UsageError, match=message) as info:
        cell(ip, line, body)
    assert type(info.value) is UsageError and "\n" not in str(info.value)
    assert workspace.registry.names() == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("", "expects a subcommand list|show|diff|tag|render|history, found nothing"),
        ("frobnicate", "found 'frobnicate'"),
        ("show nope", "no prompt is named 'nope'"),
        ("show qa/99", "no version 99"),
        ("render qa", r"needs variable\(s\) q"),
        ("tag qa latest", "automatic"),
        ("show dataset://qa", "a prompt is expected"),
    ],
)
def test_bad_subcommands_raise_a_one_line_usage_error(ip, line, message):
    cell(ip, "qa", "v {{ q }}")
    with pytest.raises(UsageError, match=message) as info:
        ip.run_line_magic("prompt", line)
    assert type(info.value) is UsageError


def test_rendering_with_a_value_the_template_cannot_use_is_a_one_line_usage_error(ip):
    cell(ip, "loop", "{% for i in items %}{{ i }}{% endfor %}")
    with pytest.raises(UsageError, match="failed to render: TypeError") as info:
        ip.run_line_magic("prompt", "render loop items=5")
    assert type(info.value) is UsageError and "\n" not in str(info.value)


def test_a_usage_error_shows_no_traceback_in_the_cell_output(ip, capsys):
    ip.run_cell("%prompt show nope")
    out = capsys.readouterr()
    text = out.out + out.err
    assert "UsageError: no prompt is named 'nope'" in text
    assert "Traceback" not in text


def test_settings_are_traitlets_visible_to_config(ip, tmp_path):
    ip.run_line_magic("config", f"LLMOps.home = {str(tmp_path / 'other')!r}")
    cell(ip, "elsewhere", "x {{ q }}")
    assert (tmp_path / "other" / "registry.db").exists()
    assert lm.registry().home == tmp_path / "other"
