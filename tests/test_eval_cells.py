"""Local answers made by forked workers: the one-process answers, cached, traced, cancellable."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from llmops_magics import evaluate, get_trace, list_traces
from llmops_magics.errors import JobCancelledError
from llmops_magics.evaluation import cells
from llmops_magics.evaluation.cache import GenerationCache
from llmops_magics.evaluation.generations import GenParams, cached_answers
from llmops_magics.evaluation.runner import cache_path
from llmops_magics.tracing import conventions as C
from llmops_magics.tracing import flush_traces

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")

# 2 targets x 45 validation rows = 90 answers, batches of 8: 12 batches in 4 units
GRID = dict(data="qa-task", max_new_tokens=6, batch_size=8, metrics=["exact_match", "tokens"], cache=False)


def _answers(result) -> list[tuple[str, int, str]]:
    return sorted((r["target"], r["example"], r["output"]) for r in result.records)


def test_forked_workers_give_the_one_process_answers_and_their_spans_are_stored(eval_ws):
    one = evaluate("model://tiny-gpt2", compare="adapter://qa-lora", workers=1, **GRID).wait()
    two = evaluate("model://tiny-gpt2", compare="adapter://qa-lora", workers=2, **GRID).wait()
    assert len(two.records) == 90
    assert _answers(two) == _answers(one)
    assert [r["completion_tokens"] for r in sorted(two.records, key=lambda r: (r["target"], r["example"]))] == [
        r["completion_tokens"] for r in sorted(one.records, key=lambda r: (r["target"], r["example"]))
    ]
    assert flush_traces()
    trace_id = list_traces(artifact=two.ref).ids[0]  # the latest (the same answers make the same version)
    spans = get_trace(trace_id).spans
    (gen,) = [s for s in spans if s.name.startswith("generate ")]
    assert gen.get(C.LLMOPS_WORKERS) == 2
    batches = [s for s in spans if s.name.startswith("text_completion")]
    assert len(batches) == 12 and all(s.parent_id == gen.span_id for s in batches)  # written by the workers
    assert sum(s.get(C.GEN_AI_USAGE_OUTPUT_TOKENS) for s in batches) == sum(r["completion_tokens"] for r in two.records)


def test_one_process_by_default_for_a_small_eval_and_whenever_asked(eval_ws):
    small = evaluate("model://tiny-gpt2", **{**GRID, "batch_size": 2}, limit=8).wait()
    assert flush_traces()
    (trace_id,) = list_traces(artifact=small.ref).ids
    (gen,) = [s for s in get_trace(trace_id).spans if s.name.startswith("generate ")]
    assert gen.get(C.LLMOPS_WORKERS) == 1


def _backend(device=None, folder=None):
    return SimpleNamespace(device=device, source=SimpleNamespace(base_path=folder, adapter_path=None))


def test_the_plan_falls_back_to_this_process_when_forking_would_not_pay_or_be_safe(tmp_path, monkeypatch):
    (tmp_path / "model.safetensors").write_bytes(b"0" * 1000)
    small = [_backend(folder=tmp_path)]
    monkeypatch.setattr(cells, "usable_cores", lambda: 4)
    assert cells.plan_workers(small, 200, 10, None) == 4
    assert cells.plan_workers(small, 200, 3, None) == 3  # never more workers than units
    assert cells.plan_workers(small, 200, 10, 1) == 1
    assert cells.plan_workers(small, 200, 1, None) == 1
    assert cells.plan_workers(small, cells.PARALLEL_MIN - 1, 10, None) == 1
    assert cells.plan_workers(small, 10, 10, 2) == 2  # asked for: done even when small
    assert cells.plan_workers([_backend("cuda", tmp_path)], 200, 10, None) == 1
    monkeypatch.setattr(cells, "MAX_MODEL_BYTES", 999)
    assert cells.plan_workers(small, 200, 10, None) == 1


def test_a_cancelled_forked_generation_caches_nothing(eval_ws):
    from llmops_magics.evaluation.targets import resolve_targets

    (target,) = resolve_targets(["model://tiny-gpt2"], eval_ws, ["question"])
    payloads = [f"Question: what is {n}?\nAnswer:" for n in range(96)]
    params = GenParams(max_new_tokens=24)
    cache = GenerationCache(cache_path(eval_ws))
    try:
        with pytest.raises(JobCancelledError):
            cells.generate_local(
                {"A": target.backend}, {"A": payloads}, params, cache, 8, workers=2, cancelled=lambda: True
            )
        assert cached_answers(target.backend, payloads, params, cache)[0] == [None] * 96
        assert target.backend.held is None  # the pinned model is let go
    finally:
        cache.close()


def test_a_forked_child_never_writes_through_its_parents_span_connections(eval_ws):
    from llmops_magics.tracing import export

    evaluate("model://tiny-gpt2", **{**GRID, "batch_size": 2}, limit=2).wait()
    assert flush_traces() and export._writer._open  # the parent holds a connection to traces.db
    pid = os.fork()
    if pid == 0:
        ok = not export._writer._open and not export._writer._queue and export._inherited
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert export._writer._open  # the parent's is untouched


class _Timed:
    """A scripted endpoint's answer function that keeps when each request ran."""

    def __init__(self, name: str) -> None:
        import threading

        self.name, self.spans, self.busy, self.most = name, [], 0, 0
        self._lock = threading.Lock()

    def __call__(self, prompt: str) -> str:
        import time

        with self._lock:
            self.busy += 1
            self.most = max(self.most, self.busy)
        started = time.monotonic()
        time.sleep(0.03)
        with self._lock:
            self.busy -= 1
            self.spans.append((started, time.monotonic()))
        return f"{self.name}:{len(prompt)}"


def test_endpoints_on_two_servers_are_asked_at_once_each_within_its_own_concurrency(eval_ws):
    from eval_support import ScoringJudge

    a, b = _Timed("a"), _Timed("b")
    with ScoringJudge(a) as server_a, ScoringJudge(b) as server_b:
        result = evaluate(
            server_a.url, compare=server_b.url, data="qa-task", limit=24, batch_size=4, metrics="exact_match"
        ).wait()
    by_target = {t: [r["output"] for r in result.records if r["target"] == t] for t in ("A", "B")}
    assert all(o.startswith("a:") for o in by_target["A"]) and all(o.startswith("b:") for o in by_target["B"])
    assert len(a.spans) == len(b.spans) == 24
    assert a.most <= 4 and b.most <= 4  # no server sees more than one call would send it
    assert min(s for s, _ in b.spans) < max(e for _, e in a.spans)  # B was asked while A was still answering
