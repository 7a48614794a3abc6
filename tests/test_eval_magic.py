"""``%eval`` in a real IPython shell: it parses, calls the core, returns the result."""

from __future__ import annotations

import subprocess
import sys

import pytest
from IPython.core.error import UsageError

from llmops_magics.errors import JobCancelledError
from llmops_magics.evaluation import EvalJob, EvalResult

LINE = "adapter://qa-lora --data qa-task --limit 4 --max-new-tokens 4 --metrics exact_match"


def test_the_magic_returns_the_running_eval_whose_result_is_an_eval_result(ip, eval_ws):
    job = ip.run_line_magic("eval", LINE)
    assert isinstance(job, EvalJob) and isinstance(job.wait(), EvalResult) and job.status == "succeeded"


def test_reading_a_result_attribute_on_the_running_eval_waits_for_it(ip, eval_ws):
    job = ip.run_line_magic("eval", LINE)
    assert job.artifact.ref == job.result.ref and job.done


def test_a_cancelled_eval_registers_nothing(ip, eval_ws):
    before = eval_ws.registry.change_counter()
    job = ip.run_line_magic("eval", "adapter://qa-lora --data qa-task --max-new-tokens 8 --no-cache --batch-size 1")
    assert job.cancel(wait=60)
    assert job.status == "cancelled"
    with pytest.raises(JobCancelledError, match="nothing was"):
        job.wait()
    assert eval_ws.registry.change_counter() == before


def test_wait_blocks_the_cell_until_the_eval_ends(ip, eval_ws):
    assert ip.run_line_magic("eval", LINE + " --wait").done


def test_result_assignment_from_the_magic_works_in_a_cell(ip, eval_ws):
    ip.run_cell(f"result = %eval {LINE}")
    assert ip.user_ns["result"].summary["A"]["n"] == 4


def test_the_magic_line_is_stored_in_the_spec(ip, eval_ws):
    result = ip.run_line_magic("eval", LINE)
    assert result.artifact.spec["command"] == f"%eval {LINE}"


def test_compare_adds_targets_after_the_first(ip, eval_ws):
    result = ip.run_line_magic("eval", "model://tiny-gpt2 --compare adapter://qa-lora " + LINE.split(" ", 1)[1])
    assert [t["model"] for t in result.targets] == ["model://tiny-gpt2/1", "adapter://qa-lora/1"]


def test_metrics_may_be_repeated_and_comma_separated(ip, eval_ws):
    result = ip.run_line_magic("eval", LINE + " -m contains,tokens")
    assert list(result.artifact.spec["args"]["metrics"]) == ["exact_match", "contains", "tokens"]


def test_a_regex_metric_keeps_the_commas_of_its_pattern(ip, eval_ws):
    result = ip.run_line_magic("eval", LINE + r" -m 'regex:^[^,]*$,tokens'")
    assert list(result.artifact.spec["args"]["metrics"]) == ["exact_match", "regex:^[^,]*$", "tokens"]


def test_a_regex_repetition_survives_the_magic_with_doubled_braces(ip, eval_ws):
    result = ip.run_line_magic("eval", LINE + r" -m 'regex:^.{{0,500}}$'")
    assert list(result.artifact.spec["args"]["metrics"]) == ["exact_match", "regex:^.{0,500}$"]


def test_stop_strings_accept_escapes(ip, eval_ws):
    result = ip.run_line_magic("eval", LINE + r" --stop '\n'")
    assert list(result.artifact.spec["args"]["stop"]) == ["\n"]


def test_bad_input_is_a_plain_one_line_usage_error(ip, eval_ws):
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("eval", "adapter://qa-lora --data qa-task --metrics accuracy")
    assert type(info.value) is UsageError
    assert "\n" not in str(info.value) and "unknown metric 'accuracy'" in str(info.value)


def test_a_regression_fails_the_magic_with_a_usage_error(ip, eval_ws):
    line = r"adapter://qa-lora --compare model://tiny-gpt2 --data qa-task --limit 24 --max-new-tokens 4"
    with pytest.raises(UsageError, match="regression in eval://"):
        ip.run_line_magic("eval", line + r" --metrics 'regex:\w+' --fail-on-regression")


def test_min_delta_keeps_a_smaller_difference_from_failing_the_magic(ip, eval_ws):
    line = r"adapter://qa-lora --compare model://tiny-gpt2 --data qa-task --limit 24 --max-new-tokens 4"
    result = ip.run_line_magic("eval", line + r" --metrics 'regex:\w+' --fail-on-regression --min-delta 1.01")
    assert result.regressions == [] and result.artifact.spec["args"]["min_delta"] == 1.01


def test_an_unset_api_key_variable_is_a_usage_error(ip, eval_ws):
    with pytest.raises(UsageError, match="LLMOPS_NO_SUCH_KEY is not set"):
        ip.run_line_magic("eval", "http://127.0.0.1:9 --data qa-task --api-key-env LLMOPS_NO_SUCH_KEY")


def test_list_metrics_shows_the_registered_metrics(ip, eval_ws):
    names = [row[0] for row in ip.run_line_magic("eval", "--list-metrics")]
    assert {"exact_match", "rouge_l", "bleu", "chrf", "judge", "perplexity"} <= set(names)


def test_the_panel_flag_displays_the_comparison_panel_and_returns_the_result(ip, eval_ws):
    from IPython.utils.capture import capture_output

    with capture_output() as captured:
        result = ip.run_line_magic("eval", LINE + " --panel")
    assert result.done and isinstance(result.result, EvalResult)
    assert any("application/vnd.jupyter.widget-view+json" in out.data for out in captured.outputs)


def test_show_reads_a_recorded_eval_back(ip, eval_ws):
    result = ip.run_line_magic("eval", LINE)
    shown = ip.run_line_magic("eval", f"--show {result.ref}")
    assert shown.ref == result.ref and shown.df["output"].tolist() == result.df["output"].tolist()


def test_loading_the_extension_imports_no_heavy_library():
    code = (
        "import sys\n"
        "from IPython.testing.globalipapp import start_ipython\n"
        "start_ipython().run_line_magic('load_ext', 'llmops_magics')\n"
        "heavy = ['torch', 'transformers', 'peft', 'wandb', 'pandas', 'rouge_score', 'sacrebleu',\n"
        "         'httpx', 'ipywidgets', 'llmops_magics.evaluation']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip().splitlines()[-1:] in ([], [""])
