"""The prompts x models grid panel, driven through its widgets' state and buttons."""

from __future__ import annotations

import pytest

import llmops_magics as lm
from llmops_magics.adapters.widgets import grid_panel, panel_for
from llmops_magics.adapters.widgets.eval_grid import GridPanel, cell_cost
from llmops_magics.evaluation.results import EvalResult, MetricColumn

WIDGET = "application/vnd.jupyter.widget-view+json"
PRICES = {"big": {"input": 1.0, "output": 2.0}}  # "small" is unpriced: it costs 0
CELLS = [("A", "model://big/1", "prompt://terse/1"), ("B", "model://small/2", "prompt://terse/1")]
# (A output, A exact_match, B output, B exact_match) per example
ROWS = [
    ("Paris", 1.0, "Paris", 1.0),  # same answer, both pass
    ("Rome", 1.0, "Roma", 0.0),  # differ, B fails
    ("<b>x</b>", 0.0, "<b>x</b>", 0.0),  # same answer, both fail
    ("blue", 1.0, "green", 1.0),  # differ, both pass
]


def result() -> EvalResult:
    records = []
    for i, row in enumerate(ROWS):
        for (label, model, prompt), (out, score) in zip(CELLS, (row[:2], row[2:]), strict=True):
            records.append(
                {"example": i, "target": label, "model": model, "prompt_version": prompt, "prompt": f"Q{i}",
                 "output": out, "reference": "ref", "exact_match": score, "latency_s": 0.1 * (i + 1),
                 "prompt_tokens": 10.0, "completion_tokens": 2.0 + i}
            )  # fmt: skip
    return EvalResult(
        targets=[{"label": lb, "name": lb, "model": m, "prompt": p} for lb, m, p in CELLS],
        data="dataset://d/1",
        split=None,
        reference_column="reference",
        columns=[
            MetricColumn("exact_match", "exact_match", True, True, True),
            MetricColumn("latency_s", "latency", True, False, False),
            MetricColumn("completion_tokens", "tokens", True, None, False),
            MetricColumn("prompt_tokens", "tokens", False, None, False),
        ],
        records=records,
        summary={},
    )


@pytest.fixture
def panel():
    p = GridPanel(result(), prices=PRICES)
    yield p
    p.close()


def test_every_row_shows_by_default(panel):
    assert panel.visible == [0, 1, 2, 3]
    assert panel.count.get_state()["value"].startswith("4 of 4 rows")


def test_outputs_differ_keeps_the_rows_where_the_cells_disagree(panel):
    panel.filter.value = "differ"
    assert panel.visible == [1, 3]


def test_failures_keeps_the_rows_where_some_cell_fails(panel):
    panel.filter.value = "failures"
    assert panel.visible == [1, 2]


def test_a_lower_threshold_turns_failures_into_passes(panel):
    panel.filter.value = "failures"
    panel.threshold.value = 0.0
    assert panel.visible == []


def test_the_metric_choice_excludes_latency_and_token_counts(panel):
    assert list(panel.metric.options) == ["exact_match"]


def test_cost_is_the_cells_tokens_at_its_models_price_and_zero_unpriced(panel):
    assert panel.cost("A", 1) == pytest.approx((10 * 1.0 + 3 * 2.0) / 1e6)
    assert panel.cost("B", 1) == 0.0
    assert panel.cell_summary("A")["cost"] == pytest.approx(sum(10 * 1.0 + (2 + i) * 2.0 for i in range(4)) / 1e6)


def test_a_cell_summary_gives_pass_rate_latency_and_tokens(panel):
    s = panel.cell_summary("B")
    assert s["pass_rate"] == 0.5 and s["latency_s"] == pytest.approx(0.25) and s["tokens"] == 4 * 10 + (2 + 3 + 4 + 5)


def test_a_price_is_found_by_the_models_name():
    assert cell_cost({"prompt_tokens": 1e6, "completion_tokens": 0}, {"input": 3.0, "output": 0}) == 3.0
    p = GridPanel(result(), prices={"small": {"input": 1.0, "output": 0.0}})
    try:
        assert p.cost("B", 0) == pytest.approx(10 / 1e6) and p.cost("A", 0) == 0.0
    finally:
        p.close()


def test_next_and_prev_page_through_the_rows(panel):
    panel.rows.value = 3
    panel.next_button.click()
    assert panel.count.value.endswith("page 2 of 2")
    assert panel.table.value.count("<tr>") == 1 + 1
    panel.next_button.click()  # past the last page: stays there
    assert panel.count.value.endswith("page 2 of 2")
    panel.prev_button.click()
    assert panel.count.value.endswith("page 1 of 2")


def test_the_table_marks_pass_and_fail_and_escapes_outputs(panel):
    html = panel.table.get_state()["value"]
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert html.count("✗") == 3 and html.count("✓") == 5


def test_search_finds_an_output_in_any_cell(panel):
    panel.search.value = "roma"
    assert panel.visible == [1]


def test_several_prompts_get_the_grid_panel_and_one_prompt_the_side_by_side_panel():
    from llmops_magics.adapters.widgets.eval_compare import EvalPanel

    one_prompt = result()
    two_prompts = result()
    two_prompts.targets[1]["prompt"] = "prompt://chatty/1"
    for r, kind in ((one_prompt, EvalPanel), (two_prompts, GridPanel)):
        p = panel_for(r)
        try:
            assert isinstance(p, kind)
        finally:
            p.close()


def test_the_eval_magics_panel_flag_shows_a_real_grid_with_one_column_per_cell(ip, eval_ws):
    from IPython.utils.capture import capture_output

    lm.save_prompt("terse", "Question: {{ question }}\nAnswer:")
    lm.save_prompt("chatty", "Please answer.\nQuestion: {{ question }}\nAnswer:")
    line = f"--model {eval_ws.base.ref},{eval_ws.adapter.ref} --prompt terse,chatty --data qa-task --limit 4 "
    with capture_output() as captured:
        job = ip.run_line_magic("eval", line + "--max-new-tokens 4 --panel")
    assert any(WIDGET in o.data for o in captured.outputs)
    p = grid_panel(job)
    try:
        assert len(p.cells) == 4 and p.visible == [0, 1, 2, 3]
        assert all(p.cost(c["label"], 0) == 0.0 for c in p.cells)  # local models without a price
        assert p.table.value.count(" tok") == 4 * 4
    finally:
        p.close()


def test_a_malformed_price_table_leaves_the_dollars_out_and_says_so_once(tmp_path, monkeypatch):
    from llmops_magics.evaluation import usage

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(usage, "_WARNED", set())
    (tmp_path / "pyproject.toml").write_text('[tool.llmops.prices]\nsmall = "cheap"\n')
    with pytest.warns(usage.PriceWarning, match="small"):
        p = GridPanel(result())
    try:
        assert p.cost("A", 0) is None and p.cell_summary("B")["cost"] is None
    finally:
        p.close()
