"""The comparison panel, driven through its widgets' state and buttons."""

from __future__ import annotations

import pytest

from llmops_magics.adapters.widgets import eval_panel
from llmops_magics.adapters.widgets.eval_compare import word_diff
from llmops_magics.evaluation.results import EvalResult, MetricColumn

# (A output, A score, B output, B score) per example; B loses most on example 2
EXAMPLES = [
    ("Paris", 1.0, "Paris", 1.0),
    ("Rome", 0.0, "Roma", 0.5),
    ("Tosmar", 1.0, "<script>alert(1)</script>", 0.0),
    ("blue", 0.5, "green", 0.25),
]


def result(examples=EXAMPLES, single=False) -> EvalResult:
    records = []
    for i, (a_out, a, b_out, b) in enumerate(examples):
        records.append(
            {"example": i, "target": "A", "prompt": f"Q{i}", "output": a_out, "reference": "ref", "score": a}
        )
        if not single:
            records.append(
                {"example": i, "target": "B", "prompt": f"Q{i}", "output": b_out, "reference": "ref", "score": b}
            )
    labels = ["A"] if single else ["A", "B"]
    return EvalResult(
        targets=[{"label": x, "name": f"model-{x}", "model": f"model-{x}", "prompt": "p"} for x in labels],
        data="dataset://d/1",
        split=None,
        reference_column="reference",
        columns=[MetricColumn("score", "score", True, True, True)],
        records=records,
        summary={x: {"score": 0.5, "n": len(examples)} for x in labels},
    )


@pytest.fixture
def panel():
    p = eval_panel(result())
    yield p
    p.close()


def test_worst_first_puts_bs_largest_loss_on_top(panel):
    assert panel.visible == [2, 3, 0, 1]


def test_best_first_puts_bs_largest_gain_on_top(panel):
    panel.order.value = "best"
    assert panel.visible[0] == 1


def test_the_b_threshold_filter_keeps_examples_where_b_scores_at_most_the_threshold(panel):
    panel.filter.value = "b_below"
    panel.threshold.value = 0.3
    assert sorted(panel.visible) == [2, 3]


def test_the_changed_filter_hides_examples_with_equal_scores(panel):
    panel.filter.value = "changed"
    assert 0 not in panel.visible


def test_the_count_line_reflects_the_filter(panel):
    panel.filter.value = "delta_at_least"
    panel.threshold.value = 0.5
    assert panel.count.get_state()["value"].startswith("2 of 4 examples")


def test_search_filters_on_prompt_and_output_text(panel):
    panel.search.value = "roma"
    assert panel.visible == [1]


def test_the_table_shows_at_most_the_chosen_number_of_rows(panel):
    panel.rows.value = 2
    assert panel.table.get_state()["value"].count("<tr>") == 1 + 2


def test_the_table_escapes_model_output(panel):
    html = panel.table.get_state()["value"]
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_next_moves_to_the_following_example_in_the_shown_order(panel):
    assert panel.example.value == 2
    panel.next_button.click()
    assert panel.example.value == 3


def test_prev_stays_on_the_first_example(panel):
    panel.prev_button.click()
    assert panel.example.value == 2


def test_the_diff_shows_removed_and_added_words_escaped(panel):
    panel.example.value = 1
    assert "<del style='background:#fcc'>Rome</del>" in panel.diff.value
    assert "Roma</ins>" in panel.diff.value


def test_word_diff_escapes_both_sides():
    assert word_diff("<b>", "<i>") == (
        "<del style='background:#fcc'>&lt;b&gt;</del><ins style='background:#cfc;text-decoration:none'>&lt;i&gt;</ins>"
    )


def test_one_target_is_compared_with_the_reference_worst_score_first():
    p = eval_panel(result(single=True))
    try:
        assert p.b.value == "reference"
        assert p.visible[0] == 1
    finally:
        p.close()


def test_close_unhooks_the_observers(panel):
    before = panel.count.value
    panel.close()
    panel.filter.value = "changed"
    assert panel.count.value == before


def test_the_panel_displays_as_its_root_widget(panel):
    data = panel._repr_mimebundle_()
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.root.model_id
