"""``GET /llmops/traces``, ``/llmops/traces/ID`` and ``/llmops/charts/…`` against a real Jupyter server.

The traces (``trace_samples``) are written the way the exporter writes them, with known names,
times, tokens and prompt links, so every field the sidebar shows is checked against what was stored.
"""

from __future__ import annotations

import json
import time

import pytest
from route_fixtures import *  # noqa: F403
from server_samples import populate
from trace_samples import save_scored_eval, write_traces


@pytest.fixture
def traces(jp_root_dir, monkeypatch):
    """The sample registry, and three traces in its ``traces.db`` (``trace_samples.write_traces``)."""
    monkeypatch.delenv("LLMOPS_HOME", raising=False)
    refs = populate(jp_root_dir / ".llmops")
    write_traces(jp_root_dir / ".llmops", refs["prompt"])
    return refs


def test_the_latest_traces_come_first_with_their_totals_status_and_prompts(traces, send):
    code, body = send("/llmops/traces")

    assert code == 200, body
    items = body["items"]
    assert [i["trace_id"] for i in items] == [f"{t:032x}" for t in (3, 2, 1)]
    newest = items[0]
    assert newest["name"] == "my pipeline" and newest["spans"] == 4
    assert (newest["input_tokens"], newest["output_tokens"]) == (15, 5)
    assert newest["status"] == "error" and newest["errors"] == 1
    assert newest["duration_ms"] == pytest.approx(200.0)
    assert newest["prompts"] == [traces["prompt"]]
    assert items[1]["prompts"] == ["prompt://qa/1"] and items[1]["status"] == "ok"
    assert items[2]["prompts"] == []
    assert abs(newest["start_ms"] / 1000 - time.time()) < 60


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?prompt=qa", [3, 2]),  # any version of qa
        ("?prompt=qa/1", [2]),
        ("?prompt=qa@production", [3]),  # the alias names version 2
        ("?since=5m", [3, 2]),
        ("?since=5m&prompt=qa/1", [2]),
        ("?limit=1", [3]),
    ],
)
def test_the_list_narrows_by_prompt_since_and_limit(traces, send, query, expected):
    code, body = send("/llmops/traces" + query)
    assert code == 200, body
    assert [i["trace_id"] for i in body["items"]] == [f"{t:032x}" for t in expected]


def test_a_trace_is_a_tree_in_display_order_with_offsets_for_the_timeline(traces, send):
    code, body = send(f"/llmops/traces/{3:032x}")

    assert code == 200, body
    assert body["trace_id"] == f"{3:032x}" and body["name"] == "my pipeline" and body["spans"] == 4
    rows = [(i["name"], i["depth"], i["offset_ms"], i["duration_ms"], i["status"]) for i in body["items"]]
    assert rows == [
        ("my pipeline", 0, 0.0, 200.0, "OK"),
        ("chat tiny", 1, 20.0, 50.0, "OK"),
        ("chat tiny", 1, 100.0, 80.0, "ERROR"),
        ("retrieve", 2, 110.0, 10.0, "OK"),
    ]
    assert body["items"][2]["error_type"] == "TimeoutError"
    assert body["items"][1]["prompt_ref"] == traces["prompt"] and body["items"][1]["input_tokens"] == 11
    assert (body["input_tokens"], body["output_tokens"]) == (15, 5)

    code, last = send("/llmops/traces/last")
    assert code == 200 and last["trace_id"] == body["trace_id"]
    code, short = send(f"/llmops/traces/{2:032x}?max_spans=1")
    assert code == 200 and len(short["items"]) == 1 and short["truncated"] is True
    code, body = send("/llmops/traces/0000")  # a prefix of every id
    assert code == 404 and "more than one" in body["message"]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/llmops/traces/zzzz", 400),
        ("/llmops/traces/ab", 400),
        ("/llmops/traces/" + "a" * 40, 400),
        ("/llmops/traces?since=yesterday-ish", 400),
        ("/llmops/traces?limit=0", 400),
        ("/llmops/traces?prompt=bad%20name", 400),
        ("/llmops/traces/ffffffff", 404),
        ("/llmops/traces?prompt=qa@nope", 404),
        (f"/llmops/traces/{2:032x}?max_spans=none", 400),
    ],
)
def test_bad_input_is_a_json_4xx(traces, send, path, status):
    code, body = send(path)
    assert code == status, body
    assert body["message"] and "Traceback" not in json.dumps(body)


def test_no_trace_store_yet_is_an_empty_list_and_a_404_for_last(jp_root_dir, send, monkeypatch):
    monkeypatch.delenv("LLMOPS_HOME", raising=False)
    code, body = send("/llmops/traces")
    assert code == 200 and body["items"] == []
    code, body = send("/llmops/traces/last")
    assert code == 404 and body["reason"] == "not found"


def test_traces_need_the_token(traces, send):
    assert send("/llmops/traces", headers={"Authorization": ""})[0] == 403
    assert send("/llmops/traces/last", headers={"Authorization": ""})[0] == 403


def test_the_charts_of_an_eval_version_are_svg_with_its_bars(jp_root_dir, send, monkeypatch, tmp_path):
    from test_result_pictures import marks

    monkeypatch.delenv("LLMOPS_HOME", raising=False)
    populate(jp_root_dir / ".llmops")
    assert save_scored_eval(jp_root_dir / ".llmops", tmp_path) == "eval://scored/1"

    code, body = send("/llmops/charts/eval/scored/1")
    assert code == 200, body
    titles = ["exact_match: mean, 95% CI", "length: mean, 95% CI", "B - A on exact_match, per example"]
    assert [c["title"] for c in body["charts"]] == titles
    assert len(marks(body["charts"][0]["svg"], "bar")) == 2
    assert len(marks(body["charts"][2]["svg"], "delta")) == 40

    code, body = send("/llmops/charts/eval/qa-eval/1")  # saved by hand, not by an eval: no picture, no error
    assert code == 200 and body["charts"] == []
    assert send("/llmops/charts/eval/nope/1")[0] == 404
    assert send("/llmops/charts/secrets/x/1")[0] == 400
