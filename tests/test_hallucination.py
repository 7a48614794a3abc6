"""Hallucination checks (consistency across samples, answer confidence, claim support) as eval metrics.

Known truth comes from the made-up world (``models/world.py``) the tiny model was trained
on. Asked in the corpus' own prose form ("The capital of X is"), it states the facts of
the world's countries; asked the same about countries that do not exist (names built the
same way, none in the world), whatever it answers is fabricated. Each check must rank
fabricated answers as less consistent / supported / confident than known ones: AUROC is
the chance that a random fabricated answer scores worse than a random known one. The
claim-support mechanics are checked exactly with a rule-following judge endpoint.
"""

from __future__ import annotations

import random
import re

import pytest
from eval_support import OpenAIServer
from IPython.core.error import UsageError

from llmops_magics import evaluate, save_dataset
from llmops_magics.errors import ValidationError
from llmops_magics.evaluation.hallucination import (
    extract_claims,
    majority_verdict,
    ngram_consistency,
    parse_verdict,
)
from llmops_magics.models.world import COLORS, _word, make_world

FORMS = {
    "capital": "The capital of {} is",
    "animal": "The national animal of {} is the",
    "color": "The flag of {} is",
}
PER_SIDE = 18
CHECKS = {"selfcheck_ngram": 1, "selfcheck_embed": 1, "logprob": 1, "entropy": -1}  # sign: higher = consistent
RUN = dict(max_new_tokens=6, stop=("\n",), seed=0)
slow = pytest.mark.slow  # the labelled eval: 36 prompts, 5 samples each, about a minute on two cores


def made_up_countries(n: int, seed: int = 7) -> list[str]:
    world = make_world(0)
    taken = {c.name for c in world} | {c.capital for c in world}
    rng, out = random.Random(seed), []
    while len(out) < n:
        name = _word(rng, 2).capitalize() + rng.choice(["ia", "land", "or", "ea"])
        if name not in taken:
            taken.add(name)
            out.append(name)
    return out


def labelled_rows() -> list[dict]:
    """Known countries (label 0) and made-up ones (label 1), each topic equally often on both sides."""
    topics = list(FORMS)
    rows = []
    for i, c in enumerate(make_world(0)[:PER_SIDE]):
        topic = topics[i % 3]
        fact = {"capital": c.capital, "animal": c.animal, "color": c.color}[topic]
        rows.append({"prompt": FORMS[topic].format(c.name), "fact": fact, "fabricated": 0})
    for i, name in enumerate(made_up_countries(PER_SIDE)):
        rows.append({"prompt": FORMS[topics[i % 3]].format(name), "fact": "", "fabricated": 1})
    return rows


def auroc(scores, labels) -> float:
    """P(a fabricated answer scores lower than a known one), ties counting half (Mann-Whitney)."""
    known = [s for s, y in zip(scores, labels, strict=True) if y == 0]
    made_up = [s for s, y in zip(scores, labels, strict=True) if y == 1]
    wins = sum((k > f) + 0.5 * (k == f) for k in known for f in made_up)
    return wins / (len(known) * len(made_up))


@pytest.fixture(scope="module")
def world_eval(tiny_model_dir, tmp_path_factory):
    """One eval of the tiny model on the labelled prompts with every local check, compared with itself."""
    from dataclasses import replace

    from llmops_magics.context import workspaces as context
    from llmops_magics.recording import MemoryRecorder

    home = tmp_path_factory.mktemp("hallucination") / ".llmops"
    ws = context.Workspace(replace(context.default_settings(), home=str(home), wandb_mode="disabled"), MemoryRecorder())
    try:
        save_dataset("labelled", labelled_rows(), workspace=ws)
        model = str(tiny_model_dir)
        result = evaluate(model, compare=[model], data="labelled", metrics=",".join(CHECKS), workspace=ws, **RUN).wait()
        yield ws, result
    finally:
        ws.close()


@pytest.fixture(scope="module")
def labelled(world_eval):
    return world_eval[1]


@slow
def test_the_model_states_the_known_facts_so_the_labels_hold(labelled):
    known = labelled.df.query("target == 'A' and fabricated == 0")
    right = [fact in out for fact, out in zip(known["fact"], known["output"], strict=True)]
    assert sum(right) / len(right) >= 0.8


def check_auroc(result, check: str) -> float:
    """The check's AUROC on target A's answers (an answer it gives no value is left out)."""
    df = getattr(result, "df", result).query("target == 'A'").dropna(subset=[check])
    return auroc([CHECKS[check] * v for v in df[check]], df["fabricated"].tolist())


@slow
@pytest.mark.parametrize("check", list(CHECKS))
def test_each_check_ranks_fabricated_answers_below_known_ones(labelled, check):
    value = check_auroc(labelled, check)
    print(f"AUROC {check}: {value:.3f}")
    assert value > 0.6


@slow
def test_the_best_local_check_separates_fabricated_from_known_answers_with_auroc_at_least_0_8(labelled):
    assert max(check_auroc(labelled, c) for c in CHECKS) >= 0.8


def test_consistency_is_one_for_identical_samples_and_falls_with_each_differing_one():
    assert ngram_consistency("Vourkril.", ["Vourkril.", " vourkril"]) == 1.0
    assert ngram_consistency("Vourkril.", ["Vourkril.", "Guskus.", "Daszes", "Vourkril"]) == 0.5
    assert ngram_consistency("capital of Kraibrinea", ["capital of Mibrusia"], n=2) == 0.5
    assert ngram_consistency("Vourkril", ["Guskus"], n=3) == 0.0  # a 1-word answer compares 1-grams
    assert ngram_consistency("...", ["Vourkril"]) is None


@slow
def test_the_new_metrics_are_compared_with_confidence_intervals_like_the_others(labelled):
    compared = {c.metric: c for c in labelled.comparisons}
    assert set(CHECKS) <= set(compared)
    for check in CHECKS:  # the same model twice: the same answers and samples, a zero difference
        assert compared[check].delta == pytest.approx(0.0)
        assert compared[check].ci_low is not None and compared[check].ci_high is not None


@slow
def test_samples_are_drawn_once_for_both_consistency_checks(labelled):
    summary = labelled.summary["A"]
    assert summary["consistency_samples"] == 2 * PER_SIDE * 5  # 36 rows, the default 5 samples
    # the samples are the target's calls too: 5 more of each prompt, counted in its totals (local: its tokenizer)
    answered = summary["prompt_tokens_total"] - summary["consistency_prompt_tokens"]
    assert answered > 0 and summary["consistency_prompt_tokens"] == 5 * answered
    assert summary["completion_tokens_total"] > summary["consistency_completion_tokens"] > 0


@slow
def test_samples_and_their_temperature_are_stored_in_the_spec(labelled):
    args = labelled.artifact.spec["args"]
    assert (args["samples"], args["sample_temperature"]) == (5, 1.0)


def given_answers() -> list[dict]:
    """The known countries' prompts answered with their true fact (0) or with another country's (1)."""
    rows = [r for r in labelled_rows() if not r["fabricated"]]
    out = []
    for i, r in enumerate(rows):
        other = rows[(i + 3) % len(rows)]  # the same topic, another country: a plausible but wrong fact
        wrong = other["fact"] if other["fact"] != r["fact"] else rows[(i + 6) % len(rows)]["fact"]
        out.append({**r, "output": f" {r['fact']}.", "fabricated": 0})
        out.append({**r, "output": f" {wrong}.", "fabricated": 1})
    return out


@pytest.fixture(scope="module")
def given(world_eval, tiny_model_dir):
    """The local checks on answers written for the model (true or swapped facts), scored as an eval would.

    The samples are the eval's own (the same prompts and seeds, read from its cache).
    """
    import pandas as pd

    from llmops_magics.evaluation.cache import GenerationCache
    from llmops_magics.evaluation.metrics import Example, MetricContext, parse_metric_specs, run_metric
    from llmops_magics.evaluation.runner import cache_path
    from llmops_magics.evaluation.targets import resolve_targets
    from llmops_magics.ops.evaluate import EvalSpec

    ws, _ = world_eval
    rows = given_answers()
    target = resolve_targets([str(tiny_model_dir)], ws, ["prompt"])[0]
    target.cache = GenerationCache(cache_path(ws))
    examples = [Example(i, r, r["prompt"], r["output"], None, 0, 0, 0.0, "stop", False) for i, r in enumerate(rows)]
    ctx = MetricContext(target=target, options=EvalSpec(data="labelled", **RUN))
    values = {}
    try:
        for call in parse_metric_specs(list(CHECKS)):
            values.update(run_metric(call, examples, ctx))
    finally:
        target.cache.close()
    assert ctx.notes["consistency_samples"] == len(rows) * 5
    return pd.DataFrame({**{k: [r[k] for r in rows] for k in ("output", "fabricated")}, **values, "target": "A"})


@slow
@pytest.mark.parametrize("check", [c for c in CHECKS if c != "entropy"])
def test_each_check_ranks_swapped_facts_below_true_ones(given, check):
    """Entropy is left out: teacher-forced on a text the model did not write, it still describes the
    model's own next-token uncertainty (the first answer token's distribution is the same for a true
    and a swapped fact), so it only means something on the model's own answers (AUROC here ~0.46)."""
    value = check_auroc(given, check)
    print(f"AUROC {check} (given answers): {value:.3f}")
    assert value > 0.6


@slow
def test_the_best_local_check_separates_swapped_from_true_facts_with_auroc_at_least_0_8(given):
    assert max(check_auroc(given, c) for c in CHECKS) >= 0.8


# ---------------------------------------------------------------------- support against a context


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("supported", "supported"),
        (" Verdict: contradicted.", "contradicted"),
        ("not_found", "not_found"),
        ("The context does not say: not found", "not_found"),
        ("not supported", "not_found"),
        ("It contradicts the context", "contradicted"),
        ("maybe", None),
        ("", None),
    ],
)
def test_a_judge_reply_is_read_as_its_first_verdict_word(reply, verdict):
    assert parse_verdict(reply) == verdict


def test_the_majority_verdict_wins_and_a_tie_goes_to_the_less_supportive_one():
    assert majority_verdict(["supported", None, "supported", "not_found"]) == "supported"
    assert majority_verdict(["supported", "contradicted"]) == "contradicted"
    assert majority_verdict([None, None]) is None


def test_claims_are_the_answers_sentences_with_words():
    assert extract_claims(" Its capital is Vourkril. Its flag is red!  ... ") == [
        "Its capital is Vourkril.",
        "Its flag is red!",
    ]


CONTEXT = "The capital of Vousdilea is Vourkril. The flag of Vousdilea is red."
ANSWERS = {
    "What about Vousdilea?": "The capital of Vousdilea is Vourkril. The flag of Vousdilea is green.",
    "And its capital?": "The capital is Vourkril. Its national animal is the owl.",
    "Anything else?": "Vourkril.",
    "Nothing?": "",
}


class RuleJudge(OpenAIServer):
    """Answers questions from ``ANSWERS``; as a judge, follows a rule: a claim whose words all occur in the
    context is supported, one naming a colour the context lacks is contradicted, anything else is not found.
    The claim about the owl gets an unreadable reply at seed 1 (a parse failure)."""

    def complete(self, prompt, body):
        if "Verdict:" not in prompt:
            return ANSWERS[prompt], 5, 5, "stop"
        context = re.search(r"Context: (.*)\n", prompt).group(1).casefold()
        claim = re.search(r"Claim: (.*)\n", prompt).group(1).casefold()
        words, known = set(re.findall(r"\w+", claim)), set(re.findall(r"\w+", context))
        if "owl" in words and body["seed"] == 1:
            return "hmm", 5, 1, "stop"
        if words <= known:
            return "supported", 5, 1, "stop"
        return ("contradicted" if words & set(COLORS) - known else "not_found"), 5, 1, "stop"


def test_support_is_the_supported_share_of_claims_with_every_verdict_kept(workspace, tiny_model_dir):
    rows = [{"question": q, "context": CONTEXT} for q in ANSWERS]
    rows[2]["context"] = ""  # no context: not applicable
    save_dataset("with-context", rows)
    with RuleJudge(tiny_model_dir) as server:
        result = evaluate(server.url, data="with-context", metrics="support", judge_model=server.url).wait()
    df = result.df
    assert df["support"].tolist()[:2] == [0.5, 0.5]
    assert df["support_contradicted"].tolist()[:2] == [0.5, 0.0]
    assert df["support"].isna().tolist()[2:] == [True, True]  # no context; no claims
    assert df["support_claims"].tolist()[1::2] == [2.0, 0.0]
    first, second = df["support_verdicts"][0], df["support_verdicts"][1]
    assert [c["verdict"] for c in first] == ["supported", "contradicted"]
    assert second[1] == {"claim": "Its national animal is the owl.", "verdict": "not_found", "votes": {"not_found": 2}}
    assert df["support_verdicts"][2] is None
    assert result.summary["A"]["support_parse_failures"] == 1
    assert result.summary["A"]["support_calls"] == 4 * 3  # 4 claims, judge_k = 3
    assert result.summary["A"]["support"] == 0.5


# ---------------------------------------------------------------------- bad input


def fails_without_writing(ws, match, **options):
    ws.recorder.flush()
    before = ws.registry.change_counter()
    with pytest.raises(ValidationError, match=match):
        evaluate(**options).wait()
    ws.recorder.flush()
    assert ws.registry.change_counter() == before


@pytest.fixture
def small_data(workspace, tiny_model_dir):
    save_dataset("no-context", [{"prompt": "The capital of Vousdilea is"}])
    return str(tiny_model_dir)


def test_an_unknown_check_is_rejected(workspace, small_data):
    fails_without_writing(
        workspace, "unknown metric 'selfcheck'", target=small_data, data="no-context", metrics="selfcheck"
    )


def test_support_without_a_context_column_is_rejected(workspace, small_data):
    fails_without_writing(
        workspace, "support need a 'context' column", target=small_data, data="no-context", metrics="support",
        judge_model=small_data,
    )  # fmt: skip
    fails_without_writing(  # a name that would be registered on first use is not registered for a bad request
        workspace, "support need a 'context' column", target="tiny", data="no-context", metrics="support",
        judge_model=small_data,
    )  # fmt: skip


def test_fewer_than_two_samples_are_rejected(workspace, small_data):
    fails_without_writing(
        workspace, "samples must be at least 2", target=small_data, data="no-context", metrics="selfcheck_embed",
        samples=1,
    )  # fmt: skip


def test_a_magic_with_one_sample_fails_with_one_plain_line(ip, small_data):
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("eval", f"{small_data} --data no-context --metrics selfcheck_ngram --samples 1")
    assert type(info.value) is UsageError
    assert "\n" not in str(info.value) and "samples must be at least 2" in str(info.value)
