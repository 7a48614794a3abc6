"""Judged quality for ``ab``: a seeded share of each arm's users, one logged answer each, scored by the judge model.

The request log holds no quality score: a live request has no reference answer, so its
quality is a judge's verdict on the question and the answer, reference-free (the project's
judge model, ``LLMOps.judge_model``, and a judge prompt that does not read ``reference``).
Judging every answer would cost a judge call per request, so each analysis judges a sample:

* **Users, not requests, are sampled.** The A/B compares per-user means, so each sampled
  user contributes one answer (a judged request stands for its user's mean, unbiased since
  the answer is drawn at random). Sampling requests instead would favour heavy users and
  shift the estimate towards them.
* **The sample is a fixed share, decided by a seeded hash.** A user's position is a hash
  of the seed and the user id, read as a number in [0, 1); the user is sampled when it
  falls below ``share`` (the spec's ``judge_share``). That is a uniform sample of about
  ``share`` of each arm that the same log and seed always reproduce, and it is *nested*:
  more traffic only adds users, a sampled user stays sampled. The sample therefore grows
  with the test, and so does what the quality interval can resolve. A fixed count of users
  (the first version of this module) never narrows the always-valid interval however
  long the test runs (about ±0.4 at 50 users per arm for 0-1 scores of spread 0.3), so
  quality could never be shown safe and a retrain's A/B could only time out and roll back.
* **Verdicts are cached per request** (``cache/ab-verdicts.sqlite`` under the registry
  home, keyed by the judge model, the judge prompt version and the request id): an answer
  is judged once, the judge model is not even loaded when every sampled answer has a
  verdict, and ``llmops ab`` from cron shares the cache with the notebook. An analysis
  every few seconds thus judges only the users who entered the sample since the last one
  (and a sampled user whose newer request drew a lower hash than the judged one: about
  ``1 + ln k`` judgements over a user's ``k`` requests).
* **At most ``max_new`` new judgements per analysis** (``judge_max_new``), so one look at a
  large backlog (a first ``ab`` on a day of traffic) does not block for long. The sampled
  users with the lowest positions are judged first, and the analysis then uses every
  sampled user below the first position still waiting (``reach``): a smaller share of the
  same nested kind, unbiased for today's users. Verdicts cached above it wait too (they
  would over-weight the users who came early). The rest are judged at the next analyses,
  and the result says how many wait.

Only answered requests count (status below 400 and a logged answer: the error rate covers
failures) of users seen in one arm (``per_user`` drops the others). The judge runs once per
answer at temperature 0 (seed 0), so a verdict is a function of the answer. When texts are
not logged, or no judge model is configured, the metric is unavailable and says why.

How narrow the interval gets, at share 0.2 with 0-1 scores of spread 0.3 and the default
tuning (N* = 5,000): the always-valid half-width is about ±0.22 at 1,000 users over both
arms, ±0.06 at 5,000, ±0.04 at 10,000 and ±0.02 at 50,000. Quality can show harm at any
size; it is shown safe within its 0.05 margin (which promotion needs once both arms have
scores) from about 10,000 users, or about 2,000 with share 1 (every user judged once).
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import EndpointError, ValidationError
from .abstats import ARMS

if TYPE_CHECKING:
    from ..context.workspaces import Workspace

__all__ = ["JudgedQuality", "Sample", "VerdictCache", "judge_quality", "position", "request_key", "sample_answers",
           "DEFAULT_PROMPT"]  # fmt: skip

DEFAULT_PROMPT = (
    "judge-answer",
    "You grade answers to user requests. There is no reference answer: judge the answer itself.\n"
    "Request: {{ question }}\n"
    "Answer: {{ answer }}\n"
    "Reply with one integer from 1 (wrong, off-topic or useless) to 5 (correct, complete and helpful).\n"
    "Score:",
    "Grades a live answer without a reference, 1-5 (the quality metric of A/B tests).",
)
NO_TEXT = "texts are not logged: redeploy with log_text=True (--log-text)"
NO_JUDGE = "no judge model: set LLMOps.judge_model (or LLMOPS_JUDGE_MODEL), or pass judge_model="

Scorer = Callable[[Sequence[tuple[str, str]]], Sequence[float | None]]


def _per_arm(value: int = 0) -> dict[str, int]:
    return dict.fromkeys(ARMS, value)


@dataclass(frozen=True)
class JudgedQuality:
    """What fed the ``quality`` metric in one analysis; ``unavailable`` says why nothing could."""

    share: float
    seed: int
    max_new: int
    judged: Mapping[str, int] = field(default_factory=_per_arm)  # users whose verdict feeds this analysis
    scored: Mapping[str, int] = field(default_factory=_per_arm)  # of which the judge gave a score
    users: Mapping[str, int] = field(default_factory=_per_arm)  # users with an answer: what the share is of
    pending: int = 0  # sampled users (both arms) left for later analyses by the max_new cap
    reach: float | None = None  # positions below this were used: the share itself unless users wait
    new: int = 0  # judged by this analysis, the rest came from the cache (not stored: a rerun judges none)
    judge_model: str | None = None
    judge: str | None = None  # the judge prompt: its pinned version, or the default's name and digest
    unavailable: str | None = None

    def describe(self) -> str:
        if self.unavailable:
            return f"unavailable: {self.unavailable}"
        j, u = self.judged, self.users
        unparsed = sum(j.values()) - sum(self.scored.values())
        waiting = (
            f"; {self.pending:,} sampled users wait for the next analyses (at most {self.max_new:,} judged per "
            f"analysis; this one used a share of {self.reach:.1%})"
            if self.pending
            else ""
        )
        return (
            f"judged {j['primary']:,} of {u['primary']:,} primary and {j['canary']:,} of {u['canary']:,} canary users "
            f"(share {self.share:.0%}, seed {self.seed}) by {self.judge_model}; {self.new:,} new, the rest cached"
            + waiting
            + (f"; {unparsed} replies without a score" if unparsed else "")
        )

    def to_dict(self) -> dict[str, Any]:
        return {"share": self.share, "seed": self.seed, "max_new": self.max_new, "judged": dict(self.judged),
                "scored": dict(self.scored), "users": dict(self.users), "pending": self.pending,
                "reach": self.reach, "judge_model": self.judge_model, "judge": self.judge,
                "unavailable": self.unavailable}  # fmt: skip


def _rank(seed: int, *parts: Any) -> int:
    """A seeded 64-bit hash: the same seed and parts give the same rank on every machine."""
    text = "\x1f".join([str(seed), *map(str, parts)])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def position(seed: int, user: str) -> float:
    """A user's place in the seeded order, uniform in [0, 1): sampled at share ``s`` when below ``s``."""
    return _rank(seed, "user", user) / 2.0**64


def request_key(row: Mapping[str, Any]) -> str:
    """The request id the server gave, else a digest of the row (a log written without ids)."""
    if row.get("request_id"):
        return str(row["request_id"])
    text = "\x1f".join(str(row.get(k)) for k in ("ts", "user", "input_text", "output_text"))
    return "row-" + hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


def _answered(row: Mapping[str, Any]) -> bool:
    return (row.get("status") or 0) < 400 and bool(row.get("input_text")) and row.get("output_text") is not None


@dataclass(frozen=True)
class Sample:
    """Per arm: one answer of each sampled user with the user's position, lowest first, and the users eligible."""

    answers: Mapping[str, list[Mapping[str, Any]]]
    positions: Mapping[str, list[float]]
    users: Mapping[str, int]

    def user_ids(self) -> set[str]:
        return {str(r["user"]) for arm in ARMS for r in self.answers[arm]}


def sample_answers(rows: Iterable[Mapping[str, Any]], share: float, seed: int) -> Sample:
    """The users whose position falls below ``share`` and one answered request of each (see the docstring).

    Eligible users are those with an answered request, seen in one arm only. Only the
    sampled users' requests are hashed, so a log costs one hash per user and one per
    sampled request. The rows returned are the objects given.
    """
    arms: dict[str, set[str]] = {}
    answers: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        user, arm = r.get("user"), r.get("arm")
        if not user or arm not in ARMS:
            continue
        arms.setdefault(user := str(user), set()).add(arm)
        if _answered(r):
            answers.setdefault(user, []).append(r)
    users, picked = _per_arm(), {arm: [] for arm in ARMS}
    for user, mine in answers.items():
        if len(arms[user]) == 1:  # users seen in both arms are left out of the analysis too
            users[arm := mine[0]["arm"]] += 1
            if (where := position(seed, user)) < share:
                picked[arm].append((where, user))
    chosen = {arm: sorted(picked[arm]) for arm in ARMS}
    one = lambda user: min(answers[user], key=lambda r: _rank(seed, "request", request_key(r)))
    return Sample(
        {arm: [one(user) for _, user in chosen[arm]] for arm in ARMS},
        {arm: [where for where, _ in chosen[arm]] for arm in ARMS},
        users,
    )


class VerdictCache:
    """Judge verdicts by (judge identity, deployment/request): an answer is judged once per judge."""

    def __init__(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), timeout=30)
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS verdicts (judge TEXT NOT NULL, request TEXT NOT NULL, score REAL, "
            "ts REAL NOT NULL, PRIMARY KEY (judge, request))"
        )
        self._conn.commit()

    def get(self, judge: str, requests: Sequence[str]) -> dict[str, float | None]:
        """The stored verdicts among ``requests`` (a verdict may be None: the judge gave no score)."""
        found: dict[str, float | None] = {}
        for i in range(0, len(requests), 500):  # SQLite's bound-parameter limit
            part = list(requests[i : i + 500])
            sql = f"SELECT request, score FROM verdicts WHERE judge = ? AND request IN ({','.join('?' * len(part))})"
            found.update(self._conn.execute(sql, [judge, *part]).fetchall())
        return found

    def put(self, judge: str, verdicts: Mapping[str, float | None]) -> None:
        now = time.time()
        with self._conn:
            self._conn.executemany(
                "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?)", [(judge, k, v, now) for k, v in verdicts.items()]
            )

    def close(self) -> None:
        self._conn.close()


def cache_path(ws: Workspace) -> Path:
    return ws.registry.home / "cache" / "ab-verdicts.sqlite"


def _prompt_identity(ws: Workspace, judge_prompt: str | None) -> str:
    """The pinned version of the judge prompt (checked to be reference-free), or the default's name and digest."""
    from ..prompts import get_prompt

    if judge_prompt is None:
        return f"{DEFAULT_PROMPT[0]}@{hashlib.blake2b(DEFAULT_PROMPT[1].encode(), digest_size=6).hexdigest()}"
    pv = get_prompt(judge_prompt, workspace=ws)
    needs = [v for v in pv.parsed.required(dict(pv.params)) if v in ("reference", "context")]
    if needs:
        raise ValidationError(
            f"judge prompt {pv.ref} reads {', '.join(needs)}, which live requests do not have; "
            "give a prompt that reads the question and the answer only"
        )
    return pv.ref


def _judge_texts(ws: Workspace, judge_model: str, judge_prompt: str | None, pairs: Sequence[tuple[str, str]]):
    """Scores (0-1, None when the reply had none) of ``(request, answer)`` pairs, through the eval's judge runner."""
    from ..evaluation.cache import GenerationCache
    from ..evaluation.judge import JudgeRunner
    from ..evaluation.metrics import Example, MetricContext
    from ..evaluation.runner import cache_path as generations
    from ..ops.evaluate import EvalSpec
    from ..ops.prompts import save_prompt

    if judge_prompt is None:  # created on first use, as the eval's default judge prompts are
        name, text, description = DEFAULT_PROMPT
        params = {"min_score": 1, "max_score": 5}
        judge_prompt = save_prompt(name, text, params=params, description=description, workspace=ws).ref
    opts = EvalSpec(data="live traffic", judge_model=judge_model, judge_k=1, judge_temperature=0.0, seed=0)
    runner = JudgeRunner(ws, opts, GenerationCache(generations(ws)))
    try:
        examples = [Example(i, {}, str(q), str(a), None, 0, 0, 0.0, "stop", False) for i, (q, a) in enumerate(pairs)]
        ctx = MetricContext(target=None, options=opts, arg=judge_prompt, judges=runner)
        return runner.judge("judge", judge_prompt, examples, ctx)["judge"]
    finally:
        runner.cache.close()
        if hasattr(runner._backend, "close"):
            runner._backend.close()


def judge_quality(
    ws: Workspace,
    deployment: str,
    rows: Sequence[Mapping[str, Any]],
    *,
    share: float,
    max_new: int,
    seed: int,
    judge_model: str | None,
    judge_prompt: str | None = None,
    log_text: bool,
    scorer: Scorer | None = None,
) -> tuple[list[dict[str, Any]], JudgedQuality]:
    """``rows`` with a ``quality`` score on each request whose verdict feeds this analysis, and what was judged.

    ``share`` and ``max_new`` come from the spec (``judge_share``, ``judge_max_new``): see
    the module docstring. ``scorer`` replaces the judge model (tests, simulations): it maps
    ``(request, answer)`` pairs to scores in [0, 1] or None.
    """
    if not log_text:
        return list(rows), JudgedQuality(share, seed, max_new, unavailable=NO_TEXT)
    if not judge_model and scorer is None:
        return list(rows), JudgedQuality(share, seed, max_new, unavailable=NO_JUDGE)
    prompt = _prompt_identity(ws, judge_prompt)
    identity = f"{judge_model}|{prompt}|k=1|t=0"
    sample = sample_answers(rows, share, seed)
    keyed = sorted(
        ((where, arm, f"{deployment}/{request_key(r)}", r) for arm in ARMS
         for where, r in zip(sample.positions[arm], sample.answers[arm], strict=True)),
        key=lambda t: t[0],
    )  # fmt: skip
    cache = VerdictCache(cache_path(ws))
    try:
        verdicts = cache.get(identity, [k for _, _, k, _ in keyed])
        todo = [t for t in keyed if t[2] not in verdicts]
        now, waiting = todo[:max_new], todo[max_new:]  # lowest positions first: what is judged stays nested
        if now:
            pairs = [(str(r["input_text"]), str(r["output_text"])) for *_, r in now]
            try:
                scores = (scorer or (lambda p: _judge_texts(ws, judge_model, judge_prompt, p)))(pairs)
            except EndpointError as exc:  # a judge endpoint down now may answer at the next look
                return list(rows), JudgedQuality(share, seed, max_new, unavailable=f"the judge failed: {exc}")
            fresh = {k: None if s is None else float(s) for (_, _, k, _), s in zip(now, scores, strict=True)}
            cache.put(identity, fresh)
            verdicts.update(fresh)
    finally:
        cache.close()
    reach = waiting[0][0] if waiting else share
    used = [t for t in keyed if t[0] < reach]  # every sampled user below reach has a verdict
    score_of = {id(r): verdicts[k] for _, _, k, r in used}
    out = [{**r, "quality": score_of[id(r)]} if id(r) in score_of else r for r in rows]  # the caller's rows stay
    judged = {arm: sum(t[1] == arm for t in used) for arm in ARMS}
    scored = {arm: sum(t[1] == arm and verdicts[t[2]] is not None for t in used) for arm in ARMS}
    return out, JudgedQuality(
        share, seed, max_new, judged, scored, dict(sample.users), len(waiting), reach, len(now), judge_model, prompt
    )
