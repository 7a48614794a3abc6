"""``retrain``'s rules without a model: combining rows, reading logged inputs back, the gate, bad input.

The data rules run on real dataset versions in a real registry; the gate verdict on real
paired comparisons; bad input against deployment records written as ``serving/control``
writes them (no server: every check here comes before the deployment is asked anything).
The whole pipeline against a live server is ``test_retrain.py``.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from IPython.core.error import UsageError

from llmops_magics import InvalidReferenceError, NotFoundError, ValidationError, retrain, save_dataset
from llmops_magics.evaluation.stats import compare_paired
from llmops_magics.ops.catalog import Call
from llmops_magics.retraining.combine import combine, template_reader
from llmops_magics.retraining.gate import judge_gate
from llmops_magics.retraining.pipeline import Pipeline, Step, get_pipeline, save_pipeline

TEMPLATE = "Question: {{ question }}\nAnswer:"


def _rows(questions: str, answers: str) -> list[dict]:
    return [{"question": q, "answer": a} for q, a in zip(questions.split(), answers.split(), strict=True)]


def _combine(ws, old, new, rule="append", holdout=0.0):
    return combine(
        Call(workspace=ws), name="svc-retrain", rule=rule, old=old, old_train_split="train",
        old_validation_split="validation", new=new, holdout=holdout, seed=0, template=TEMPLATE, params={},
        target_column="answer",
    )  # fmt: skip


def test_a_text_template_with_one_variable_reads_a_rendered_prompt_back():
    read = template_reader(TEMPLATE, {})
    assert read("Question: Which animal stands for Kora?\nAnswer:") == {"question": "Which animal stands for Kora?"}
    assert read("Q: something else") is None
    assert template_reader("{{ a }} and {{ b }}", {}) is None
    assert template_reader("{{ a }} and {{ b }}", {"b": "fixed"})("x and fixed") == {"a": "x"}


def test_append_keeps_the_old_rows_and_a_new_answer_replaces_the_old_one_to_the_same_question(workspace):
    old = save_dataset("old", {"train": _rows("q1 q2 q3", "a1 a2 a3"), "validation": _rows("q4 q5", "a4 a5")})
    new = save_dataset("new", _rows("q2 q5 q6", "NEW2 NEW5 NEW6"))
    combined = _combine(workspace, old, new)
    train = {r["question"]: r["answer"] for r in combined.version.records("train")}
    assert train == {"q1": "a1", "q3": "a3", "q2": "NEW2", "q5": "NEW5", "q6": "NEW6"}
    # a held-out row asked again in the new data would be trained on: it leaves the validation split
    assert [r["question"] for r in combined.version.records("validation")] == ["q4"]
    assert combined.counts == {"old_train": 2, "new_train": 3, "replaced": 1, "validation": 1, "new_validation": 0,
                               "unreadable": 0}  # fmt: skip
    assert combined.describe().startswith("append: 2 old + 3 new training rows (1 old rows replaced")


def test_replace_trains_on_the_new_rows_only_and_holds_out_a_seeded_share_of_them(workspace):
    old = save_dataset("old", {"train": _rows("q1 q2", "a1 a2"), "validation": _rows("q3", "a3")})
    new = save_dataset("new", _rows("n1 n2 n3 n4 n5 n6 n7 n8 n9 n10", "b1 b2 b3 b4 b5 b6 b7 b8 b9 b10"))
    first = _combine(workspace, old, new, rule="replace", holdout=0.2)
    again = _combine(workspace, old, new, rule="replace", holdout=0.2)
    train = [r["question"] for r in first.version.records("train")]
    held = [r["question"] for r in first.version.records("validation")]
    assert len(train) == 8 and all(q.startswith("n") for q in train)
    assert held[0] == "q3" and len(held) == 3 and not set(held) & set(train)
    assert again.ref == first.ref  # the same rows, rule and seed: the same version


def test_the_combined_dataset_is_linked_to_both_parents_with_the_rule_in_the_relation(workspace):
    old = save_dataset("old", _rows("q1", "a1"))
    new = save_dataset("new", _rows("q2", "a2"))
    combined = _combine(workspace, old, new)
    edges = {(e.source, e.relation) for e in workspace.registry.upstream(combined.ref, depth=1)}
    assert edges == {(old.ref, "append-old"), (new.ref, "append-new")}
    stored = workspace.registry.resolve(combined.ref)
    assert stored.metadata["combine"]["rule"] == "append" and stored.spec["op"] == "dataset"


def test_logged_inputs_get_the_adapters_columns_back_and_rows_that_do_not_fit_are_counted(workspace):
    old = save_dataset("old", _rows("q1", "a1"))
    logged = [
        {"prompt": "Question: Which animal stands for Kora?\nAnswer:", "answer": "owl", "request_id": "cmpl-1"},
        {"prompt": "something typed by hand", "answer": "x", "request_id": "cmpl-2"},
    ]
    new = save_dataset("traffic", logged)
    combined = _combine(workspace, old, new)
    rows = combined.version.records("train")
    assert rows[-1] == {"question": "Which animal stands for Kora?", "answer": "owl", "request_id": "cmpl-1"}
    assert combined.counts["unreadable"] == 1 and "prompt" not in combined.version.columns


def test_new_rows_without_the_adapters_columns_or_a_logged_input_are_refused(workspace):
    old = save_dataset("old", _rows("q1", "a1"))
    new = save_dataset("odd", [{"text": "hello", "answer": "x"}])
    with pytest.raises(
        ValidationError,
        match=r"has neither the column\(s\) question .* nor a logged input \(prompt\); its columns are answer, text",
    ):
        _combine(workspace, old, new)


def _comparisons(metric: str, a: list[float], b: list[float]):
    comps = [compare_paired(metric, "A", "B", a, b, n_resamples=500)]
    return SimpleNamespace(comparisons=comps, regressions=[c for c in comps if c.regression])


def test_the_gate_passes_a_gain_whose_lower_bound_reaches_min_gain():
    result = _comparisons("rouge_l", [0.0] * 20, [1.0] * 15 + [0.0] * 5)
    verdict = judge_gate(result, "rouge_l", 0.3)
    assert verdict.passed and verdict.gain == pytest.approx(0.75) and verdict.lower >= 0.3
    assert verdict.reason.startswith("no gate metric regressed; rouge_l gain +0.75")


def test_the_gate_fails_a_regression_and_a_gain_it_cannot_show():
    worse = judge_gate(_comparisons("exact_match", [1.0] * 20, [0.0] * 20), "exact_match", 0.0)
    assert not worse.passed and worse.reason.startswith("regression: B worse on exact_match by -1.00")
    lucky = judge_gate(_comparisons("exact_match", [0.0] * 6, [1.0, 0, 0, 0, 0, 0]), "exact_match", 0.05)
    assert not lucky.passed and "below min_gain 0.05" in lucky.reason and "regression" not in lucky.reason


# ---------------------------------------------------------------------- bad input, one line each


def _deployment(ws, name: str, target: str, *, canary=None) -> None:
    """A deployment record with the fields ``retrain`` reads before it asks the server anything."""
    dep = ws.registry.save("deployment", name, data=name.encode()).artifact
    ws.registry.put_state("deployments", name, {"name": name, "ref": dep.ref, "target": target, "canary": canary})


def _monitor(ws, name: str, status: str) -> str:
    body = {"name": name, "deployment": None, "window": {}, "checks": [{"name": "error_rate", "status": status}],
            "thresholds": {}}  # fmt: skip
    return ws.registry.save("monitor", name, data=json.dumps(body).encode()).artifact.ref


def test_an_unknown_deployment_is_named(workspace):
    with pytest.raises(NotFoundError, match="no deployment is named 'nope'"):
        retrain("nope", data="new")


def test_a_deployment_that_serves_a_model_rather_than_an_adapter_is_refused(workspace):
    model = workspace.registry.save("model", "tiny", data=b"weights").artifact
    _deployment(workspace, "base-svc", model.ref)
    with pytest.raises(ValidationError, match=r"serves model://tiny/1 \(a model\); .* must serve an adapter"):
        retrain("base-svc", data="new")


def test_an_adapter_made_outside_finetune_has_no_spec_to_retrain_from(workspace):
    adapter = workspace.registry.save("adapter", "hand-made", data=b"lora").artifact
    _deployment(workspace, "svc", adapter.ref)
    with pytest.raises(ValidationError, match="adapter://hand-made/1 was not made by %finetune"):
        retrain("svc", data="new")


def test_a_deployment_with_a_canary_already_must_settle_it_first(workspace):
    _deployment(workspace, "svc", "adapter://x/1", canary={"target": "adapter://x/2", "weight": 10.0})
    with pytest.raises(ValidationError, match=r"already has a canary \(adapter://x/2 at 10%\); promote or roll"):
        retrain("svc", data="new")


def test_on_failure_takes_a_failing_monitor_and_nothing_else(workspace):
    save_dataset("qa", _rows("q1", "a1"))
    with pytest.raises(InvalidReferenceError, match="names a dataset, but a monitor is expected here"):
        retrain(on_failure="dataset://qa/1")
    with pytest.raises(NotFoundError, match="no monitor is named 'qa'"):
        retrain(on_failure="qa")
    passing = _monitor(workspace, "svc", "pass")
    with pytest.raises(ValidationError, match=r"monitor://svc/1 did not fail \(its status is pass\)"):
        retrain(on_failure=passing)
    failing = _monitor(workspace, "svc", "fail")
    with pytest.raises(ValidationError, match=r"monitor://svc/2 checked deployment 'svc', not 'other'"):
        retrain("other", on_failure=failing)


def test_options_of_the_steps_are_checked_against_their_own_specs_at_once():
    with pytest.raises(ValidationError, match="train cannot set data: the pipeline decides it"):
        retrain("svc", data="new", train={"data": "other"})
    with pytest.raises(ValidationError, match=r"train: unknown argument\(s\) max_stepz for finetune"):
        retrain("svc", data="new", train={"max_stepz": 4})
    with pytest.raises(ValidationError, match="metrics must be among"):
        retrain("svc", data="new", ab={"metrics": "happiness"})
    with pytest.raises(ValidationError, match="canary must be a percentage between 0 and 100"):
        retrain("svc", data="new", canary=100)


def test_a_magic_error_is_one_plain_usage_error_line(ip):
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("retrain", "--on-failure eval://qa/1")
    assert type(info.value) is UsageError and "\n" not in str(info.value)
    assert "names a eval, but a monitor is expected here" in str(info.value)


# ---------------------------------------------------------------------- the pipeline artifact


def test_a_pipeline_displays_its_steps_escaped_and_reads_back_with_its_edges(workspace):
    from llmops_magics.ops.retrain import RetrainSpec

    reg = workspace.registry
    dep = reg.save("deployment", "svc", data=b"v1").artifact
    data = reg.save("dataset", "svc-retrain", data=b"rows").artifact
    steps = [
        Step("combine", "done", data.ref, 0.1, "append: <b>2</b> rows"),
        Step("finetune", "failed", None, 1.0, "boom"),
    ]
    saved = save_pipeline(workspace, RetrainSpec(name="svc", data="x"), Call(workspace=workspace),
                          Pipeline("svc", dep.ref, "failed", "boom <script>", steps))  # fmt: skip
    back = get_pipeline("svc")
    assert back.ref == saved.ref == "pipeline://svc/1" and back.steps == steps and back.decision == "failed"
    data_, _meta = back._repr_mimebundle_()
    assert "&lt;script&gt;" in data_["text/html"] and "<b>2</b>" not in data_["text/html"]
    edges = {(e.source, e.relation) for e in reg.upstream(saved.ref, depth=1)}
    assert edges == {(dep.ref, "deployment"), (data.ref, "dataset")}
    assert reg.resolve(saved.ref).spec["op"] == "retrain"
