"""Large PII scans run in forked copies of the built engine; the findings are the one-process scan's."""

from __future__ import annotations

import os

import pytest

from llmops_magics import forking
from llmops_magics.governance import parallel
from llmops_magics.governance.engine import engine
from llmops_magics.governance.entities import DEFAULT_THRESHOLD, default_entities

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="forked scans need fork")

TEXTS = [
    f"#{i} " + ["Mail jane.doe@example.com about it.", "Card 4111 1111 1111 1111 was charged.",
                "Call 212-555-0199 tomorrow.", "Nothing personal here.", "Login from 10.0.0.7 failed."][i % 5]
    for i in range(300)
]  # fmt: skip


def test_a_forked_scan_finds_what_one_process_finds_in_the_same_order():
    eng, entities = engine(None), default_entities(None)
    here = eng.find(TEXTS, entities, DEFAULT_THRESHOLD, workers=1)
    forked = parallel.find_forked(eng, TEXTS, entities, DEFAULT_THRESHOLD, 3)
    assert forked is not None and forked == here
    assert sum(map(len, here)) >= 240  # four of five lines hold something
    assert eng.find(TEXTS, entities, DEFAULT_THRESHOLD, workers=2) == here


def _exit_now(chunk):
    os._exit(3)


def test_a_scan_whose_worker_dies_is_done_in_this_process(monkeypatch):
    eng, entities = engine(None), default_entities(None)
    monkeypatch.setattr(parallel, "_scan", _exit_now)  # inherited by the forked workers
    assert parallel.find_forked(eng, TEXTS, entities, DEFAULT_THRESHOLD, 2) is None
    assert eng.find(TEXTS, entities, DEFAULT_THRESHOLD, workers=2) == eng.find_here(TEXTS, entities, DEFAULT_THRESHOLD)


def test_small_scans_stay_in_this_process(monkeypatch):
    called = []
    monkeypatch.setattr(parallel, "find_forked", lambda *a: called.append(a) or None)
    engine(None).find(TEXTS[:10], default_entities(None), DEFAULT_THRESHOLD)
    assert called == [] and parallel.PARALLEL_MIN > 10


def test_a_servers_log_redactor_never_forks_however_large_its_batch(monkeypatch):
    from llmops_magics.governance.filters import LogRedactor

    called = []
    monkeypatch.setattr(parallel, "find_forked", lambda *a: called.append(a) or None)
    texts = (TEXTS * (parallel.PARALLEL_MIN // len(TEXTS) + 1))[: parallel.PARALLEL_MIN]
    redacted = LogRedactor()(texts)
    assert called == [] and "<EMAIL_ADDRESS>" in redacted[0]


def _sleep_forever(chunk):
    import time

    time.sleep(3600)


def _fail(chunk):
    raise ValueError("an error Presidio raised")


def test_a_stuck_worker_is_killed_at_its_deadline_and_the_scan_done_here(monkeypatch):
    import time

    eng, entities = engine(None), default_entities(None)
    monkeypatch.setattr(parallel, "_scan", _sleep_forever)
    monkeypatch.setattr(parallel, "MIN_DEADLINE_S", 1.0)
    monkeypatch.setattr(parallel, "SECONDS_PER_TEXT", 0.0)
    started = time.monotonic()
    assert parallel.find_forked(eng, TEXTS, entities, DEFAULT_THRESHOLD, 2) is None
    assert time.monotonic() - started < 30
    assert eng.find(TEXTS, entities, DEFAULT_THRESHOLD, workers=2) == eng.find_here(TEXTS, entities, DEFAULT_THRESHOLD)


def test_an_error_in_a_worker_is_raised_as_in_one_process(monkeypatch):
    monkeypatch.setattr(parallel, "_scan", _fail)
    with pytest.raises(ValueError, match="an error Presidio raised"):
        parallel.find_forked(engine(None), TEXTS, default_entities(None), DEFAULT_THRESHOLD, 2)


def test_a_second_forked_scan_at_once_scans_in_its_own_process():
    with forking._forking:  # another thread's forked scan holds the engine slot
        assert parallel.find_forked(engine(None), TEXTS, default_entities(None), DEFAULT_THRESHOLD, 2) is None
