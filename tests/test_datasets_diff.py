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


def test_without_a_key_an_edited_row_is_one_removed_and_one_added(workspace):
    save_dataset("d", V1)
    save_dataset("d", [*V1[:5], {"id": 5, "q": "q5", "a": "other"}])
    d = diff_datasets("d/1", "d/2")
    assert (d.added, d.removed, d.changed) == (1, 1, 0)


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
