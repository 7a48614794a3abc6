"""Registering data as dataset versions: any source format, one digest, splits and schema recorded."""

import json

import pytest

from llmops_magics import NotFoundError, ValidationError, get_dataset, save_dataset

ROWS = [
    {"question": "What is 1+1?", "answer": "2", "level": 1},
    {"question": "What is 2+2?", "answer": "4", "level": 1},
    {"question": "What is 3*3?", "answer": "9", "level": 2},
    {"question": "What is 10/2?", "answer": "5", "level": 2},
    {"question": "What is 7-3?", "answer": "4", "level": 1},
]


def write_sources(tmp_path):
    import pandas as pd

    df = pd.DataFrame(ROWS)
    paths = {"csv": tmp_path / "d.csv", "jsonl": tmp_path / "d.jsonl", "parquet": tmp_path / "d.parquet"}
    df.to_csv(paths["csv"], index=False)
    paths["jsonl"].write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    df.to_parquet(paths["parquet"])
    return df, paths


def test_a_dataframe_a_jsonl_file_a_parquet_file_and_an_hf_dataset_make_the_same_version(workspace, tmp_path):
    import datasets

    df, paths = write_sources(tmp_path)
    first = save_dataset("math", df)
    for source in (paths["jsonl"], paths["parquet"], datasets.Dataset.from_list(ROWS), ROWS):
        again = save_dataset("math", source)
        assert (again.ref, again.created) == (first.ref, False)


def test_list_columns_and_missing_times_read_back_from_parquet_make_the_same_version_as_the_file(workspace, tmp_path):
    import pandas as pd

    path = tmp_path / "tagged.parquet"
    pd.DataFrame(
        {
            "tags": [["a", "b"], ["c"]],
            "embedding": [[0.1, 0.2], [0.3]],
            "seen": [pd.Timestamp("2024-01-01"), pd.NaT],
        }
    ).to_parquet(path)
    from_file = save_dataset("tagged", path)
    from_frame = save_dataset("tagged", pd.read_parquet(path))
    assert (from_frame.ref, from_frame.created) == (from_file.ref, False)
    assert from_file.records() == [
        {"tags": ["a", "b"], "embedding": [0.1, 0.2], "seen": "2024-01-01 00:00:00"},
        {"tags": ["c"], "embedding": [0.3], "seen": None},
    ]


def test_csv_values_are_text_so_a_csv_is_a_different_version(workspace, tmp_path):
    df, paths = write_sources(tmp_path)
    assert save_dataset("math", df).digest != save_dataset("math", paths["csv"]).digest
    assert get_dataset("math/2").schema["level"] == "str"


def test_a_version_records_schema_row_count_splits_and_a_preview(workspace):
    v = save_dataset("math", ROWS, validation_fraction=0.4, seed=3)
    meta = v.artifact.metadata
    assert v.schema == {"answer": "str", "level": "int", "question": "str"}
    assert (v.num_rows, dict(meta["splits"]), meta["split_seed"]) == (5, {"train": 3, "validation": 2}, 3)
    assert len(meta["preview"]) == 5


def test_the_same_seed_gives_the_same_split_and_version(workspace):
    a = save_dataset("math", ROWS, validation_fraction=0.4, seed=1)
    b = save_dataset("math", ROWS, validation_fraction=0.4, seed=1)
    assert (b.ref, b.created) == (a.ref, False)
    assert sorted(r["question"] for r in a.records()) == sorted(r["question"] for r in ROWS)


def test_changed_rows_make_a_new_version_that_latest_points_at(workspace):
    save_dataset("math", ROWS)
    v2 = save_dataset("math", [*ROWS, {"question": "What is 0+0?", "answer": "0", "level": 1}])
    assert v2.ref == "dataset://math/2"
    assert get_dataset("math").ref == "dataset://math/2"


def test_an_hf_datasetdict_keeps_its_own_splits(workspace):
    import datasets

    dd = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(ROWS[:3]), "test": datasets.Dataset.from_list(ROWS[3:])}
    )
    v = save_dataset("math", dd)
    assert sorted(v.splits) == ["test", "train"]
    assert [r["answer"] for r in v.records("test")] == ["5", "4"]


def test_records_of_an_unknown_split_name_the_known_ones(workspace):
    with pytest.raises(NotFoundError, match="its splits are train"):
        save_dataset("math", ROWS).records("validation")


def test_to_pandas_gives_the_rows_in_order(workspace):
    df = save_dataset("math", ROWS).to_pandas()
    assert list(df["answer"]) == ["2", "4", "9", "5", "4"]


def test_an_empty_table_is_rejected_and_nothing_is_written(workspace):
    with pytest.raises(ValidationError, match="empty"):
        save_dataset("math", [])
    assert workspace.registry.names("dataset") == []


def test_a_missing_required_column_is_rejected_naming_the_columns_found(workspace):
    with pytest.raises(ValidationError, match=r"lacks required column\(s\) context; its columns are question"):
        save_dataset("math", ROWS, required_columns=["question", "context"])
    assert workspace.registry.names("dataset") == []


def test_an_unreadable_file_is_rejected_with_its_path(workspace, tmp_path):
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"question": "ok"}\n{not json\n')
    with pytest.raises(ValidationError, match=r"cannot read .*broken\.jsonl"):
        save_dataset("math", bad)
    with pytest.raises(ValidationError, match="does not exist"):
        save_dataset("math", tmp_path / "missing.csv")
    assert workspace.registry.names("dataset") == []


def test_a_bad_jsonl_line_is_reported_with_its_line_number_in_the_file(workspace, tmp_path):
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"question": "ok"}\n\n{not json\n')
    with pytest.raises(ValidationError, match=r"broken\.jsonl: line 3: Expecting property name"):
        save_dataset("math", bad)


def test_a_json_file_that_is_not_a_list_says_so_once(workspace, tmp_path):
    bad = tmp_path / "object.json"
    bad.write_text("{}")
    with pytest.raises(ValidationError, match=r"^[^:]*object\.json: a \.json data file must hold a list"):
        save_dataset("math", bad)


def test_a_dataset_save_is_mirrored_with_a_preview_table(workspace):
    save_dataset("math", ROWS)
    assert workspace.recorder.flush(30)
    (mirrored,) = workspace.memory.artifacts
    columns, rows = mirrored["tables"]["preview"]
    assert (mirrored["type"], columns, len(rows)) == ("dataset", ["question", "answer", "level"], 5)


def test_going_back_to_older_rows_makes_them_latest_again_here_and_in_wandb(workspace):
    save_dataset("math", ROWS)
    save_dataset("math", ROWS[:3])
    back = save_dataset("math", ROWS)
    assert back.ref == "dataset://math/1" and get_dataset("math").ref == "dataset://math/1"
    assert workspace.recorder.flush(30)
    assert [a["version"] for a in workspace.memory.artifacts] == [1, 2, 1]
