"""Closing the loop: feedback on logged answers, the review widget, and a dataset built from traffic.

The first tests write a request log with the server's own ``RequestLog`` and a deployment
version by hand (fast: no model, no server), as a deployment that has been stopped leaves
them. The slow ones deploy the cached tiny model twice (``fb`` logs texts and wants an API
key, ``plain`` logs none), send real requests and rate the real ids the server answered with.
"""

from __future__ import annotations

import json
import math
import time
from datetime import datetime

import pytest
import requests

from llmops_magics import NotFoundError, ValidationError, ab, dataset_from_log, feedback
from llmops_magics.serving.requestlog import RequestLog, monitor_path, read_requests

PRIMARY, CANARY = "adapter://qa-lora/1", "adapter://qa-lora/2"
TEMPLATE = "Question: {{ question }}\nAnswer:"
KEY = "fb-key"


def _deployment(ws, name: str, *, log_text: bool = True, canary: dict | None = None) -> dict:
    """A deployment version as ``%deploy`` records it (its stored spec says whether it logs texts)."""
    dep = ws.registry.save(
        "deployment", name, data=json.dumps({"name": name}).encode(),
        spec={"op": "deploy", "args": {"name": name, "target": PRIMARY, "log_text": log_text}},
    ).artifact  # fmt: skip
    state = {"name": name, "ref": dep.ref, "target": PRIMARY, "canary": canary, "started_at": time.time() - 60,
             "monitor_db": str(monitor_path(ws.registry.home, name))}  # fmt: skip
    if canary:
        for ref in (PRIMARY, CANARY):
            ws.registry.save("adapter", "qa-lora", data=ref.encode())
        ws.registry.put_state("deployments", name, state)
    return state


def _log(state: dict, rows: list[dict], *, log_text: bool = True) -> None:
    log = RequestLog(state["monitor_db"], log_text=log_text, salt=state["name"])
    for row in rows:
        log.record({"endpoint": "completions", "status": 200, "latency_ms": 100.0, "ts": time.time() - 5, **row})
    log.close()


# ---------------------------------------------------------------------- without a server


def test_feedback_on_a_stopped_deployment_is_written_into_its_log_and_the_latest_rating_wins(workspace):
    state = _deployment(workspace, "old")
    _log(state, [{"request_id": "cmpl-1", "input_text": "Q", "output_text": " A"}])
    first = feedback("old", "cmpl-1", label="down", correction="B")
    assert (first.via, first.score, first.correction) == ("kernel", 0.0, "B")
    middle = time.time()
    feedback("old", "cmpl-1", score=0.75)
    (row,) = read_requests(state["monitor_db"], with_feedback=True)
    assert (row["feedback"], row["correction"]) == (0.75, None)
    (then,) = read_requests(state["monitor_db"], with_feedback=True, until=middle)
    assert (then["feedback"], then["correction"]) == (0.0, "B")  # the feedback as it stood at `until`


def test_kernel_feedback_names_an_unknown_request_a_bad_score_and_a_correction_nobody_keeps(workspace):
    state = _deployment(workspace, "quiet", log_text=False)
    _log(state, [{"request_id": "cmpl-1"}], log_text=False)
    with pytest.raises(NotFoundError, match="no request 'cmpl-404'"):
        feedback("quiet", "cmpl-404", label="up")
    with pytest.raises(ValidationError, match="score must be a number from 0 to 1, found 2"):
        feedback("quiet", "cmpl-1", score=2)
    with pytest.raises(ValidationError, match="label must be up or down"):
        feedback("quiet", "cmpl-1", label="sideways")
    with pytest.raises(ValidationError, match="logs no texts"):
        feedback("quiet", "cmpl-1", label="down", correction="better")
    with pytest.raises(NotFoundError, match="no deployment is named 'ghost'"):
        feedback("ghost", "cmpl-1", label="up")
    assert read_requests(state["monitor_db"], with_feedback=True)[0]["feedback"] is None


def test_ab_compares_the_arms_on_the_feedback_users_gave(workspace):
    state = _deployment(workspace, "svc", canary={"target": CANARY, "weight": 50.0})
    users = [f"u{i}" for i in range(40)]
    _log(state, [{"request_id": f"r{i}", "user": u, "arm": ("primary", "canary")[i % 2],
                  "version": (PRIMARY, CANARY)[i % 2]} for i, u in enumerate(users)])  # fmt: skip
    for i in range(40):  # the canary's answers are liked far more often
        feedback("svc", f"r{i}", label="up" if (i % 2 == 1 and i % 8 != 1) or i % 10 == 0 else "down")
    result = ab("svc", metrics="feedback", min_users=5)
    (metric,) = result.analysis.metrics
    assert metric.metric.name == "feedback" and metric.users == (20, 20)
    assert metric.means[0] == pytest.approx(0.2) and metric.means[1] == pytest.approx(0.75)
    assert metric.diff == pytest.approx(0.55)


def test_from_log_refuses_a_deployment_that_logs_no_text(workspace):
    state = _deployment(workspace, "quiet", log_text=False)
    _log(state, [{"request_id": "cmpl-1"}], log_text=False)
    with pytest.raises(ValidationError, match=r"deployment 'quiet' \(deployment://quiet/1\) logs no texts"):
        dataset_from_log("quiet")


def test_from_log_leaves_out_failed_requests_rows_without_text_and_several_answers_in_one_row(workspace):
    state = _deployment(workspace, "mixed")
    _log(state, [
        {"request_id": "ok", "input_text": "Question: a\nAnswer:", "output_text": " yes\n"},
        {"request_id": "failed", "status": 400, "input_text": "x", "output_text": None},
        {"request_id": "two", "input_text": "p\n\nq", "output_text": "a\n\nb", "outputs": 2},
    ])  # fmt: skip
    _log(state, [{"request_id": "untexted"}], log_text=False)
    ds = dataset_from_log("mixed")
    assert ds.ref == "dataset://mixed-traffic/1"
    (row,) = ds.records()
    assert (row["prompt"], row["answer"], row["output_text"]) == ("Question: a\nAnswer:", "yes", " yes\n")
    assert ds.artifact.metadata["skipped"] == {"failed": 1, "without_text": 1, "several_answers": 1}


def test_from_log_with_nothing_in_the_window_says_so(workspace):
    state = _deployment(workspace, "empty")
    _log(state, [{"request_id": "r", "input_text": "q", "output_text": "a"}])
    with pytest.raises(ValidationError, match=r"1 logged request\(s\) in the window, none where feedback=down"):
        dataset_from_log("empty", where={"feedback": "down"})
    with pytest.raises(ValidationError, match="where takes KEY=VALUE with KEY among feedback"):
        dataset_from_log("empty", where={"mood": "down"})
    with pytest.raises(ValidationError, match="a time must be a duration back from now"):
        dataset_from_log("empty", since="last tuesday")


# ---------------------------------------------------------------------- a real server


@pytest.fixture(scope="module")
def live(tmp_path_factory, tiny_model_dir):
    from deploy_support import module_workspace, stop_all

    from llmops_magics import deploy, save_prompt

    home = tmp_path_factory.mktemp("feedback") / ".llmops"
    with module_workspace(home) as ws:
        base = ws.registry.save("model", "tiny-gpt2", path=tiny_model_dir, metadata={"architecture": "gpt2"})
        prompt = save_prompt("qa", TEMPLATE, workspace=ws)
        try:
            fb = deploy(base.artifact.ref, name="fb", prompt=prompt.ref, log_text=True, threads=1, api_key=KEY,
                        workspace=ws)  # fmt: skip
            plain = deploy(base.artifact.ref, name="plain", prompt=prompt.ref, threads=1, workspace=ws)
            yield {"ws": ws, "home": home, "fb": fb, "plain": plain}
        finally:
            stop_all(ws)


def _ask(handle, question: str) -> str:
    return handle.complete(variables={"question": question}, max_tokens=3)["id"]


def _post(handle, body, *, key: str | None = KEY) -> requests.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    data = body if isinstance(body, bytes) else json.dumps(body)
    return requests.post(handle.url + "/v1/feedback", data=data, headers=headers, timeout=30)


def _rated(handle, ids) -> dict:
    rows = read_requests(handle.state["monitor_db"], with_feedback=True)
    return {r["request_id"]: (r["feedback"], r["correction"]) for r in rows if r["request_id"] in ids}


@pytest.mark.slow
def test_feedback_sent_the_moment_an_answer_arrives_is_stored_against_its_request(live):
    rid = _ask(live["fb"], "What is the capital of Tosmar?")
    r = _post(live["fb"], {"request_id": rid, "label": "down", "correction": "Velm", "user": "ana"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["object"], body["request_id"], body["score"], body["label"], body["correction"]) == (
        "feedback", rid, 0.0, "down", "Velm")  # fmt: skip
    assert _rated(live["fb"], {rid}) == {rid: (0.0, "Velm")}


@pytest.mark.slow
def test_feedback_on_an_unknown_request_is_a_404_naming_it(live):
    r = _post(live["fb"], {"request_id": "cmpl-nope", "score": 1})
    assert r.status_code == 404
    assert r.json()["error"]["param"] == "request_id" and "cmpl-nope" in r.json()["error"]["message"]


BAD = [
    ({"score": 1}, "request_id"),
    ({"score": 1.5}, "score"),
    ({"score": "high"}, "score"),
    ({}, "score"),
    ({"score": 1, "label": "up"}, "score"),
    ({"label": "meh"}, "label"),
    ({"label": "up", "correction": 3}, "correction"),
    ({"label": "up", "rating": 5}, "rating"),
]


@pytest.mark.slow
@pytest.mark.parametrize("body,param", BAD, ids=[p + "-" + "-".join(b) for b, p in BAD])
def test_a_bad_feedback_field_is_a_400_naming_it(live, body, param):
    if "rid" not in live:
        live["rid"] = _ask(live["fb"], "What colour is the flag of Tosmar?")
    rid = live["rid"]
    r = _post(live["fb"], {"request_id": rid, **body} if param != "request_id" else body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and r.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.slow
def test_a_nan_score_and_a_body_that_is_not_json_are_400s_too(live):
    rid = _ask(live["fb"], "Which animal lives in Tosmar?")
    _wait_logged(live["fb"], [rid])
    nan = _post(live["fb"], f'{{"request_id": "{rid}", "score": NaN}}'.encode())
    assert nan.status_code == 400 and nan.json()["error"]["param"] == "score"
    assert _post(live["fb"], b"{not json").status_code == 400
    assert _rated(live["fb"], {rid}) == {rid: (None, None)}


@pytest.mark.slow
def test_feedback_wants_the_api_key_or_the_admin_token(live):
    from llmops_magics.serving.hotswap import admin_token
    from llmops_magics.serving.records import run_dir

    rid = _ask(live["fb"], "What is the capital of Velm?")
    assert _post(live["fb"], {"request_id": rid, "score": 1}, key=None).status_code == 401
    token = admin_token(run_dir(live["ws"].registry, "fb"))
    assert _post(live["fb"], {"request_id": rid, "score": 1}, key=token).status_code == 200


@pytest.mark.slow
def test_a_correction_is_refused_where_texts_are_not_logged(live):
    rid = _ask(live["plain"], "What is the capital of Tosmar?")
    r = _post(live["plain"], {"request_id": rid, "label": "down", "correction": "Velm"}, key=None)
    assert r.status_code == 400 and r.json()["error"]["param"] == "correction"
    assert _post(live["plain"], {"request_id": rid, "label": "down"}, key=None).status_code == 200


@pytest.mark.slow
def test_kernel_feedback_goes_through_the_running_server_and_a_later_rating_replaces_it(live):
    rid = _ask(live["fb"], "What colour is the flag of Velm?")
    first = feedback("fb", rid, score=0.25, workspace=live["ws"])
    assert (first.via, first.score) == ("server", 0.25)
    feedback("fb", rid, label="up", workspace=live["ws"])
    assert _rated(live["fb"], {rid}) == {rid: (1.0, None)}
    with pytest.raises(NotFoundError, match="cmpl-unknown"):
        feedback("fb", "cmpl-unknown", label="up", workspace=live["ws"])


@pytest.fixture(scope="module")
def rated(live):
    """Four fresh answers: down with a correction, down, up, unrated; and the window around them."""
    handle, ws = live["fb"], live["ws"]
    time.sleep(0.05)
    since = time.time()
    ids = [_ask(handle, f"What is the capital of Country{i}?") for i in range(4)]
    feedback("fb", ids[0], label="down", correction="Velm", workspace=ws)
    feedback("fb", ids[1], label="down", workspace=ws)
    feedback("fb", ids[2], label="up", workspace=ws)
    until = time.time()
    return {"since": since, "until": until, "ids": ids}


@pytest.mark.slow
def test_from_log_keeps_the_down_rated_answers_with_their_request_ids_and_the_correction_as_answer(live, rated):
    ids = rated["ids"]
    ds = dataset_from_log("fb", name="fb-down", since=rated["since"], until=rated["until"],
                          where={"feedback": "down"}, with_corrections=True, workspace=live["ws"])  # fmt: skip
    rows = {r["request_id"]: r for r in ds.records()}
    assert set(rows) == {ids[0], ids[1]}
    assert rows[ids[0]]["answer"] == "Velm" and rows[ids[0]]["correction"] == "Velm"
    assert rows[ids[1]]["answer"] == rows[ids[1]]["output_text"].strip() and rows[ids[1]]["correction"] is None
    assert all(
        r["feedback"] == 0.0 and r["prompt"].startswith("Question: What is the capital of") for r in rows.values()
    )
    assert ds.artifact.metadata["corrected"] == 1


@pytest.mark.slow
def test_from_log_without_corrections_keeps_the_served_answer(live, rated):
    ds = dataset_from_log("fb", name="fb-rated", since=rated["since"], until=rated["until"],
                          where={"feedback": "any"}, workspace=live["ws"])  # fmt: skip
    rows = {r["request_id"]: r for r in ds.records()}
    assert set(rows) == set(rated["ids"][:3])
    first = rows[rated["ids"][0]]
    assert first["answer"] == first["output_text"].strip() and first["correction"] == "Velm"


@pytest.mark.slow
def test_from_log_links_the_deployment_to_the_dataset_and_replays_to_the_same_version(live, rated):
    from llmops_magics import replay

    ds = dataset_from_log("fb", name="fb-window", since=rated["since"], until=rated["until"], workspace=live["ws"])
    assert [r["request_id"] for r in ds.records()] == rated["ids"]
    edges = {(e.source, e.relation) for e in live["ws"].registry.upstream(ds.ref, depth=1)}
    assert edges == {(live["fb"].ref, "from_log")}
    stored = live["ws"].registry.resolve(ds.ref)
    assert stored.spec["op"] == "from-log" and stored.spec["args"]["until"] == rated["until"]
    feedback("fb", rated["ids"][3], label="down", workspace=live["ws"])  # after `until`: not in a replay
    assert replay(ds.ref, workspace=live["ws"]).ref == ds.ref


@pytest.mark.slow
def test_percent_dataset_from_log_takes_since_as_a_date_and_where_as_flags(live, rated):
    from conftest import ipython_shell

    shell = ipython_shell()
    shell.run_line_magic("load_ext", "llmops_magics")
    shell.run_line_magic("config", f"LLMOps.home = {str(live['home'])!r}")
    since = datetime.fromtimestamp(rated["since"]).isoformat()
    try:
        ds = shell.run_line_magic(
            "dataset", f"from-log fb --name fb-magic --since {since} --until {rated['until']!r} "
            "--where feedback=down --with-corrections",
        )  # fmt: skip
        from IPython.core.error import UsageError

        with pytest.raises(UsageError, match="logs no texts"):
            shell.run_line_magic("dataset", "from-log plain")
    finally:
        shell.run_line_magic("unload_ext", "llmops_magics")
        shell.config.pop("LLMOps", None)
    assert len(ds.records()) == 2 and "Velm" in {r["answer"] for r in ds.records()}
    assert live["ws"].registry.resolve(ds.ref).spec["command"].startswith("%dataset from-log fb --name fb-magic")


@pytest.mark.slow
def test_the_review_widget_rates_answers_and_sends_an_edited_answer_as_the_correction(live):
    from llmops_magics.adapters.widgets.feedback_review import FeedbackReview

    handle = live["fb"]
    ids = [_ask(handle, "What animal lives in Country7?"), _ask(handle, "What colour is the flag of Country7?")]
    _wait_logged(handle, ids)
    review = FeedbackReview("fb", limit=2, workspace=live["ws"])
    try:
        assert [r["request_id"] for r in review.rows] == ids[::-1]  # newest first
        assert "unrated" in review.position.get_state()["value"]
        review.answer.value = "a lynx"
        review.down.click()
        assert review.index == 1 and "rated down with a correction" in review.status.get_state()["value"]
        review.up.click()
        assert [(f.score, f.correction, f.via) for f in review.rated] == [
            (0.0, "a lynx", "server"),
            (1.0, None, "server"),
        ]
        review.prev.click()
        assert review.answer.value == "a lynx" and "corrected" in review.position.value
    finally:
        review.close()
    assert _rated(handle, set(ids)) == {ids[1]: (0.0, "a lynx"), ids[0]: (1.0, None)}


@pytest.mark.slow
def test_percent_monitor_review_opens_the_widget_and_refuses_a_deployment_without_texts(live):
    from conftest import ipython_shell
    from IPython.core.error import UsageError

    shell = ipython_shell()
    shell.run_line_magic("load_ext", "llmops_magics")
    shell.run_line_magic("config", f"LLMOps.home = {str(live['home'])!r}")
    try:
        review = shell.run_line_magic("monitor", "review fb --limit 3")
        assert len(review.rows) == 3 and str(review).startswith("review fb: 3 answered")
        review.close()
        with pytest.raises(UsageError, match="logs no texts, so there are no answers to review"):
            shell.run_line_magic("monitor", "review plain")
    finally:
        shell.run_line_magic("unload_ext", "llmops_magics")
        shell.config.pop("LLMOps", None)


def _wait_logged(handle, ids, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if set(ids) <= {r["request_id"] for r in read_requests(handle.state["monitor_db"])}:
            return
        time.sleep(0.05)
    raise AssertionError(f"{ids} never reached the request log")


def test_nan_is_no_score():
    from llmops_magics.serving.requestlog import feedback_score

    with pytest.raises(ValidationError, match="score must be a number from 0 to 1"):
        feedback_score(math.nan)
    assert feedback_score(label="up") == 1.0 and feedback_score(0) == 0.0
