"""``%finetune`` in a real IPython shell: it parses, starts the job, and returns its handle."""

import pytest
from IPython.core.error import UsageError

import llmops_magics as lm


@pytest.mark.slow
def test_the_magic_returns_the_job_and_records_its_command_line(ip, qa_dataset):
    line = "--data qa --max-steps 4 --logging-steps 2 --alias candidate --wait"
    job = ip.run_line_magic("finetune", line)
    assert isinstance(job, lm.FinetuneJob) and job.status == "succeeded"
    art = job.result.artifact
    assert (art.ref, art.aliases, art.spec["command"]) == (
        "adapter://qa-lora/1",
        ("latest", "candidate"),
        f"%finetune {line}",
    )
    assert len(ip.run_line_magic("finetune", "list")) == 1


def test_a_bad_option_is_a_one_line_usage_error_and_writes_nothing(ip, qa_dataset):
    with pytest.raises(UsageError, match="r must be a positive int, found 0"):
        ip.run_line_magic("finetune", "--data qa --r 0")
    with pytest.raises(UsageError, match="argument --method"):
        ip.run_line_magic("finetune", "--data qa --method qlora")
    assert lm.registry().list_state("finetune") == {}


def test_no_data_and_an_unknown_run_to_resume_are_usage_errors(ip, qa_dataset):
    with pytest.raises(UsageError, match="needs training data"):
        ip.run_line_magic("finetune", "--max-steps 3")
    with pytest.raises(UsageError, match="no fine-tune run 'ft-nope'"):
        ip.run_line_magic("finetune", "--resume ft-nope")


def test_the_list_of_runs_is_empty_and_displayable_before_any_run(ip):
    runs = ip.run_line_magic("finetune", "list")
    assert len(runs) == 0 and "(no fine-tune runs)" in runs._repr_mimebundle_()["text/html"]
