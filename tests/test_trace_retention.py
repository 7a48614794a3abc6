"""Retention of ``traces.db``: old traces go, the store stays under ``max_spans``, whole traces at a time,
and pruning runs now and then rather than on every write."""

from __future__ import annotations

import json
import time

import pytest

from llmops_magics.errors import ValidationError
from llmops_magics.tracing import retention
from llmops_magics.tracing.retention import Retention
from llmops_magics.tracing.store import SpanStore

DAY_NS = 86_400 * 10**9


def _rows(trace: int, start_ns: int, n_spans: int) -> list[tuple]:
    """``n_spans`` spans of one trace (a root and its children), 1 ms each, as ``span_row`` makes them."""
    tid = f"{trace:032x}"
    rows = []
    for i in range(n_spans):
        parent = None if i == 0 else f"{1:016x}"
        s = start_ns + i * 10**6
        rows.append(
            (tid, f"{i + 1:016x}", parent, f"span {i}", "internal", s, s + 10**6, "OK", None,
             None, None, None, None, None, None, "test", json.dumps({}), "[]")
        )  # fmt: skip
    return rows


def _state(store: SpanStore) -> dict[str, int]:
    """Trace id → the number of spans stored for it (read from ``spans``, not the summary)."""
    conn = store._read()
    try:
        rows = conn.execute("SELECT trace_id, COUNT(*) FROM spans GROUP BY trace_id").fetchall()
        summaries = {r[0]: r[1] for r in conn.execute("SELECT trace_id, spans FROM traces")}
    finally:
        conn.close()
    counts = {int(t, 16): n for t, n in rows}
    assert {int(t, 16): n for t, n in summaries.items()} == counts  # summaries and spans agree
    return counts


def test_traces_older_than_keep_days_are_deleted_whole(tmp_path):
    now = time.time_ns()
    store = SpanStore(tmp_path, Retention(keep_days=7, max_spans=0))
    store._pruned_at = time.monotonic()  # hold the automatic prune off: this test prunes explicitly
    store.write(_rows(1, now - 10 * DAY_NS, 3) + _rows(2, now - 6 * DAY_NS, 2) + _rows(3, now - 3600 * 10**9, 4))
    assert len(_state(store)) == 3
    deleted = store.prune(now)
    store.close()

    assert deleted == 3
    assert _state(store) == {2: 2, 3: 4}
    assert [t.trace_id for t in store.traces()] == [f"{3:032x}", f"{2:032x}"]


def test_over_max_spans_the_oldest_traces_go_until_the_store_is_at_ninety_percent(tmp_path):
    now = time.time_ns()
    store = SpanStore(tmp_path, Retention(keep_days=0, max_spans=20))
    store._pruned_at = time.monotonic()  # hold the automatic prune off while filling
    for trace in range(10):  # 10 traces of 3 spans: 30 spans, oldest first
        store.write(_rows(trace, now - (10 - trace) * 10**9, 3))
    assert sum(_state(store).values()) == 30

    deleted = store.prune(now)
    store.close()

    kept = _state(store)
    assert deleted == 12  # down to 18 (90 % of 20) means 4 traces of 3
    assert sorted(kept) == list(range(4, 10))  # the newest six, each whole
    assert all(n == 3 for n in kept.values())


def test_pruning_runs_on_the_first_write_and_then_only_after_the_interval(tmp_path, monkeypatch):
    now = time.time_ns()
    store = SpanStore(tmp_path, Retention(keep_days=1, max_spans=0))
    store.write(_rows(1, now - 5 * DAY_NS, 2))  # the first write in a process prunes: the old trace goes
    assert _state(store) == {}

    store.write(_rows(2, now - 5 * DAY_NS, 2))  # within the interval: no prune, the old trace stays
    assert _state(store) == {2: 2}

    monkeypatch.setattr(store, "_pruned_at", time.monotonic() - retention.PRUNE_INTERVAL_S - 1)
    store.write(_rows(3, now, 1))  # the interval passed: this write prunes
    store.close()
    assert _state(store) == {3: 1}


def test_zero_turns_both_bounds_off(tmp_path):
    now = time.time_ns()
    store = SpanStore(tmp_path, Retention(keep_days=0, max_spans=0))
    store.write(_rows(1, now - 400 * DAY_NS, 5))
    assert store.prune(now) == 0
    store.close()
    assert _state(store) == {1: 5}


def test_the_bounds_come_from_the_tracing_table(tmp_path, workspace):
    from llmops_magics.tracing import provider
    from llmops_magics.tracing.settings import tracing_settings

    assert tracing_settings().retention == Retention()  # defaults: bounded by age and by size
    assert Retention().keep_days > 0 and Retention().max_spans > 0
    (tmp_path / "pyproject.toml").write_text(
        "[tool.llmops]\n[tool.llmops.tracing]\nkeep_days = 2.5\nmax_spans = 1000\n"
    )
    assert tracing_settings().retention == Retention(2.5, 1000)
    provider.reset()
    try:
        assert provider.tracing_for(workspace).store.retention == Retention(2.5, 1000)
    finally:
        provider.reset()
    (tmp_path / "pyproject.toml").write_text("[tool.llmops]\n[tool.llmops.tracing]\nmax_spans = -1\n")
    with pytest.raises(ValidationError, match="max_spans must be an integer >= 0"):
        tracing_settings()
