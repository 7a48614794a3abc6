"""The Python API and the magic on bad input (nothing written, typed errors), and the vLLM engine's output."""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import sys

import pytest
from deploy_support import build_folders, register

from llmops_magics.errors import NotFoundError, ValidationError


@pytest.fixture
def refs(workspace, tmp_path_factory):
    return register(workspace, build_folders(str(tmp_path_factory.getbasetemp())))


def nothing_written(ws) -> bool:
    reg = ws.registry
    return not reg.names("deployment") and not reg.list_state("deployments")


# ---------------------------------------------------------------------- bad input: typed errors, nothing written


def test_deploying_a_prompt_is_a_validation_error(workspace, refs):
    from llmops_magics import deploy

    with pytest.raises(ValidationError, match="must be a model or adapter"):
        deploy(refs.prompt)
    assert nothing_written(workspace)


def test_deploying_an_unknown_reference_is_not_found(workspace, refs):
    from llmops_magics import deploy

    with pytest.raises(NotFoundError):
        deploy("adapter://nope/1")
    assert nothing_written(workspace)


def test_a_malformed_canary_is_rejected_before_anything_starts(workspace, refs):
    from llmops_magics import deploy

    with pytest.raises(ValidationError, match="REF:PERCENT"):
        deploy(refs.adapter, canary=refs.adapter_v2)
    assert nothing_written(workspace)


def test_a_port_in_use_is_rejected_before_anything_starts(workspace, refs):
    from llmops_magics import deploy

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(ValidationError, match="already in use"):
            deploy(refs.adapter, port=busy.getsockname()[1])
    assert nothing_written(workspace)


def test_the_vllm_engine_without_vllm_installed_says_how_to_export(workspace, refs):
    from llmops_magics import deploy

    with pytest.raises(ValidationError, match="--export DIR"):
        deploy(refs.adapter, engine="vllm")
    assert nothing_written(workspace)


def test_status_of_an_unknown_deployment_names_the_known_ones(workspace):
    from llmops_magics import deployment_status

    with pytest.raises(NotFoundError, match="no deployment is named 'ghost'; deployments: none"):
        deployment_status("ghost")


def test_promoting_without_a_canary_is_refused(workspace, refs):
    from llmops_magics import promote_deployment

    with pytest.raises(NotFoundError):
        promote_deployment("ghost")


# ---------------------------------------------------------------------- the magic


def test_the_magic_turns_bad_input_into_a_one_line_usage_error(ip, refs):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError) as info:
        ip.run_line_magic("deploy", f"{refs.prompt} --name svc")
    assert type(info.value) is UsageError and "\n" not in str(info.value)


def test_the_magic_rejects_an_unknown_engine_as_a_usage_error(ip, refs):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError):
        ip.run_line_magic("deploy", f"{refs.adapter} --engine triton")


def test_deploy_list_with_nothing_deployed_says_so(ip):
    assert str(ip.run_line_magic("deploy", "list")) == "(no deployments)"


def test_a_subcommand_without_its_name_is_a_usage_error(ip):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError):
        ip.run_line_magic("deploy", "stop")


def test_loading_the_extension_imports_no_serving_or_ml_stack():
    code = (
        "import sys, time; from IPython.testing.globalipapp import start_ipython; ip = start_ipython(); "
        "t = time.perf_counter(); ip.run_line_magic('load_ext', 'llmops_magics'); dt = time.perf_counter() - t; "
        "heavy = ['torch','transformers','peft','wandb','pandas','fastapi','uvicorn','ray','httpx','pydantic',"
        "'prometheus_client','openai','ipywidgets']; "
        "import json; print(json.dumps({'seconds': dt, 'loaded': [m for m in heavy if m in sys.modules]}))"
    )
    out = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert out["loaded"] == [] and out["seconds"] < 0.3


# ---------------------------------------------------------------------- vLLM: the command and the export


def test_the_vllm_command_serves_the_adapter_as_a_lora_module_named_after_the_deployment():
    from llmops_magics.ops.deploy import DeploySpec
    from llmops_magics.serving import vllm_command

    spec = DeploySpec(name="qa", target="adapter://qa/1", port=8001, max_batch_size=32)
    cmd = vllm_command(spec, base_path="/m/base", adapter_path="/m/lora", lora_rank=16, context_window=128)
    assert cmd[:3] == ["vllm", "serve", "/m/base"]
    for flag, value in [
        ("--lora-modules", "qa=/m/lora"),
        ("--max-lora-rank", "16"),
        ("--max-num-seqs", "32"),
        ("--port", "8001"),
        ("--max-model-len", "128"),
        ("--host", "127.0.0.1"),
    ]:
        assert cmd[cmd.index(flag) + 1] == value
    assert "--enable-lora" in cmd and "--api-key" not in cmd


def test_the_vllm_command_for_a_plain_model_names_it_after_the_deployment():
    from llmops_magics.ops.deploy import DeploySpec
    from llmops_magics.serving import vllm_command

    cmd = vllm_command(DeploySpec(name="base", target="model://m/1"), base_path="/m/base")
    assert cmd[cmd.index("--served-model-name") + 1] == "base" and "--enable-lora" not in cmd


def test_the_prompt_becomes_a_chat_template_filled_from_the_last_user_message():
    from jinja2 import Environment

    from llmops_magics.serving.vllm import chat_template_for

    template = chat_template_for("{{ greeting }} Question: {{ question }}\nAnswer:", {"greeting": "Hi."})
    messages = [
        {"role": "user", "content": "old"},
        {"role": "assistant", "content": "x"},
        {"role": "user", "content": "Q?"},
    ]
    assert Environment().from_string(template).render(messages=messages) == "Hi. Question: Q?\nAnswer:"


def test_exporting_for_vllm_writes_weights_adapter_template_spec_and_a_script(workspace, refs, tmp_path):
    from llmops_magics import deploy

    export = deploy(refs.adapter, name="qa", engine="vllm", export=str(tmp_path / "qa-vllm"))
    folder = tmp_path / "qa-vllm"
    script = (folder / "serve.sh").read_text()
    assert (folder / "model" / "config.json").is_file() and (folder / "adapter" / "adapter_config.json").is_file()
    assert json.loads((folder / "deployment.json").read_text())["target"] == refs.adapter
    assert shlex.join(export.command) in script and "--chat-template chat_template.jinja" in script
    assert nothing_written(workspace)
