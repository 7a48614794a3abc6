"""``%dataset`` in a real IPython shell: it parses, calls the core, and returns what it made."""

import pytest
from IPython.core.error import UsageError

import llmops_magics as lm

ROWS = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(10)]


def test_a_variable_in_the_notebook_becomes_a_dataset_version(ip):
    ip.user_ns["rows"] = ROWS
    v = ip.run_line_magic("dataset", "qa --from rows --validation 0.2 --seed 1 --alias golden")
    assert (v.ref, v.aliases, dict(v.artifact.metadata["splits"])) == (
        "dataset://qa/1",
        ("latest", "golden"),
        {"train": 8, "validation": 2},
    )


def test_the_magic_line_and_the_source_are_recorded_in_the_spec(ip):
    ip.user_ns["rows"] = ROWS
    v = ip.run_line_magic("dataset", "qa --from rows")
    assert (v.artifact.spec["command"], v.artifact.spec["args"]["data"]) == ("%dataset qa --from rows", "<list>")


def test_a_file_path_works_as_the_source(ip, tmp_path):
    import json

    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    assert ip.run_line_magic("dataset", f"qa --from {path} --require question,answer").num_rows == 10


def test_the_subcommands_list_show_diff_and_history_return_displayable_results(ip):
    ip.user_ns["v1"], ip.user_ns["v2"] = ROWS, ROWS[:9]
    ip.run_line_magic("dataset", "qa --from v1")
    ip.run_line_magic("dataset", "qa --from v2")
    results = [
        ip.run_line_magic("dataset", "list"),
        ip.run_line_magic("dataset", "show qa/1"),
        ip.run_line_magic("dataset", "diff qa/1 qa/2 --key question"),
        ip.run_line_magic("dataset", "history qa"),
    ]
    assert (len(results[0]), results[1].version, results[2].removed, len(results[3])) == (1, 1, 1, 2)
    for obj in results:
        data = obj._repr_mimebundle_()
        data = data[0] if isinstance(data, tuple) else data
        assert {"text/plain", "text/html"} <= set(data)


def test_an_unknown_source_is_a_one_line_usage_error(ip):
    with pytest.raises(UsageError, match="neither a variable in this notebook nor an existing file"):
        ip.run_line_magic("dataset", "qa --from nothing_here")


def test_a_missing_required_column_is_a_usage_error_and_writes_nothing(ip):
    ip.user_ns["rows"] = ROWS
    with pytest.raises(UsageError, match=r"lacks required column\(s\) context"):
        ip.run_line_magic("dataset", "qa --from rows --require context")
    assert lm.registry().names("dataset") == []


def test_the_python_api_twin_lists_and_diffs_the_same_way(workspace):
    lm.save_dataset("qa", ROWS)
    lm.save_dataset("qa", ROWS[1:])
    assert [s.name for s in lm.list_datasets()] == ["qa"]
    assert lm.diff_datasets("qa/1", "qa/2").removed == 1
    assert [v.version for v in lm.dataset_history("qa").versions] == [1, 2]


def test_register_creates_a_dataset_whose_name_is_a_subcommand(ip):
    ip.user_ns["rows"] = ROWS
    v = ip.run_line_magic("dataset", "register list --from rows")
    assert v.ref == "dataset://list/1"
    assert [n.name for n in ip.run_line_magic("dataset", "list")] == ["list"]


def test_a_subcommand_given_a_source_points_at_register(ip):
    ip.user_ns["rows"] = ROWS
    with pytest.raises(UsageError, match="write %dataset register show --from"):
        ip.run_line_magic("dataset", "show --from rows")
    assert lm.registry().names("dataset") == []


def test_quoted_values_lose_their_quotes(ip, tmp_path):
    import json

    path = tmp_path / "my rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    v = ip.run_line_magic("dataset", f"qa --from '{path}' --description 'two words'")
    assert (v.num_rows, v.artifact.metadata["description"]) == (10, "two words")


def test_diff_whole_rows_turns_off_id_detection(ip):
    ip.user_ns["v1"] = [{"id": i, **r} for i, r in enumerate(ROWS)]
    ip.user_ns["v2"] = [{"id": i, **r, "answer": "x" if i == 0 else r["answer"]} for i, r in enumerate(ROWS)]
    ip.run_line_magic("dataset", "qa --from v1")
    ip.run_line_magic("dataset", "qa --from v2")
    detected = ip.run_line_magic("dataset", "diff qa/1 qa/2")
    whole = ip.run_line_magic("dataset", "diff qa/1 qa/2 --whole-rows")
    assert (detected.changed, whole.changed, whole.added, whole.removed) == (1, 0, 1, 1)
