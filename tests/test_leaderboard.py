"""The leaderboard panel of ``%model compare``, driven through its widgets' state and buttons."""

from __future__ import annotations

import pytest

import llmops_magics as lm
from llmops_magics.adapters.widgets import leaderboard_panel
from llmops_magics.display.views import set_view
from llmops_magics.models.leaderboard import Leaderboard

WIDGET = "application/vnd.jupyter.widget-view+json"

# per candidate: (exact_match per example, output per example); example 2 is where "mid" loses to "big"
ANSWERS = {
    "big": ([1.0, 1.0, 1.0, 0.0], ["Paris", "Rome", "Tosmar", "blue"]),
    "mid": ([1.0, 1.0, 0.0, 0.0], ["Paris", "Rome", "<script>x</script>", "blue"]),
    "small": ([0.0, 0.0, 0.0, 0.0], ["Lyon", "Milan", "Nope", "red"]),
}


def row(candidate, em, ci, p50, cost, license, perplexity):
    return {
        "candidate": candidate,
        "version": f"model://{candidate}/1",
        "exact_match": em,
        "exact_match vs best": ci,
        "perplexity": perplexity,
        "perplexity vs best": (0.0, 0.0),
        "p50 latency s": p50,
        "p95 latency s": p50 * 2,
        "tokens/s": 10 / p50,
        "parameters": {"big": 30_000, "mid": 20_000, "small": 10_000}[candidate],
        "context": 128,
        "license": license,
        "$ / 1k requests": cost,
    }


def board() -> Leaderboard:
    rows = [
        row("big", 0.75, (0.0, 0.0), 0.30, 0.5, "mit", 3.0),
        row("mid", 0.50, (-0.75, 0.0), 0.20, 0.2, None, 2.0),  # the interval reaches 0: not surely worse
        row("small", 0.0, (-1.0, -0.5), 0.10, 0.0, "apache-2.0", 9.0),  # wholly below the best
    ]
    labels = {"big": "A", "mid": "B", "small": "C"}
    examples = []
    for cand, (scores, outputs) in ANSWERS.items():
        for i, (s, out) in enumerate(zip(scores, outputs, strict=True)):
            examples.append(
                {"example": i, "target": labels[cand], "prompt": f"Q{i}", "output": out, "reference": "ref",
                 "exact_match": s, "perplexity": 1.0}
            )  # fmt: skip
    return Leaderboard(
        "exact_match",
        rows,
        "eval://qa/1",
        examples=examples,
        labels=labels,
        higher_is_better={"exact_match": True, "perplexity": False},
    )


@pytest.fixture
def panel():
    p = leaderboard_panel(board())
    yield p
    p.close()


def test_the_table_starts_in_the_boards_order_sorted_by_the_primary_metric(panel):
    assert panel.order == ["big", "mid", "small"]
    assert panel.sort_buttons["exact_match"].get_state()["description"] == "exact_match ▼"


def test_a_latency_click_puts_the_fastest_first_and_a_second_click_reverses(panel):
    panel.sort_buttons["p50 latency s"].click()
    assert panel.order == ["small", "mid", "big"]
    panel.sort_buttons["p50 latency s"].click()
    assert panel.order == ["big", "mid", "small"]


def test_a_lower_is_better_quality_metric_sorts_ascending_first(panel):
    panel.sort_buttons["perplexity"].click()
    assert panel.order == ["mid", "big", "small"]


def test_cost_sorts_cheapest_first_and_tokens_per_second_fastest_first(panel):
    panel.sort_buttons["$ / 1k requests"].click()
    assert panel.order == ["small", "mid", "big"]
    panel.sort_buttons["tokens/s"].click()
    assert panel.order == ["small", "mid", "big"]


def test_a_text_column_sorts_by_text_with_missing_values_last(panel):
    panel.sort_buttons["license"].click()
    assert panel.order[-1] == "mid"
    panel.sort_buttons["license"].click()
    assert panel.order[-1] == "mid"


def test_the_table_shows_the_interval_and_marks_only_a_candidate_surely_below_the_best(panel):
    html = panel.table.get_state()["value"]
    rows = html.split("<tr")[2:]  # header first
    by = {r.split("</td>")[0].rsplit(">", 1)[-1]: r for r in rows}
    assert "[-1.000, -0.500]" in by["small"] and "significantly worse" in by["small"]
    assert "[-0.750, +0.000]" in by["mid"] and "significantly worse" not in by["mid"]
    assert "★" in by["big"]


def test_the_table_has_the_chooser_columns_but_not_the_version(panel):
    header = panel.table.get_state()["value"].split("</thead>")[0]
    for column in ("p95 latency s", "tokens/s", "parameters", "context", "license", "$ / 1k requests"):
        assert column in header
    assert "version" not in header and "model://big/1" not in panel.table.value


def test_the_drill_down_starts_on_the_runner_up_against_the_best_worst_example_first(panel):
    assert (panel.candidate.value, panel.versus.value) == ("mid", "big")
    assert panel.drill_examples[0] == 2


def test_a_rows_drill_button_opens_that_candidate(panel):
    panel.drill_buttons["small"].click()
    assert panel.candidate.get_state()["index"] == 2
    assert panel.count.value.startswith("4 of 4 examples")


def test_only_rows_where_outputs_differ_hides_equal_answers(panel):
    panel.only_differ.value = True
    assert panel.drill_examples == [2]
    assert panel.count.value.startswith("1 of 4 examples")


def test_the_drill_down_shows_at_most_the_chosen_number_of_rows(panel):
    panel.limit.value = 2
    assert panel.drill.get_state()["value"].count("<tr>") == 1 + 2


def test_the_drill_down_escapes_model_output(panel):
    html = panel.drill.value
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_close_unhooks_the_sort_buttons():
    p = leaderboard_panel(board())
    p.close()
    p.sort_buttons["p50 latency s"].click()
    assert p.sort_column == "exact_match"
    p.close()  # a second close does nothing


def test_the_leaderboard_displays_as_the_installed_view_with_its_table_alongside():
    b = board()
    assert WIDGET not in b._repr_mimebundle_()
    set_view("leaderboard", leaderboard_panel)
    try:
        data = b._repr_mimebundle_()
    finally:
        set_view("leaderboard", None)
    assert WIDGET in data and "<table" in data["text/html"] and data["text/plain"].startswith("leaderboard by")


def test_a_real_compare_opens_on_the_winner_and_drills_into_the_other_candidate(ip, eval_ws):
    lm.save_prompt("qa", "Question: {{ question }}\nAnswer:")
    result = ip.run_line_magic(
        "model",
        f"compare {eval_ws.adapter.ref} {eval_ws.base.ref} --data qa-task --prompt qa --limit 8 "
        "--max-new-tokens 4 --metrics exact_match --n-resamples 200",
    )
    assert WIDGET in result._repr_mimebundle_()
    p = leaderboard_panel(result)
    try:
        assert p.order[0] == result.winner and p.versus.value == result.winner
        other = next(c for c in p.order if c != result.winner)
        p.drill_buttons[other].click()
        assert p.candidate.value == other and p.count.value.startswith("8 of 8 examples")
    finally:
        p.close()
