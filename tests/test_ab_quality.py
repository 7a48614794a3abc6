"""Judged quality in ``ab``: a seeded sample of each arm's logged answers, scored by a judge, cached per request.

The ``ab`` tests write a request log with the server's own ``RequestLog`` (texts on) and a
deployment record by hand, as ``test_deploy_ab.py`` does, and judge with a real judge
endpoint: a local OpenAI-compatible server that scores an answer 5 when it says "good" and 1
otherwise, and counts its calls. The simulation checks the sample against a known truth.
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from eval_support import ScoringJudge

from llmops_magics import ValidationError, ab
from llmops_magics.errors import EndpointError
from llmops_magics.monitoring.ab_quality import (
    NO_JUDGE,
    NO_TEXT,
    judge_quality,
    position,
    request_key,
    sample_answers,
)
from llmops_magics.monitoring.abstats import METRICS, compare_metric, per_user
from llmops_magics.serving.requestlog import RequestLog, monitor_path

PRIMARY, CANARY = "adapter://qa-lora/1", "adapter://qa-lora/2"


def _score(prompt: str) -> str:
    """ "5" when the judged answer says "good", "1" otherwise."""
    return "5" if "Answer: good" in prompt else "1"


@pytest.fixture
def judge():
    j = ScoringJudge(_score)
    yield j
    j.close()


def _deployment(ws, name: str, *, log_text: bool) -> dict:
    """A deployment record as ``serving/control`` writes it, its version's spec saying whether texts are logged."""
    for ref in (PRIMARY, CANARY):
        ws.registry.save("adapter", "qa-lora", data=ref.encode())
    spec = {"op": "deploy", "args": {"log_text": log_text}}
    dep = ws.registry.save("deployment", name, data=json.dumps(spec).encode(), spec=spec).artifact
    state = {"name": name, "ref": dep.ref, "target": PRIMARY, "canary": {"target": CANARY, "weight": 50.0},
             "started_at": time.time() - 60, "monitor_db": str(monitor_path(ws.registry.home, name))}  # fmt: skip
    ws.registry.put_state("deployments", name, state)
    return state


def _traffic(state: dict, users: range, *, log_text: bool = True) -> None:
    """Each user sends two requests; the primary answers "bad", the canary "good"."""
    log = RequestLog(state["monitor_db"], salt="s", log_text=log_text)
    for i in users:
        arm = ("primary", "canary")[i % 2]
        for k in range(2):
            log.record({"ts": time.time() - 5, "request_id": f"req-{i}-{k}", "endpoint": "completions",
                        "status": 200, "latency_ms": 100.0, "ttft_ms": 50.0, "user": f"u{i}", "arm": arm,
                        "version": (PRIMARY, CANARY)[i % 2], "input_text": f"question {i}.{k}",
                        "output_text": ("bad", "good")[i % 2]})  # fmt: skip
    log.close()


def _quality(test):
    return next(m for m in test.analysis.metrics if m.metric.name == "quality")


# ---------------------------------------------------------------------- the sample


def _rows(n_users: int, *, seed: int = 0, first: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(first, n_users):
        for k in range(int(rng.integers(1, 5))):
            rows.append({"request_id": f"r{u}-{k}", "user": f"u{u}", "arm": ("primary", "canary")[u % 2],
                         "status": 200, "input_text": f"q{u}-{k}", "output_text": "a"})  # fmt: skip
    return rows


def test_the_sample_is_seeded_reproducible_and_takes_one_answer_of_each_sampled_user_per_arm():
    rows = _rows(200)
    rows += [{"request_id": "anon", "user": None, "arm": "primary", "status": 200, "input_text": "q", "output_text": "a"},
             {"request_id": "x1", "user": "crossed", "arm": "primary", "status": 200, "input_text": "q", "output_text": "a"},
             {"request_id": "x2", "user": "crossed", "arm": "canary", "status": 200, "input_text": "q", "output_text": "a"},
             {"request_id": "f", "user": "failed", "arm": "canary", "status": 500, "input_text": "q", "output_text": None},
             {"request_id": "t", "user": "untexted", "arm": "canary", "status": 200, "input_text": None, "output_text": None}]  # fmt: skip
    ids = lambda s: {arm: [r["request_id"] for r in s.answers[arm]] for arm in s.answers}
    first, again = sample_answers(rows, 0.3, seed=7), sample_answers(list(reversed(rows)), 0.3, seed=7)
    assert ids(first) == ids(again)  # the order of the log does not matter, only the seed
    assert ids(sample_answers(rows, 0.3, seed=8)) != ids(first)
    assert first.users == {"primary": 100, "canary": 100}  # what the share is of: users with an answer, one arm
    for arm in ("primary", "canary"):
        users = [r["user"] for r in first.answers[arm]]
        assert len(users) == len(set(users)) > 0 and all(r["arm"] == arm for r in first.answers[arm])
        assert not {"crossed", "failed", "untexted", None} & set(users)
        assert first.positions[arm] == sorted(first.positions[arm]) and all(0 <= p < 0.3 for p in first.positions[arm])
        assert [position(7, u) for u in users] == first.positions[arm]
    everyone = sample_answers(rows, 1.0, seed=7)
    assert {arm: len(a) for arm, a in everyone.answers.items()} == everyone.users  # share 1: every eligible user


def test_more_traffic_only_adds_users_to_the_sample():
    """A sampled user stays sampled, so the verdicts already cached keep counting and the sample grows.

    The first version sampled a fixed count (the lowest positions): there a newcomer with a
    low position pushed an old member out, which this test would catch.
    """
    early = _rows(300)
    grown = early + _rows(1200, first=300, seed=1) + [{**r, "request_id": r["request_id"] + "-again"} for r in early]
    for seed in range(5):
        before, after = sample_answers(early, 0.2, seed), sample_answers(grown, 0.2, seed)
        assert before.user_ids() <= after.user_ids()
        assert len(after.user_ids()) > 2 * len(before.user_ids())  # the sample grows with the traffic
        assert after.user_ids() - before.user_ids() <= {f"u{u}" for u in range(300, 1200)}


@pytest.mark.parametrize("share", [0.05, 0.2, 0.5])
def test_the_share_of_users_sampled_is_the_share_asked_for_within_binomial_tolerance(share):
    """10,000 users, 5,000 per arm: each arm's count is Binomial(5000, share); 4 standard deviations allowed."""
    rows = [{"request_id": f"r{u}", "user": f"user-{u}", "arm": ("primary", "canary")[u % 2], "status": 200,
             "input_text": "q", "output_text": "a"} for u in range(10_000)]  # fmt: skip
    for seed in (0, 1):
        sample = sample_answers(rows, share, seed)
        for arm in ("primary", "canary"):
            tolerance = 4 * (5000 * share * (1 - share)) ** 0.5
            assert abs(len(sample.answers[arm]) - 5000 * share) < tolerance, (arm, len(sample.answers[arm]))


def test_the_judged_sample_estimates_the_per_user_difference_known_in_advance():
    """Light users (1 request) gain 0.3 quality on the canary, heavy users (6 requests) nothing.

    The A/B compares users, so the truth is +0.15; a sample of requests would be dominated
    by heavy users and estimate about +0.04. Over 100 simulated tests the judged half of the
    users gives a mean difference within 0.04 of +0.15 (its standard error there is about
    0.011) and the always-valid interval covers it at least 95% of the time.
    """
    diffs, covered = [], 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        rows = []
        for u in range(160):
            arm, heavy = u % 2, (u // 2) % 2
            q = rng.uniform(0.3, 0.6) + (0.3 if arm and not heavy else 0.0)
            for k in range(6 if heavy else 1):
                rows.append({"request_id": f"r{u}-{k}", "user": f"u{u}", "arm": ("primary", "canary")[arm],
                             "status": 200, "latency_ms": 1.0, "input_text": "q", "output_text": "a",
                             "p": q})  # fmt: skip
        sample = sample_answers(rows, 0.5, seed)
        for arm_rows in sample.answers.values():
            for r in arm_rows:
                r["quality"] = float(rng.random() < r["p"])  # a judge's 0/1 verdict with the user's odds
        users = per_user(rows)
        q = users.values["quality"]
        m = compare_metric(
            METRICS["quality"], q[users.arm == 0], q[users.arm == 1], alpha=0.05, tuning=5000, min_users=20
        )
        assert m.users == (len(sample.answers["primary"]), len(sample.answers["canary"]))
        diffs.append(m.diff)
        covered += m.interval[0] <= 0.15 <= m.interval[1]
    assert abs(np.mean(diffs) - 0.15) < 0.04, np.mean(diffs)
    assert covered / 100 >= 0.95


def _growing_test(seed: int, looks: tuple[int, ...], share: float = 0.2, lift: float = 0.05):
    """One simulated A/B looked at after each count of users in ``looks``; the quality result at each look.

    A user's true quality is uniform in 0.2-0.8, plus ``lift`` on the canary; each request's
    verdict is a judge's 1-5 score drawn around it (Binomial(4, q) / 4: mean q, spread about
    0.3 over users and answers), fixed per request as a cached verdict is. Users arrive with
    all their requests; a later look holds every earlier user.
    """
    rng = np.random.default_rng(seed)
    n = looks[-1]
    quality = rng.uniform(0.2, 0.8, n) + lift * (np.arange(n) % 2)
    user = np.repeat(np.arange(n), rng.integers(1, 4, n))  # 1 to 3 requests each, in order of arrival
    verdicts = rng.binomial(4, quality[user]) / 4
    rows = [{"request_id": f"r{k}", "user": f"u{u}", "arm": ("primary", "canary")[u % 2], "status": 200,
             "input_text": "q", "output_text": "a", "verdict": v} for k, (u, v) in enumerate(zip(user.tolist(), verdicts.tolist(), strict=True))]  # fmt: skip
    results = []
    for look in looks:
        sample = sample_answers(rows[: int(np.searchsorted(user, look))], share, seed)
        scores = [np.array([r["verdict"] for r in sample.answers[arm]]) for arm in ("primary", "canary")]
        results.append(compare_metric(METRICS["quality"], *scores, alpha=0.05, tuning=5000, min_users=30))
    return results


def test_the_quality_interval_narrows_as_users_grow_and_covers_the_truth():
    """1,000 then 4,000 users (share 0.5: about 250 then 1,000 judged per arm), 100 simulated tests, truth +0.05.

    Four times the users give four times the judged users, so the fixed-horizon interval
    halves (ratio 0.5 = 1/sqrt(4)). The always-valid one narrows a little faster here (about
    0.4): below the N* = 5,000 it is tuned for, its log factor shrinks too. A fixed count of
    judged users, as in the first version, gives a ratio of 1. Both looks cover the truth
    together in at least 95% of the tests (the interval is valid at every look, not at one).
    """
    ratios, fixed_ratios, covered = [], [], 0
    for seed in range(100):
        small, large = _growing_test(seed, (1000, 4000), share=0.5)
        assert 3.5 < sum(large.users) / sum(small.users) < 4.5
        ratios.append(np.ptp(large.interval) / np.ptp(small.interval))
        fixed_ratios.append(np.ptp(large.fixed) / np.ptp(small.fixed))
        covered += all(m.interval[0] <= 0.05 <= m.interval[1] for m in (small, large))
    assert 0.45 < np.median(fixed_ratios) < 0.55, np.median(fixed_ratios)
    assert 0.3 < np.median(ratios) < 0.55, np.median(ratios)
    assert covered >= 95, covered


# ---------------------------------------------------------------------- judging, caching, unavailable


def test_verdicts_are_cached_per_request_so_a_rerun_judges_only_new_answers(workspace):
    calls: list[int] = []

    def scorer(pairs):
        calls.append(len(pairs))
        return [1.0 if a == "good" else 0.0 for _, a in pairs]

    rows = [{"request_id": f"r{i}", "user": f"u{i}", "arm": ("primary", "canary")[i % 2], "status": 200,
             "input_text": f"q{i}", "output_text": ("bad", "good")[i % 2]} for i in range(40)]  # fmt: skip
    kw = dict(share=0.5, max_new=1000, seed=0, judge_model="judge", log_text=True, scorer=scorer)
    sampled = sample_answers(rows, 0.5, 0).answers
    p, c = len(sampled["primary"]), len(sampled["canary"])
    scored, first = judge_quality(workspace, "svc", rows, **kw)
    assert calls == [p + c] and first.new == p + c and first.judged == {"primary": p, "canary": c} and p and c
    assert first.users == {"primary": 20, "canary": 20} and first.pending == 0 and first.reach == 0.5
    assert sorted(r["quality"] for r in scored if "quality" in r) == [0.0] * p + [1.0] * c
    assert all("quality" not in r for r in rows)  # the caller's rows are left as they were
    again, second = judge_quality(workspace, "svc", rows, **kw)
    assert calls == [p + c] and second.new == 0 and again == scored  # the scorer was not called again
    more = rows + [{**rows[0], "request_id": f"n{i}", "user": f"n{i}", "input_text": f"nq{i}"} for i in range(20)]
    _, third = judge_quality(workspace, "svc", more, **kw)
    entrants = sum(1 for r in sample_answers(more, 0.5, 0).answers["primary"] if r["user"][0] == "n")
    assert third.new == calls[-1] == entrants > 0  # the old sample is all cached: only entrants are judged
    assert third.judged == {"primary": p + entrants, "canary": c}
    _, other = judge_quality(workspace, "svc", rows, **{**kw, "judge_model": "another-judge"})
    assert other.new == p + c  # a verdict belongs to its judge

    def down(pairs):
        raise EndpointError("cannot reach endpoint http://judge: ConnectError")

    unscored, failed = judge_quality(workspace, "svc", rows, **{**kw, "judge_model": "third", "scorer": down})
    assert failed.unavailable == "the judge failed: cannot reach endpoint http://judge: ConnectError"
    assert all("quality" not in r for r in unscored)  # nothing half-judged, and nothing cached: the next look retries


def _below(rows: list[dict], reach: float, seed: int = 0) -> set[str]:
    """The users a sample at share ``reach`` holds: those whose position falls below it."""
    return sample_answers(rows, reach, seed).user_ids()


def test_an_analysis_judges_at_most_max_new_answers_and_the_rest_at_the_next_ones(workspace):
    calls: list[int] = []

    def scorer(pairs):
        calls.append(len(pairs))
        return [0.5] * len(pairs)

    rows = _rows(400)
    total = len(_below(rows, 0.5))
    kw = dict(share=0.5, max_new=40, seed=0, judge_model="judge", log_text=True, scorer=scorer)
    looks = []
    while not looks or looks[-1].pending:
        out, q = judge_quality(workspace, "svc", rows, **kw)
        used = {r["user"] for r in out if "quality" in r}
        assert used == _below(rows, q.reach) and sum(q.judged.values()) == len(used)  # a share of the same kind
        looks.append(q)
        assert len(looks) <= total // 40 + 1
    assert calls == [40] * (total // 40) + ([total % 40] if total % 40 else []) and sum(calls) == total
    assert looks[0].new == 40 and looks[0].pending == total - 40 and looks[0].reach < 0.5
    assert "sampled users wait for the next analyses (at most 40 judged per analysis" in looks[0].describe()
    assert [q.reach for q in looks] == sorted(q.reach for q in looks) and looks[-1].reach == 0.5
    assert sum(looks[-1].judged.values()) == total and "wait" not in looks[-1].describe()


def test_with_a_backlog_verdicts_cached_above_the_reach_wait_too(workspace):
    """Early users judged first, then a backlog of entrants: using every cached verdict would
    over-weight the early users, so the analysis keeps exactly the users below the reach."""
    kw = dict(share=0.5, seed=0, judge_model="judge", log_text=True, scorer=lambda pairs: [1.0] * len(pairs))
    early, grown = _rows(100), _rows(100) + _rows(1000, first=100, seed=1)
    judge_quality(workspace, "svc", early, max_new=1000, **kw)
    out, q = judge_quality(workspace, "svc", grown, max_new=20, **kw)
    used = {r["user"] for r in out if "quality" in r}
    assert q.new == 20 and q.pending > 0 and used == _below(grown, q.reach)
    assert _below(early, 0.5) - used  # some cached early users sit above the reach and wait


@pytest.mark.parametrize("bad", [0, -0.1, 1.5])
def test_judge_share_is_a_fraction_above_0_and_at_most_1(bad):
    from llmops_magics.ops.ab import AbSpec

    with pytest.raises(ValidationError, match="judge_share must be a fraction above 0 and at most 1"):
        AbSpec.from_dict({"name": "svc", "judge_share": bad})
    assert AbSpec.from_dict({"name": "svc", "judge_share": 1}).judge_share == 1
    assert AbSpec.from_dict({"name": "svc"}).judge_share == 0.2
    with pytest.raises(ValidationError, match="judge_max_new must be a positive number"):
        AbSpec.from_dict({"name": "svc", "judge_max_new": 0})


def test_ab_judges_a_share_of_each_arm_with_a_real_judge_and_reuses_its_verdicts(workspace, judge):
    state = _deployment(workspace, "svc", log_text=True)
    _traffic(state, range(200))
    first = ab("svc", min_users=20, judge_share=0.5, judge_model=judge.url)
    p, c = first.quality.judged["primary"], first.quality.judged["canary"]
    assert 30 < p < 70 and 30 < c < 70  # about half of each arm's 100 users
    q = _quality(first)
    assert q.users == (p, c) and q.means == (0.0, 1.0) and q.outcome == "better"
    assert judge.calls == p + c == first.quality.new and first.quality.users == {"primary": 100, "canary": 100}
    assert f"judged {p} of 100 primary and {c} of 100 canary users (share 50%, seed 0)" in str(first)
    stored = json.loads(workspace.registry.read_bytes(first.ref))
    assert stored["judged_quality"]["judged"] == {"primary": p, "canary": c}
    assert stored["judged_quality"]["share"] == 0.5 and stored["judged_quality"]["pending"] == 0
    assert stored["judged_quality"]["judge"] == "judge-answer@" + stored["judged_quality"]["judge"].split("@")[1]
    again = ab("svc", min_users=20, judge_share=0.5, judge_model=judge.url)
    assert judge.calls == p + c and again.quality.new == 0 and again.ref == first.ref  # same log, same version
    assert workspace.registry.resolve(first.ref).spec["args"]["judge_model"] == judge.url


def test_ab_uses_the_projects_judge_model_when_none_is_given(workspace, judge):
    from llmops_magics.context import configure

    state = _deployment(workspace, "svc", log_text=True)
    _traffic(state, range(12))
    ws = configure(judge_model=judge.url)
    try:
        test = ab("svc", judge_share=1.0, workspace=ws)
    finally:
        ws.close()
    assert test.quality.judge_model == judge.url and test.quality.judged == {"primary": 6, "canary": 6}
    assert _quality(test).means == (0.0, 1.0)


def test_quality_is_unavailable_with_its_reason_when_texts_are_not_logged_or_no_judge_is_set(workspace, judge):
    state = _deployment(workspace, "quiet", log_text=False)
    _traffic(state, range(40), log_text=False)
    test = ab("quiet", judge_model=judge.url)
    assert test.quality.unavailable == NO_TEXT and judge.calls == 0
    assert test.to_dict()["judged_quality"]["unavailable"] == NO_TEXT
    assert f"unavailable: {NO_TEXT}" in str(test) and "unavailable: texts are not logged" in test.html
    assert _quality(test).outcome == "no data" and not _quality(test).guarded  # it holds no stop open
    state = _deployment(workspace, "nojudge", log_text=True)
    _traffic(state, range(10))
    assert ab("nojudge").quality.unavailable == NO_JUDGE
    assert ab("nojudge", metrics="latency").quality is None  # not asked for: nothing judged, nothing said


def test_a_judge_prompt_that_reads_the_reference_is_refused(workspace, judge):
    from llmops_magics import save_prompt

    state = _deployment(workspace, "svc", log_text=True)
    _traffic(state, range(4))
    bad = save_prompt(
        "needs-ref", "Q: {{ question }}\nA: {{ answer }}\nRef: {{ reference }}\nScore:", workspace=workspace
    )
    with pytest.raises(ValidationError, match="reads reference, which live requests do not have"):
        ab("svc", judge_model=judge.url, judge_prompt=bad.ref)
    good = save_prompt("rubric", "Q: {{ question }}\nAnswer: {{ answer }}\nScore 1-5:", workspace=workspace)
    test = ab("svc", judge_share=1.0, judge_model=judge.url, judge_prompt=good.ref)
    assert test.quality.judge == good.ref and _quality(test).means == (0.0, 1.0)


def test_request_key_falls_back_to_a_digest_when_the_log_has_no_request_id():
    row = {"ts": 1.0, "user": "u", "input_text": "q", "output_text": "a"}
    assert request_key({**row, "request_id": "abc"}) == "abc"
    assert request_key(row) == request_key(dict(row)) != request_key({**row, "output_text": "b"})


# ---------------------------------------------------------------------- a real canary deployment


@pytest.mark.slow
def test_a_live_canary_that_logs_texts_gets_judged_quality_for_every_sampled_user(tmp_path_factory, judge):
    """The tiny model behind a 50% canary with texts logged; 16 users send 2 requests each, 2 send none."""
    from concurrent.futures import ThreadPoolExecutor

    import requests
    from deploy_support import build_folders, logged_requests, module_workspace, register, stop_all

    from llmops_magics import deploy

    folders = build_folders(str(tmp_path_factory.getbasetemp()))
    with module_workspace(tmp_path_factory.mktemp("ab-quality") / ".llmops") as ws:
        refs = register(ws, folders)
        try:
            handle = deploy(refs.adapter, name="abq", canary=f"{refs.adapter_v2}:50%", log_text=True, threads=1)
            users = [f"user-{i}" for i in range(16)] * 2 + [None] * 2

            def send(user):
                body = {
                    "model": "abq",
                    "prompt": f"The flag of {user}",
                    "max_tokens": 2,
                    **({"user": user} if user else {}),
                }
                r = requests.post(handle.url + "/v1/completions", json=body, timeout=60)
                assert r.status_code == 200, r.text
                return r.headers["X-LLMOps-Arm"]

            with ThreadPoolExecutor(4) as pool:
                arms = dict(zip(users, pool.map(send, users), strict=True))
            logged_requests(handle, at_least=len(users))
            first = ab("abq", min_users=5, judge_share=1.0, judge_model=judge.url, workspace=ws)
            again = ab("abq", min_users=5, judge_share=1.0, judge_model=judge.url, workspace=ws)
        finally:
            stop_all(ws)
    per_arm = {arm: sum(1 for u, a in arms.items() if u and a == arm) for arm in ("primary", "canary")}
    assert first.quality.judged == per_arm and first.quality.unavailable is None  # share 1: every user
    assert _quality(first).users == (per_arm["primary"], per_arm["canary"]) and _quality(first).means == (0.0, 0.0)
    assert judge.calls == 16 == first.quality.new and again.quality.new == 0 and again.ref == first.ref
