"""The model server under faults: a client that goes away, a server killed, a server told to stop.

- a client giving up on a whole (non-streamed) answer: noticed within a quarter second, logged 499;
- a client disconnecting mid-stream: its row stops generating (the batch ends once every row
  has stopped, a job still queued never runs), the request is logged as 499, the server serves on;
- the server killed mid-stream: the OpenAI client raises an error instead of a truncated answer
  that looks complete;
- SIGTERM while a batch runs: every request in flight is answered in full, then the process exits.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import pytest
import requests
from deploy_support import build_folders, logged_requests, module_workspace, register, stop_all

pytestmark = [pytest.mark.faults, pytest.mark.slow]

KEY = "fault-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
LONG = {"model": "qa", "prompt": "The capital of", "max_tokens": 90, "min_tokens": 90, "temperature": 0}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return build_folders(str(tmp_path_factory.getbasetemp()))


@pytest.fixture
def served(folders, tmp_path):
    from llmops_magics import deploy

    with module_workspace(tmp_path / ".llmops") as ws:
        refs = register(ws, folders)
        try:
            yield deploy(refs.base, name="qa", api_key=KEY, log_text=True, max_wait_ms=25, threads=1, workspace=ws)
        finally:
            stop_all(ws)


def _loaded_tiny(folders):
    from llmops_magics.models.loading import load_model

    return load_model(folders.base)


def test_an_abandoned_row_stops_generating_and_a_queued_one_never_runs(folders):
    from llmops_magics.modelserver.batcher import DynamicBatcher, GenParams, Job

    batcher = DynamicBatcher(_loaded_tiny(folders), max_batch_size=4, max_wait_ms=0)
    params = GenParams(max_tokens=100, min_tokens=100)

    async def scenario():
        loop = asyncio.get_running_loop()
        kept = batcher.submit(Job("The capital of", params, loop))
        full = await kept.future  # the same prompt, nobody leaving: the length it runs to
        left = batcher.submit(Job("The capital of", params, loop, stream=True))
        assert (await left.events.get())[0] == "delta"  # the first token has arrived ...
        left.abandon()  # ... and the client goes away
        stopped = await asyncio.wait_for(left.future, 60)
        return full, stopped

    try:
        full, stopped = asyncio.run(scenario())
        assert full.completion_tokens == 100
        assert stopped.completion_tokens < 60, "the abandoned row kept generating"

        before = batcher.batches
        loop = asyncio.new_event_loop()
        gone = Job("The capital of", params, loop)
        gone.abandon()  # gone before it was batched
        with batcher._cond:  # queued behind nothing: the worker takes it at once
            batcher._pending.append(gone)
            batcher._cond.notify()
        time.sleep(0.5)
        assert batcher.batches == before and not batcher._pending
        loop.close()
    finally:
        batcher.close()


def test_a_client_leaving_mid_stream_is_logged_499_and_the_server_serves_on(served):
    with requests.post(served.url + "/v1/completions", json={**LONG, "stream": True}, headers=AUTH, stream=True) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        assert next(line for line in lines if line.startswith(b"data: "))
    # the connection is closed here, mid-stream
    rows = logged_requests(served, at_least=1)
    assert rows[-1]["status"] == 499
    after = requests.post(served.url + "/v1/completions", json={**LONG, "max_tokens": 4}, headers=AUTH, timeout=60)
    assert after.status_code == 200 and after.json()["usage"]["completion_tokens"] == 4


def test_a_client_that_gives_up_on_a_whole_answer_is_logged_499_and_its_rows_stop(served):
    # 1,024 answers of 90 tokens: seconds of work (256 could be answered within the client's 1 s on a
    # quiet machine, and a 200 then logged in place of the 499)
    long = {**LONG, "prompt": ["The capital of"] * 64, "n": 16}
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.post(served.url + "/v1/completions", json=long, headers=AUTH, timeout=1.0)
    deadline = time.monotonic() + 30
    rows: list = []
    while not any(r["status"] == 499 for r in rows) and time.monotonic() < deadline:
        rows = logged_requests(served, at_least=1)
        time.sleep(0.1)
    gone = [r for r in rows if r["status"] == 499]
    assert gone and gone[-1]["error"] == "client_disconnected"
    after = requests.post(served.url + "/v1/completions", json={**LONG, "max_tokens": 4}, headers=AUTH, timeout=60)
    assert after.status_code == 200
    rows = logged_requests(served, at_least=len(rows) + 1)
    assert rows[-1]["queue_ms"] < 1000  # the abandoned answers were not finished first


def test_a_server_killed_mid_stream_is_an_error_at_the_client_not_a_short_answer(served):
    import httpx
    import openai

    client = openai.OpenAI(base_url=served.url + "/v1", api_key=KEY, max_retries=0, timeout=30)
    stream = client.completions.create(
        stream=True,
        **{k: v for k, v in LONG.items() if k != "min_tokens"},
        extra_body={"min_tokens": 90, "max_tokens": 90},
    )
    received = []
    with pytest.raises((openai.APIError, httpx.TransportError)):
        for event in stream:
            received.append(event.choices[0].text if event.choices else "")
            if len(received) == 2:
                os.kill(served.pid, signal.SIGKILL)
    assert len(received) < 90


def test_sigterm_during_a_batch_answers_every_request_in_flight_then_exits(served):
    results: list = []

    def call():
        try:
            r = requests.post(served.url + "/v1/completions", json=LONG, headers=AUTH, timeout=120)
            results.append((r.status_code, r.json()["usage"]["completion_tokens"]))
        except requests.RequestException as exc:
            results.append(("error", repr(exc)))

    threads = [threading.Thread(target=call) for _ in range(6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    metrics = ""
    while "llmops_batch_size_count" not in metrics or 'llmops_batch_size_count{arm="primary"} 0.0' in metrics:
        assert time.monotonic() < deadline, "no batch started"
        metrics = requests.get(served.url + "/metrics", headers=AUTH, timeout=10).text
        time.sleep(0.01)
    os.kill(served.pid, signal.SIGTERM)
    stopped = time.monotonic()
    for t in threads:
        t.join(120)
    assert results == [(200, 90)] * 6, results
    while _alive(served.pid) and time.monotonic() - stopped < 30:
        time.sleep(0.05)
    assert not _alive(served.pid), "the server did not exit after draining"
    with pytest.raises(requests.ConnectionError):
        requests.post(served.url + "/v1/completions", json=LONG, headers=AUTH, timeout=10)


def _alive(pid: int) -> bool:
    from llmops_magics.context.processes import still_running

    return still_running(pid)
