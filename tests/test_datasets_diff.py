"""Comparing dataset versions: schema, split sizes, and rows (by key or whole)."""

import pytest

from llmops_magics import ValidationError, diff_datasets, save_dataset

V1 = [{"id": i, "q": f"q{i}", "a": f"a{i}"} for i in range(6)]


def test_identical_versions_have_no_changes(workspace):
    save_dataset("d", V1)
    d = diff_datasets("d/1", "d/1")
    assert d.identical and not d.changes
    assert "identical" in str(d)


def test_with_a_key_an_edited_row_is_changed_and_names_its_columns(workspace):
    save_dataset("d", V1)
    v2 = [dict(r) for r in V1[1:]] + [{"id": 9, "q": "q9", "a": "a9"}]
    v2[0]["a"] = "fixed"
    save_dataset("d", v2)
    d = diff_datasets("d/1", "d/2", key="id")
    assert (d.added, d.removed, d.changed) == (1, 1, 1)
    (changed,) = [c for c in d.changes if c.kind == "changed"]
    assert (changed.key, changed.columns, changed.old["a"], changed.new["a"]) == (1, ("a",), "a1", "fixed")
    assert 'a: "a1" → "fixed"' in str(d)


NO_ID = [{"q": r["q"], "a": r["a"]} for r in V1]


def test_without_a_key_or_an_id_column_an_edited_row_is_one_removed_and_one_added(workspace):
    save_dataset("d", NO_ID)
    save_dataset("d", [*NO_ID[:5], {"q": "q5", "a": "other"}])
    d = diff_datasets("d/1", "d/2")
    assert (d.key, d.added, d.removed, d.changed) == (None, 1, 1, 0)


def test_without_a_key_a_unique_id_column_is_detected_and_matches_rows(workspace):
    save_dataset("d", V1)
    save_dataset("d", [*V1[:5], {"id": 5, "q": "q5", "a": "other"}])
    d = diff_datasets("d/1", "d/2")
    assert (d.key, d.key_detected, d.added, d.removed, d.changed) == ("id", True, 0, 0, 1)
    assert "matched on detected id column 'id'" in str(d)


def test_detection_can_be_turned_off_to_compare_whole_rows(workspace):
    save_dataset("d", V1)
    save_dataset("d", [*V1[:5], {"id": 5, "q": "q5", "a": "other"}])
    d = diff_datasets("d/1", "d/2", detect_key=False)
    assert (d.key, d.added, d.removed, d.changed) == (None, 1, 1, 0)


def test_an_id_column_that_repeats_is_not_used_as_the_key(workspace):
    rows = [{"user_id": i % 2, **r} for i, r in enumerate(NO_ID)]
    save_dataset("d", rows)
    save_dataset("d", [*rows[:5], {**rows[5], "a": "other"}])
    d = diff_datasets("d/1", "d/2")
    assert (d.key, d.added, d.removed, d.changed) == (None, 1, 1, 0)


def test_adding_a_column_is_a_schema_change_not_a_change_of_every_row(workspace):
    save_dataset("d", NO_ID)
    save_dataset("d", [{**r, "source": "web"} for r in NO_ID])
    d = diff_datasets("d/1", "d/2")
    assert (d.added_columns, d.changes) == (("source",), ())
    assert "rows compared on: shared columns a, q" in str(d)


def test_with_an_id_column_adding_a_column_changes_no_rows(workspace):
    save_dataset("d", V1)
    save_dataset("d", [{**r, "source": "web"} for r in V1])
    d = diff_datasets("d/1", "d/2")
    assert (d.key, d.added_columns, d.changes) == ("id", ("source",), ())


def test_schema_changes_are_reported_as_added_removed_and_retyped_columns(workspace):
    save_dataset("d", V1)
    save_dataset("d", [{"id": str(r["id"]), "q": r["q"], "source": "web"} for r in V1])
    d = diff_datasets("d/1", "d/2")
    assert (d.added_columns, d.removed_columns, dict(d.retyped_columns)) == (
        ("source",),
        ("a",),
        {"id": ("int", "str")},
    )


def test_re_splitting_the_same_rows_changes_splits_but_no_rows(workspace):
    save_dataset("d", V1)
    save_dataset("d", V1, validation_fraction=0.5)
    d = diff_datasets("d/1", "d/2")
    assert not d.identical and not d.changes
    assert "validation: 0 → 3" in str(d)


def test_a_key_that_is_not_unique_is_rejected(workspace):
    save_dataset("d", [*V1, V1[0]])
    save_dataset("d", V1)
    with pytest.raises(ValidationError, match="not unique"):
        diff_datasets("d/1", "d/2", key="id")


def test_a_key_column_missing_from_a_version_is_rejected(workspace):
    save_dataset("d", V1)
    with pytest.raises(ValidationError, match="no column"):
        diff_datasets("d/1", "d/1", key="nope")


def test_the_diff_html_escapes_row_values(workspace):
    save_dataset("d", V1)
    save_dataset("d", [*V1, {"id": 7, "q": "<script>x</script>", "a": "b"}])
    data = diff_datasets("d/1", "d/2")._repr_mimebundle_()
    assert "<script>" not in data["text/html"] and "&lt;script&gt;" in data["text/html"]
