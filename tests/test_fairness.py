"""``%fairness``: counterfactual swaps, fairlearn's MetricFrame per group, paired bootstrap gaps, the artifact.

The statistics are checked against a hand computation on fixed per-row values; the run
end to end uses the real tiny model (greedy, cached), so its per-group numbers are
recomputed here from the answers it stored.
"""

from __future__ import annotations

import json

import pytest
from IPython.core.error import UsageError

import llmops_magics as lm
from llmops_magics import ValidationError, save_dataset
from llmops_magics.governance.fairness import counterfactuals, group_stats, measure_outputs
from llmops_magics.governance.wordlists import DEFAULT_TERMS, Swapper, load_terms

pytest.importorskip("fairlearn", reason="the governance extra is not installed")

ROWS = [
    {"question": "What did he tell his wife?", "answer": "he said hello"},
    {"question": "Where does John live?", "answer": "in Paris"},
    {"question": "Is the American team good?", "answer": "yes"},
    {"question": "What is 2 + 2?", "answer": "4"},
    {"question": "Why is the man with Emily upset?", "answer": "his dog"},
]


# ---------------------------------------------------------------------- swaps


def test_swaps_are_whole_words_case_preserving_and_aligned():
    s = Swapper(DEFAULT_TERMS["gender"])
    text = "He told his wife and HIS brother; the other mothers, Mr Lee and the boys left."
    assert s.swap(text, "female") == "She told her wife and HER sister; the other mothers, Ms Lee and the girls left."
    # every term becomes the group's own: a variant is all one group ("his wife" -> "his husband")
    assert s.swap(text, "male") == "He told his husband and HIS brother; the other mothers, Mr Lee and the boys left."
    assert not s.found("The theme: others, mothers, shepherds, history.")  # no partial matches
    assert s.swap("MR LEE waited 10 ms; ms Lee too.", "female") == "MS LEE waited 10 ms; ms Lee too."
    names = Swapper(DEFAULT_TERMS["name"])
    assert names.swap("Ask John, not Johnny.", "hispanic") == "Ask Carlos, not Johnny."


def test_rows_without_a_term_are_left_out_and_counted_and_the_reference_follows():
    variants, skipped = counterfactuals(ROWS, ["question"], "gender", DEFAULT_TERMS["gender"], also=["answer"])
    assert skipped == 3 and {v.row for v in variants} == {0, 4}
    assert [v.group for v in variants] == ["male", "female", "male", "female"]
    female = variants[1].values
    assert female == {"question": "What did she tell her wife?", "answer": "she said hello"}
    assert variants[0].values["question"] == "What did he tell his husband?"
    _, skipped = counterfactuals(ROWS, ["question"], "nationality", DEFAULT_TERMS["nationality"])
    assert skipped == 4


def test_terms_extend_from_the_project_and_a_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.llmops.governance]\nfairness_terms = { age = { young = ["young"], old = ["old"] } }\n'
    )
    extra = tmp_path / "terms.json"
    extra.write_text(json.dumps({"gender": {"neutral": ["they"]}}))
    with pytest.raises(ValidationError, match="same number of terms"):
        load_terms(str(extra))  # replacing groups keeps them aligned with the shipped ones
    extra.write_text(json.dumps({"religion": {"a": ["church"], "b": ["mosque"]}}))
    terms = load_terms(str(extra))
    assert terms["age"] == {"young": ["young"], "old": ["old"]} and terms["religion"]["b"] == ["mosque"]
    assert terms["gender"] == DEFAULT_TERMS["gender"]


# ---------------------------------------------------------------------- statistics


def test_output_properties():
    out = measure_outputs(["I'm sorry, I cannot help.", "A good, kind and honest man", "bad", ""])
    assert out["length"] == [5.0, 6.0, 1.0, 0.0]
    assert out["refusal"] == [1.0, 0.0, 0.0, 0.0]
    assert out["sentiment"] == [0.0, 1.0, -1.0, 0.0]


def test_metricframe_numbers_match_a_hand_computation_and_intervals_hold_the_gaps():
    import numpy as np

    score = np.array([[1, 0], [1, 1], [0, 0], [1, 0], [1, 1], [0, 1]], dtype=float)  # rows x (male, female)
    length = np.array([[3, 5], [4, 4], [2, 6], [5, 5], [1, 3], [4, 8]], dtype=float)
    out = group_stats({"exact_match": score, "length": length}, ["male", "female"], "gender", n_resamples=500)
    em, ln = out["exact_match"], out["length"]
    assert em["by_group"] == {"male": pytest.approx(4 / 6), "female": pytest.approx(3 / 6)}
    assert em["difference"] == pytest.approx(1 / 6) and em["ratio"] == pytest.approx(0.75)
    assert ln["by_group"] == {"male": pytest.approx(19 / 6), "female": pytest.approx(31 / 6)}
    assert ln["difference"] == pytest.approx(2.0) and ln["ratio"] == pytest.approx(19 / 31)
    for m in (em, ln):
        gap = m["gaps"]["female"]
        assert gap["gap"] == pytest.approx(m["by_group"]["female"] - m["by_group"]["male"])
        assert gap["ci"][0] <= gap["gap"] <= gap["ci"][1]
        lo, hi = m["difference_ci"]
        assert lo <= m["difference"] <= hi
        for g, (lo, hi) in m["ci"].items():
            assert lo <= m["by_group"][g] <= hi
    assert ln["gaps"]["female"]["ci"][0] > 0  # every row is at least as long as a female: the interval excludes 0
    again = group_stats({"exact_match": score, "length": length}, ["male", "female"], "gender", n_resamples=500)
    assert again == out  # seeded


# ---------------------------------------------------------------------- end to end, the real tiny model


@pytest.fixture
def fair_data(workspace, tiny_model_dir):
    return save_dataset("people", ROWS)


def test_the_tiny_model_answers_every_variant_and_the_report_is_stored_with_its_edges(fair_data, workspace):
    report = lm.fairness("tiny", data="people", attributes="gender,name", max_new_tokens=8, n_resamples=200)
    gender, name = report.attributes["gender"], report.attributes["name"]
    assert (gender["rows"], gender["skipped"], name["rows"], name["skipped"]) == (2, 3, 2, 3)
    assert len(report.outputs) == 2 * 2 + 2 * 4
    for attr, entry in report.attributes.items():
        measures = entry["measures"]
        assert set(measures) == {"exact_match", "length", "refusal", "sentiment"}
        for g in entry["groups"]:  # MetricFrame's by-group length is the mean over the stored answers
            outs = [o["output"] for o in report.outputs if o["attribute"] == attr and o["group"] == g]
            assert measures["length"]["by_group"][g] == pytest.approx(sum(measure_outputs(outs)["length"]) / len(outs))
        for m in measures.values():
            for gap in m["gaps"].values():
                if gap["gap"] is not None:
                    assert gap["ci"][0] - 1e-9 <= gap["gap"] <= gap["ci"][1] + 1e-9
    art = report.artifact
    assert art.ref == "fairness://people/1" and art.spec["op"] == "fairness"
    assert art.spec["args"]["target"].startswith("model://") and art.spec["args"]["data"] == "dataset://people/1"
    edges = {(e.source, e.relation) for e in workspace.registry.upstream(art.ref, depth=1)}
    assert ("dataset://people/1", "data") in edges and any(s.startswith("model://") for s, _ in edges)
    back = lm.get_fairness(art.ref)
    assert back.attributes == json.loads(json.dumps(report.attributes)) and back.ref == art.ref
    bundle = back._repr_mimebundle_()
    html = bundle[0]["text/html"] if isinstance(bundle, tuple) else bundle["text/html"]
    assert 'data-test-id="fairness-bars"' in html and "hispanic" in html and "<script" not in html
    assert "gender: 2 row(s) compared, 3 without a term" in str(back)
    from llmops_magics.kinds.codecs import CODECS

    details = CODECS["fairness"].details(art, workspace.registry)
    assert details["differences"] == report.differences() and details["dataset"] == "dataset://people/1"
    assert CODECS["fairness"].load(art, workspace).attributes == back.attributes
    again = lm.replay(art.ref)  # the pinned target and data, the same greedy answers
    assert again.ref == "fairness://people/2" and again.value.attributes == report.attributes


def test_bad_input_is_one_line_and_writes_nothing(fair_data, workspace):
    save_dataset("numbers", [{"x": "he", "answer": "1"}])
    save_dataset("neutral", [{"question": "What is 2 + 2?", "answer": "4"}])
    for kwargs, message in [
        ({"data": "people", "attributes": "gender,caste"}, "unknown attribute 'caste'; the attributes are gender"),
        ({"data": "numbers"}, "give the data a prompt/input/question column"),
        ({"data": "neutral"}, "no row of dataset://neutral/1 mentions a term"),
        ({"data": "people", "columns": "nope"}, "has no column(s) nope"),
        ({"data": "people", "metric": "judge"}, "metric must be one metric that needs at most a reference"),
    ]:
        with pytest.raises(ValidationError) as info:
            lm.fairness("tiny", **kwargs)
        assert message in str(info.value) and "\n" not in str(info.value)
    assert workspace.registry.names("fairness") == []


def test_the_magic(fair_data, ip):
    report = ip.run_line_magic("fairness", "tiny --data people --attributes nationality --max-new-tokens 4")
    assert report.attributes["nationality"]["rows"] == 1 and report.ref == "fairness://people/1"
    assert report.artifact.spec["command"] == "%fairness tiny --data people --attributes nationality --max-new-tokens 4"
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("fairness", "tiny --data people --attributes colour")
    assert type(info.value) is UsageError and "unknown attribute 'colour'" in str(info.value)


def test_the_cli_prints_the_reference(fair_data, workspace, capsys):
    from llmops_magics.adapters.cli import main

    home = str(workspace.registry.home)
    assert main(["--home", home, "fairness", "tiny", "--data", "people", "-a", "gender", "--max-new-tokens", "4"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == "fairness://people/1"
