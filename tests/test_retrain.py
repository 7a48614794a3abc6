"""``retrain`` end to end: the tiny model fine-tuned, served, gated, canaried, judged, promoted or rolled back.

The world (``models/world.py``) has made-up countries, each with a national animal the base
model read about. ``qa-lora/1`` is fine-tuned (60 steps) on "What is the national animal of
X?" and deployed as ``qa-svc`` with text logging; it answers those well and answers users
who ask "Which animal stands for X?" badly (the base model knows the facts, the adapter
never saw that phrasing). The pipelines run against it in this order:

* **stopped at the gate** (through ``llmops retrain``, exit 1): new data whose every answer
  is "red" (mislabelled) is gated on clean held-out countries; the candidate regresses.
* **rolled back by the A/B test**: the same mislabelled data, but the gate is pointed at
  its own (equally mislabelled) validation split, so the candidate passes it; live users,
  who rate each answer up when it names the country's true animal and down otherwise,
  rate the canary's "red" down, and the A/B analysis rolls it back.
* **promoted**: users ask in the new phrasing, the drift monitor fails, a reviewer marks
  the answers down with the right animal as a correction, ``retrain(on_failure=…)`` trains
  on the corrections and the old rows, the candidate passes the gate, the users rate the
  canary's answers higher, and the A/B stop rule promotes it.
* **cancelled** during its A/B test: the canary it set is rolled back, and the pipeline says so;
* **failed**: new rows that do not fit the adapter's prompt stop it at the combine step.

What makes the canary look better or worse is only the users' ratings of its answers
(feedback) and the error rate (both arms answer without errors, so its interval shrinks to
zero at once and holds nothing open). Users ask about every country, including some the
versions were not trained on, so each arm's ratings vary from user to user. The A/B's
``tuning`` is 100 users and ``min_users`` 10 per arm, sized for a test's traffic; the
statistics are those of ``%deploy ab``. About 100 s on two cores.
"""

from __future__ import annotations

import itertools
import json
import threading
import time

import pytest
import requests

from llmops_magics import deploy, feedback, finetune, get_pipeline, monitor, replay, retrain, save_dataset
from llmops_magics.models.world import make_world

pytestmark = pytest.mark.slow

WORLD = make_world(0)
STANDARD = "What is the national animal of {}?"
DRIFTED = "Which animal stands for {}?"
AB = {"metrics": "feedback,error_rate", "min_users": 10, "tuning": 100}
FAST = {"ab": AB, "ab_interval": 1.0, "ab_timeout": 120.0, "canary": 50.0, "train": {"max_steps": 60},
        "gate": {"max_new_tokens": 6}}  # fmt: skip


def _rows(form: str, countries, answer: str | None = None) -> list[dict]:
    return [{"question": form.format(c.name), "answer": answer or c.animal} for c in countries]


class Users:
    """Simulated users: sticky ids, each asking questions from ``pool`` and rating every answer.

    A rating is "up" when the answer names the country's true animal, else "down": these
    users know the world's facts. Requests that fail while a server is replaced are skipped.
    """

    def __init__(self, url: str, pool: list[dict], users: int = 60, workers: int = 2) -> None:
        self.url, self.pool, self.users = url, pool, users
        self.stop_event = threading.Event()
        self.counter = itertools.count()
        self.sent = 0
        self.threads = [threading.Thread(target=self._work, daemon=True) for _ in range(workers)]

    def _work(self) -> None:
        while not self.stop_event.is_set():
            i = next(self.counter)
            user, row = f"user-{i % self.users}", self.pool[(i // self.users + i) % len(self.pool)]
            try:
                body = {"model": "qa-svc", "variables": {"question": row["question"]}, "max_tokens": 4,
                        "temperature": 0.0, "user": user}  # fmt: skip
                r = requests.post(self.url + "/v1/completions", json=body, timeout=30)
                if r.status_code != 200:
                    continue
                out = r.json()
                label = "up" if row["answer"] in out["choices"][0]["text"] else "down"
                requests.post(self.url + "/v1/feedback", json={"request_id": out["id"], "label": label, "user": user},
                              timeout=30)  # fmt: skip
                self.sent += 1
            except requests.RequestException:
                time.sleep(0.1)

    def __enter__(self) -> Users:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(30)


def _run_with_users(job, url: str, pool: list[dict]):
    """Wait until the pipeline reaches its A/B step (or ends), then send users until it ends."""
    while not job.done and job.progress.get("stage") not in ("ab", "promote", "rollback"):
        time.sleep(0.2)
    with Users(url, pool) as users:
        result = job.wait(300)
    return result, users.sent


@pytest.fixture(scope="module")
def live(tmp_path_factory, tiny_model_dir):
    from deploy_support import module_workspace, stop_all

    home = tmp_path_factory.mktemp("retrain") / ".llmops"
    with module_workspace(home) as ws:
        try:
            save_dataset("animals", _rows(STANDARD, WORLD[:48]), validation_fraction=0.25)
            save_dataset("animals-golden", _rows(STANDARD, WORLD[48:60]))
            save_dataset("mislabelled", _rows(STANDARD, WORLD[:48], answer="red"), validation_fraction=0.25)
            adapter = finetune("animals", max_steps=60, name="qa-lora").wait(600).artifact
            handle = deploy(adapter.ref, name="qa-svc", log_text=True, threads=1)
            yield {"ws": ws, "home": home, "url": handle.url, "v1": adapter.ref}
        finally:
            stop_all(ws)


@pytest.fixture(scope="module")
def gate_stopped(live):
    from llmops_magics.adapters.cli import main

    argv = ["--home", str(live["home"]), "retrain", "qa-svc", "--data", "mislabelled", "--combine", "replace",
            "--gate-data", "animals-golden", "--train", "max_steps=60", "--gate", "max_new_tokens=6"]  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LLMOPS_WANDB_MODE", "disabled")  # the CLI's own workspace records nothing, as the module's
        code = main(argv)
    return code, get_pipeline("qa-svc", workspace=live["ws"])


@pytest.fixture(scope="module")
def rolled_back(live, gate_stopped):
    job = retrain("qa-svc", data="mislabelled", gate_data="mislabelled", **FAST)
    return _run_with_users(job, live["url"], _rows(STANDARD, WORLD))


@pytest.fixture(scope="module")
def promoted(live, rolled_back):
    drifted = _rows(DRIFTED, WORLD[:40])
    time.sleep(1.0)  # a quiet second: the monitor's window holds the drifted requests only
    began = time.time()
    ids = []
    for i, row in enumerate(drifted):
        body = {"model": "qa-svc", "variables": {"question": row["question"]}, "max_tokens": 4, "user": f"early-{i}"}
        ids.append(requests.post(live["url"] + "/v1/completions", json=body, timeout=30).json()["id"])
    from llmops_magics.serving.requestlog import read_requests

    db = live["ws"].registry.get_state("deployments", "qa-svc")["monitor_db"]
    deadline = time.monotonic() + 30  # the server writes its log in the background: wait for every request
    while not set(ids) <= {r["request_id"] for r in read_requests(db, since=began)} and time.monotonic() < deadline:
        time.sleep(0.05)
    report = monitor("qa-svc", window=f"{time.time() - began + 0.5:.2f}s", checks="drift")
    for rid, row in zip(ids, drifted, strict=True):  # a reviewer marks each answer down and writes the right one
        feedback("qa-svc", rid, label="down", correction=row["answer"])
    job = retrain(on_failure=report.ref, **FAST)
    result, sent = _run_with_users(job, live["url"], _rows(DRIFTED, WORLD))
    return report, result, sent


def test_a_worse_candidate_is_stopped_at_the_gate_and_llmops_retrain_exits_1(live, gate_stopped):
    code, pipeline = gate_stopped
    assert code == 1 and pipeline.decision == "stopped at the gate"
    assert [s.name for s in pipeline.steps] == ["new data", "combine", "finetune", "gate"]
    assert pipeline.step("gate").status == "failed" and "regression: B worse on exact_match" in pipeline.reason
    state = live["ws"].registry.get_state("deployments", "qa-svc")
    assert state["target"] == live["v1"]  # nothing was served
    assert pipeline.step("combine").reason.startswith("replace: 36 new training rows")


def test_a_canary_users_rate_worse_is_rolled_back_with_the_reason_recorded(live, rolled_back):
    pipeline, sent = rolled_back
    assert pipeline.decision == "rolled back", pipeline
    assert [s.name for s in pipeline.steps] == ["new data", "combine", "finetune", "gate", "canary", "ab", "rollback"]
    assert pipeline.step("gate").status == "passed"
    assert pipeline.reason.startswith("A/B says roll back: a guarded metric shows harm; canary worse: feedback score")
    stored = live["ws"].registry.resolve(pipeline.ref)
    assert stored.metadata["decision"] == "rolled back" and stored.metadata["reason"] == pipeline.reason
    state = live["ws"].registry.get_state("deployments", "qa-svc")
    assert state["target"] == live["v1"] and state["canary"] is None and sent > 0


def test_a_candidate_trained_on_corrections_after_a_failing_monitor_is_promoted(live, promoted):
    report, pipeline, _ = promoted
    assert report.failed and "input_drift_classifier" in report.failures
    assert pipeline.decision == "promoted", pipeline
    assert pipeline.monitor == report.ref and pipeline.step("new data").reason.startswith("40 corrected answers")
    assert pipeline.reason.startswith("A/B says promote: every guarded metric excludes harm")
    judged = json.loads(live["ws"].registry.read_bytes(pipeline.ref_of("ab")))
    rated = next(m for m in judged["metrics"] if m["metric"] == "feedback")
    # users rate the canary higher on average; how far above the old version's rate it lands depends on
    # how well v1 happens to generalise to the new phrasing (CI saw 0.71 → 0.93), so no fixed margin
    assert rated["outcome"] != "worse" and rated["means"][1] > rated["means"][0], rated
    state = live["ws"].registry.get_state("deployments", "qa-svc")
    candidate = pipeline.ref_of("finetune")
    assert state["target"] == candidate and state["canary"] is None and candidate != live["v1"]
    assert live["ws"].registry.resolve(candidate).aliases.count("production") == 1


def test_the_lineage_runs_deployment_monitor_dataset_adapter_eval_to_the_new_deployment_version(live, promoted):
    report, pipeline, _ = promoted
    reg = live["ws"].registry
    edges = {(e.source, e.target, e.relation) for e in reg.upstream(pipeline.result, depth=8)}
    dataset, adapter, gate = pipeline.ref_of("combine"), pipeline.ref_of("finetune"), pipeline.ref_of("gate")
    assert (report.deployment, report.ref, "monitors") in edges
    assert (report.ref, dataset, "monitor") in edges and (report.deployment, dataset, "retrains") in edges
    assert (dataset, adapter, "train_data") in edges
    assert any(src == adapter and dst == gate for src, dst, _ in edges)
    assert (gate, pipeline.ref_of("canary"), "gate") in edges and (gate, pipeline.result, "gate") in edges
    into_pipeline = {(e.source, e.relation) for e in reg.upstream(pipeline.ref, depth=1)}
    assert {(report.ref, "monitor"), (dataset, "dataset"), (adapter, "candidate"), (gate, "gate"),
            (pipeline.ref_of("ab"), "abtest"), (pipeline.result, "result")} <= into_pipeline  # fmt: skip


def test_the_pipeline_shows_its_steps_and_replays_from_its_stored_spec(live, promoted):
    _, pipeline, _ = promoted
    data, _meta = pipeline._repr_mimebundle_()
    assert 'data-decision="promoted"' in data["text/html"] and "corrected answers" in data["text/plain"]
    planned = replay(pipeline.ref, dry_run=True)
    assert planned.op == "retrain" and f"on_failure='{pipeline.monitor}'" in planned.call


def test_a_retrain_cancelled_during_its_ab_test_rolls_its_canary_back_and_records_why(live, promoted):
    from llmops_magics import JobCancelledError

    _, before, _ = promoted
    job = retrain("qa-svc", data="mislabelled", gate_data="mislabelled", **{**FAST, "ab_timeout": 600.0})
    while not job.done and job.progress.get("stage") != "ab":
        time.sleep(0.2)
    job.cancel()
    with pytest.raises(JobCancelledError):
        job.wait(120)
    pipeline = get_pipeline("qa-svc", workspace=live["ws"])
    assert pipeline.decision == "cancelled" and [s.name for s in pipeline.steps][-2:] == ["ab", "rollback"]
    assert pipeline.step("ab").status == "cancelled" and pipeline.step("rollback").reason == "the retrain was cancelled"
    state = live["ws"].registry.get_state("deployments", "qa-svc")
    assert state["canary"] is None and state["target"] == before.ref_of("finetune")


def test_a_step_that_fails_is_recorded_with_its_error_and_the_job_raises_it(live):
    from llmops_magics import ValidationError

    save_dataset("odd-rows", [{"text": f"hello {i}", "answer": "x"} for i in range(3)])
    job = retrain("qa-svc", data="odd-rows", gate_data="animals-golden", **FAST)
    with pytest.raises(ValidationError, match="has neither the column"):
        job.wait(120)
    pipeline = get_pipeline("qa-svc", workspace=live["ws"])
    assert pipeline.decision == "failed" and [s.name for s in pipeline.steps] == ["new data", "combine"]
    assert pipeline.step("combine").status == "failed" and pipeline.reason.startswith(
        "dataset://odd-rows/1 has neither"
    )
