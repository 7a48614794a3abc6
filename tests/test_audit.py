"""The audit trail: every alias move is an append-only event committed with the move itself.

Events are read back through the three fronts made from one spec (``%audit``, ``llmops
audit``, ``llmops_magics.audit``); the table refuses ``UPDATE`` and ``DELETE`` from any
SQLite client, which a test tries with raw SQL on its own connection.
"""

from __future__ import annotations

import dataclasses
import sqlite3

import pytest

import llmops_magics as lm
from llmops_magics.adapters.cli import main as cli
from llmops_magics.errors import NotFoundError, RegistryError
from llmops_magics.store import Registry


@pytest.fixture
def prompts(workspace, monkeypatch):
    """Two versions of prompt ``qa``; the actor is named by ``LLMOPS_ACTOR``."""
    monkeypatch.setenv("LLMOPS_ACTOR", "ci-bot")
    reg = workspace.registry
    reg.save("prompt", "qa", data=b"Q: {{ q }}")
    reg.save("prompt", "qa", data=b"Question: {{ q }}")
    return reg


def _rows(home) -> list[tuple]:
    with sqlite3.connect(home / "registry.db") as conn:
        return conn.execute("SELECT * FROM audit ORDER BY id").fetchall()


def test_alias_set_move_and_remove_are_recorded_with_who_from_and_to(prompts):
    prompts.set_alias("prompt://qa/1", "production")
    prompts.set_alias("prompt://qa/2", "production")
    prompts.set_alias("prompt://qa/2", "production")  # already there: nothing moved, nothing recorded
    prompts.remove_alias("prompt", "qa", "production")
    events = [e.to_dict() for e in lm.audit_events()]
    assert [(e["action"], e["from"], e["to"], e["detail"]["alias"]) for e in events] == [
        ("alias-set", None, "prompt://qa/1", "production"),
        ("alias-move", "prompt://qa/1", "prompt://qa/2", "production"),
        ("alias-remove", "prompt://qa/2", None, "production"),
    ]
    assert {e["actor"] for e in events} == {"ci-bot"}
    assert all(e["ref"] == "prompt://qa" for e in events)


def test_an_alias_given_to_a_save_is_recorded_too(prompts):
    prompts.save("prompt", "qa", data=b"Answer: {{ q }}", aliases=["staging"])
    (event,) = lm.audit_events("qa")
    assert (event.action, event.to_ref, event.detail["alias"]) == ("alias-set", "prompt://qa/3", "staging")


def test_events_are_narrowed_to_a_version_a_name_an_action_and_a_time(prompts):
    prompts.set_alias("prompt://qa/1", "production")
    prompts.set_alias("prompt://qa/2", "production")
    prompts.set_alias("prompt://qa/2", "staging")
    assert [e.action for e in lm.audit_events("prompt://qa/1")] == ["alias-set", "alias-move"]
    assert len(lm.audit_events("qa")) == 3
    assert [e.detail["alias"] for e in lm.audit_events("qa@staging")] == ["production", "staging"]
    assert len(lm.audit_events(action="alias-move")) == 1
    assert len(lm.audit_events(since="1h")) == 3
    assert len(lm.audit_events(since="2999-01-01")) == 0


def test_a_failed_move_leaves_no_event_and_a_failed_event_leaves_no_move(prompts, monkeypatch):
    from llmops_magics.store import audit

    prompts.set_alias("prompt://qa/1", "production")
    with sqlite3.connect(prompts.home / "registry.db") as conn:  # the alias row refuses to change
        conn.execute("CREATE TRIGGER stuck BEFORE UPDATE ON aliases BEGIN SELECT RAISE(ABORT, 'stuck'); END")
    with pytest.raises(RegistryError):
        prompts.set_alias("prompt://qa/2", "production")
    assert len(lm.audit_events()) == 1
    with sqlite3.connect(prompts.home / "registry.db") as conn:
        conn.execute("DROP TRIGGER stuck")

    def broken(*args, **kwargs):
        raise RuntimeError("the audit insert failed")

    monkeypatch.setattr(audit, "insert", broken)
    with pytest.raises(RuntimeError):
        prompts.set_alias("prompt://qa/2", "production")
    assert prompts.aliases("prompt", "qa") == {"production": 1}
    with pytest.raises(NotFoundError):  # removing an alias that is not there records nothing either
        prompts.remove_alias("prompt", "qa", "nope")


def test_raw_sql_cannot_change_or_delete_an_event(prompts):
    prompts.set_alias("prompt://qa/1", "production")
    before = _rows(prompts.home)
    conn = sqlite3.connect(prompts.home / "registry.db")
    for sql in (
        "UPDATE audit SET actor = 'someone-else'",
        "UPDATE audit SET reason = 'rewritten' WHERE id = 1",
        "DELETE FROM audit",
        "DELETE FROM audit WHERE id = 1",
        "INSERT OR REPLACE INTO audit (id, time, actor, action, ref) VALUES (1, 0, 'x', 'stop', 'x')",
    ):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(sql)
    conn.close()
    assert _rows(prompts.home) == before


def test_the_api_offers_no_way_to_change_an_event(prompts):
    prompts.set_alias("prompt://qa/1", "production")
    log = lm.audit()
    with pytest.raises(dataclasses.FrozenInstanceError):
        log[0].actor = "someone-else"
    with pytest.raises(TypeError):
        log[0] = log[0]  # type: ignore[index]
    assert not [n for n in dir(Registry) if "audit" in n and any(w in n for w in ("delete", "update", "remove"))]
    assert lm.audit()[0].actor == "ci-bot"


def test_an_existing_schema_3_registry_gains_the_table_and_keeps_its_versions(tmp_path):
    home = tmp_path / "old"
    reg = Registry(home)
    reg.save("prompt", "kept", data=b"hello")
    reg.close()
    with sqlite3.connect(home / "registry.db") as conn:  # back to how schema 3 left it
        conn.executescript(
            "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete; DROP TRIGGER audit_no_replace;"
            "DROP TABLE audit;"
        )
        conn.execute("PRAGMA user_version = 3")
    reg = Registry(home)
    assert reg.resolve("prompt://kept").version == 1
    reg.set_alias("prompt://kept/1", "production")
    assert [e.action for e in reg.audit_events()] == ["alias-set"]
    with sqlite3.connect(home / "registry.db") as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 4
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM audit")
    reg.close()


def test_magic_cli_and_api_read_the_same_events_and_the_table_escapes_html(ip, prompts, capsys):
    prompts.set_alias("prompt://qa/1", "production")
    prompts.record_event("stop", "deployment://qa", reason="<script>alert(1)</script>")
    api = lm.audit("qa")
    magic = ip.run_line_magic("audit", "qa")
    assert [e.id for e in magic] == [e.id for e in api] == [1]
    assert cli(["--home", str(prompts.home), "audit", "qa"]) == 0
    out = capsys.readouterr().out
    assert "alias-set" in out and "prompt://qa/1" in out and out.rstrip().endswith("1 audit event(s)")
    html = lm.audit()._repr_mimebundle_()["text/html"]
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert "no events" in str(lm.audit(action="rollback"))


def test_a_bad_action_or_time_is_one_line_and_reads_nothing(ip, prompts):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="action"):
        ip.run_line_magic("audit", "--action delete")
    with pytest.raises(lm.ValidationError, match="since"):
        lm.audit(since="yesterday-ish")


@pytest.mark.slow
def test_a_redaction_is_recorded_with_its_source_and_result(workspace):
    lm.save_dataset("people", [{"text": "mail me at ann@example.com"}, {"text": "nothing here"}])
    redacted = lm.pii_redact("people", entities="EMAIL_ADDRESS", operator="mask", name="people-clean")
    (event,) = lm.audit_events(action="redact")
    assert (event.from_ref, event.to_ref) == ("dataset://people/1", redacted.ref)
    detail = event.to_dict()["detail"]
    assert detail["entities"] == ["EMAIL_ADDRESS"] and detail["texts_changed"] == 1
