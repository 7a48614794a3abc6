"""The ``cost`` metric: dollars per answer at ``[tool.llmops.prices]``, found by the model's reference or name."""

from __future__ import annotations

import pytest

import llmops_magics as lm
from llmops_magics.models.leaderboard import price_of

TABLE = {"tiny": {"input": 1.0, "output": 2.0}, "http://h:1/v1": {"input": 5.0, "output": 0.0}}


@pytest.mark.parametrize(
    "model, expected",
    [
        ("model://tiny/3", TABLE["tiny"]),
        ("tiny@prod", TABLE["tiny"]),
        ("tiny", TABLE["tiny"]),
        ("http://h:1/v1", TABLE["http://h:1/v1"]),
        ("model://other/1", {"input": 0.0, "output": 0.0}),
        (None, {"input": 0.0, "output": 0.0}),
    ],
)
def test_a_price_is_found_by_reference_then_name_and_is_zero_when_unpriced(model, expected):
    assert price_of(model, TABLE) == expected


def test_the_cost_metric_prices_each_answers_own_tokens(eval_ws, tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        "[tool.llmops.prices]\n" + f'"{eval_ws.base.name}" = {{ input = 3.0, output = 7.0 }}\n'
    )
    lm.save_prompt("qa", "Question: {{ question }}\nAnswer:")
    result = lm.evaluate(
        eval_ws.base.ref, compare=[eval_ws.adapter.ref], data="qa-task", prompt="qa", limit=4, max_new_tokens=4,
        metrics=["exact_match", "tokens", "cost"],
    ).wait()  # fmt: skip
    by = {t["label"]: t["model"] for t in result.targets}
    for rec in result.records:
        if by[rec["target"]] == eval_ws.base.ref:
            assert rec["cost_usd"] == pytest.approx((3.0 * rec["prompt_tokens"] + 7.0 * rec["completion_tokens"]) / 1e6)
            assert rec["cost_usd"] > 0
        else:
            assert rec["cost_usd"] == 0.0  # the adapter is not priced under its own name
    assert result.summary["A"]["cost_usd"] > 0
