import os

import pytest

from llmops_magics.errors import AmbiguousReferenceError, NotFoundError, ValidationError
from llmops_magics.store import Registry


@pytest.fixture
def reg(tmp_path):
    r = Registry(tmp_path / "reg")
    yield r
    r.close()


def test_versions_count_up_from_one_per_name(reg):
    assert reg.save("prompt", "a", data=b"one").artifact.version == 1
    assert reg.save("prompt", "a", data=b"two").artifact.version == 2
    assert reg.save("prompt", "b", data=b"one").artifact.version == 1


def test_saving_identical_content_returns_the_existing_version(reg):
    first = reg.save("prompt", "a", data=b"same")
    again = reg.save("prompt", "a", data=b"same")
    assert again.created is False
    assert again.artifact.version == first.artifact.version == 1
    assert len(reg.versions("prompt", "a")) == 1


def test_identical_content_comes_back_as_an_older_version_after_a_change(reg):
    reg.save("prompt", "a", data=b"x")
    reg.save("prompt", "a", data=b"y")
    assert reg.save("prompt", "a", data=b"x").artifact.version == 1


def test_latest_follows_the_newest_version(reg):
    reg.save("prompt", "a", data=b"1")
    reg.save("prompt", "a", data=b"2")
    assert reg.resolve("prompt://a").version == 2
    assert reg.resolve("prompt://a@latest").version == 2
    assert reg.resolve("prompt://a/2").aliases == ("latest",)
    assert "latest" not in reg.resolve("prompt://a/1").aliases


def test_saving_older_content_again_moves_latest_back_to_its_version(reg):
    reg.save("prompt", "a", data=b"A")
    reg.save("prompt", "a", data=b"B")
    again = reg.save("prompt", "a", data=b"A")
    assert (again.created, again.latest_moved, again.artifact.version) == (False, True, 1)
    assert reg.resolve("prompt://a").version == reg.resolve("a@latest").version == 1
    assert [v.aliases for v in reg.versions("prompt", "a")] == [("latest",), ()]
    assert reg.names()[0].latest == 1 and reg.latest_version("prompt", "a") == 1
    assert reg.aliases("prompt", "a") == {}
    assert reg.save("prompt", "a", data=b"C").artifact.version == reg.resolve("prompt://a").version == 3


def test_saving_the_latest_content_again_moves_nothing(reg):
    reg.save("prompt", "a", data=b"A")
    assert reg.save("prompt", "a", data=b"A").latest_moved is False


def test_latest_cannot_be_removed_by_hand(reg):
    reg.save("prompt", "a", data=b"A")
    with pytest.raises(ValidationError, match="automatic"):
        reg.remove_alias("prompt", "a", "latest")


def test_a_registry_from_before_latest_was_stored_keeps_the_highest_version_as_latest(tmp_path):
    import sqlite3

    from llmops_magics.store.schema import SCHEMA_VERSION

    home = tmp_path / "old"
    reg = Registry(home)
    reg.save("prompt", "a", data=b"A", aliases=["production"])
    reg.save("prompt", "a", data=b"B")
    reg.close()
    db = sqlite3.connect(home / "registry.db")
    db.execute("DELETE FROM aliases WHERE alias = 'latest'")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    reg = Registry(home)
    assert sqlite3.connect(home / "registry.db").execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert reg.names()[0].latest == 2 and reg.aliases("prompt", "a") == {"production": 1}
    assert reg.save("prompt", "a", data=b"A").latest_moved is True
    assert reg.resolve("prompt://a").version == 1
    reg.close()


def test_an_alias_moves_when_pointed_at_another_version(reg):
    reg.save("prompt", "a", data=b"1", aliases=["production"])
    reg.save("prompt", "a", data=b"2")
    assert reg.resolve("a@production").version == 1
    reg.set_alias("prompt://a/2", "production")
    assert reg.resolve("a@production").version == 2
    assert "production" not in reg.resolve("a/1").aliases


def test_a_bare_name_is_resolved_across_kinds_when_unambiguous(reg):
    reg.save("dataset", "tickets", data=b"rows")
    assert reg.resolve("tickets").kind == "dataset"


def test_a_bare_name_used_by_two_kinds_is_ambiguous(reg):
    reg.save("dataset", "qa", data=b"rows")
    reg.save("prompt", "qa", data=b"text")
    with pytest.raises(AmbiguousReferenceError, match="write dataset://qa or prompt://qa to choose"):
        reg.resolve("qa")
    assert reg.resolve("qa", kind="prompt").kind == "prompt"


def test_unknown_references_say_what_exists(reg):
    reg.save("prompt", "a", data=b"1", aliases=["prod"])
    with pytest.raises(NotFoundError, match=r"versions 1\.\.1 exist"):
        reg.resolve("prompt://a/5")
    with pytest.raises(NotFoundError, match="aliases are prod"):
        reg.resolve("prompt://a@staging")
    with pytest.raises(NotFoundError, match="no prompt is named 'zzz'"):
        reg.resolve("prompt://zzz")


def test_empty_content_is_rejected_and_nothing_is_written(reg):
    with pytest.raises(ValidationError, match="empty"):
        reg.save("prompt", "a", data=b"")
    assert reg.names() == []


def test_a_bad_parent_reference_writes_nothing(reg):
    with pytest.raises(NotFoundError):
        reg.save("prompt", "a", data=b"1", parents=[("dataset://missing/1", "data")])
    assert reg.names() == []
    assert reg.verify().ok


def test_folders_are_stored_by_content_and_checked_out_intact(reg, tmp_path):
    src = tmp_path / "model"
    (src / "sub").mkdir(parents=True)
    (src / "config.json").write_text("{}")
    (src / "sub" / "weights.bin").write_bytes(os.urandom(1000))
    art = reg.save("model", "m", path=src).artifact
    assert art.is_tree
    out = reg.checkout(art)
    assert (out / "sub" / "weights.bin").read_bytes() == (src / "sub" / "weights.bin").read_bytes()
    assert reg.save("model", "m", path=src).created is False


def test_lineage_walks_upstream_and_downstream_transitively(reg):
    p = reg.save("prompt", "p", data=b"t").artifact
    d = reg.save("dataset", "d", data=b"rows").artifact
    a = reg.save("adapter", "lora", data=b"w", parents=[(p, "prompt"), (d, "train_data")]).artifact
    e = reg.save("eval", "ev", data=b"r", parents=[(a, "target")]).artifact
    up = {(x.source, x.relation) for x in reg.upstream(e)}
    assert up == {(a.ref, "target"), (p.ref, "prompt"), (d.ref, "train_data")}
    assert {x.target for x in reg.downstream(p)} == {a.ref, e.ref}
    graph = reg.lineage(a)
    assert set(graph["nodes"]) == {p.ref, d.ref, a.ref, e.ref}


def test_names_are_listed_with_counts_aliases_and_pages(reg):
    for i in range(5):
        reg.save("prompt", f"p{i}", data=b"x", aliases=["prod"] if i == 0 else [])
    reg.save("prompt", "p0", data=b"y")
    first = reg.names("prompt", limit=2, offset=0)
    assert [(s.name, s.versions) for s in first] == [("p0", 2), ("p1", 1)]
    assert dict(first[0].aliases) == {"prod": 1}
    assert [s.name for s in reg.names(search="P3")] == ["p3"]
    assert reg.count_names("prompt") == 5


def test_every_write_moves_the_change_counter(reg):
    before = reg.change_counter()
    reg.save("prompt", "a", data=b"1")
    after_save = reg.change_counter()
    reg.set_alias("a", "x", "prompt")
    assert before < after_save < reg.change_counter()


def test_another_process_sees_a_new_version_through_a_warm_cache(tmp_path):
    one, two = Registry(tmp_path / "r"), Registry(tmp_path / "r")
    one.save("prompt", "a", data=b"1")
    assert two.resolve("prompt://a").version == 1
    one.save("prompt", "a", data=b"2")
    assert two.resolve("prompt://a").version == 2
    assert two.resolve("prompt://a/1").aliases == ()


def test_verify_reports_a_tampered_blob(reg):
    art = reg.save("prompt", "a", data=b"original").artifact
    path = reg.blobs.path(art.payload)
    os.chmod(path, 0o644)
    path.write_bytes(b"tampered")
    report = reg.verify()
    assert not report.ok
    assert "altered" in report.problems[0]


def test_verify_reports_a_missing_blob(reg):
    art = reg.save("prompt", "a", data=b"original").artifact
    os.unlink(reg.blobs.path(art.payload))
    assert "missing" in reg.verify().problems[0]


def test_gc_is_a_plan_until_executed(reg):
    reg.save("prompt", "a", data=b"kept")
    orphan = reg.blobs.put_bytes(b"orphan from an interrupted save")
    plan = reg.gc(grace_seconds=0)
    assert str(reg.blobs.path(orphan)) in plan.paths
    assert reg.blobs.exists(orphan)
    assert plan.execute() == 1
    assert not reg.blobs.exists(orphan)
    assert reg.verify().ok and not reg.verify().garbage


def test_state_records_are_mutable_side_records(reg):
    reg.put_state("deployments", "svc", {"pid": 1})
    reg.put_state("deployments", "svc", {"pid": 2})
    assert reg.get_state("deployments", "svc") == {"pid": 2}
    assert reg.list_state("deployments") == {"svc": {"pid": 2}}
    reg.delete_state("deployments", "svc")
    assert reg.get_state("deployments", "svc") is None


def test_a_schema_2_registry_is_migrated_to_the_indexes_that_keep_saves_flat(tmp_path):
    import sqlite3

    home = tmp_path / "v2"
    reg = Registry(home)
    reg.save("prompt", "a", data=b"A")
    reg.close()
    db = sqlite3.connect(home / "registry.db")
    db.execute("DROP INDEX artifacts_by_digest_version")
    db.execute("CREATE INDEX artifacts_by_digest ON artifacts (kind, name, digest)")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    reg = Registry(home)
    indexes = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"artifacts_by_digest_version", "aliases_by_name"} <= indexes and "artifacts_by_digest" not in indexes
    assert reg.resolve("a").ref == "prompt://a/1" and reg.verify().ok
    reg.close()
