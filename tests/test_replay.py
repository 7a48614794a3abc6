"""``replay`` and ``llmops run``: a stored spec makes the same call again, or says why it cannot."""

import json
import shutil

import pytest

import llmops_magics as lm
from llmops_magics.adapters.cli import main as cli
from llmops_magics.errors import ValidationError

TEMPLATE = "Q: {{ question }}\nA:"
ROWS = [{"question": f"q{i}", "answer": f"a{i}"} for i in range(8)]


@pytest.fixture
def home(workspace, monkeypatch):
    """The test registry's folder, for the CLI (which builds its own workspace: W&B off)."""
    monkeypatch.setenv("LLMOPS_WANDB_MODE", "disabled")
    return str(workspace.home)


def run(home, *args):
    return cli(["--home", home, "run", *args])


def snapshot(workspace):
    return [(a.ref, a.digest, a.aliases) for a in workspace.registry.all_artifacts()]


# ---------------------------------------------------------------------------- prompts


def test_a_prompt_replayed_by_reference_is_the_same_version(workspace):
    made = lm.save_prompt("qa", TEMPLATE, params={"tone": "plain"})
    result = lm.replay("prompt://qa/1")
    assert (result.op, result.ref, result.value.created) == ("prompt", made.ref, False)
    assert result.call == f"save_prompt(name='qa', template={TEMPLATE!r}, params={{'tone': 'plain'}})"
    assert [a.ref for a in workspace.registry.versions("prompt", "qa")] == ["prompt://qa/1"]


def test_the_cli_replays_a_prompt_with_an_override_as_a_new_version(home, workspace, capsys):
    lm.save_prompt("qa", TEMPLATE, params={"tone": "plain"})
    assert run(home, "qa", "--set", 'params={"tone": "formal"}') == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("save_prompt(name='qa'") and out[-1] == "prompt://qa/2"
    new = lm.get_prompt("prompt://qa/2")
    assert (new.template, dict(new.params)) == (TEMPLATE, {"tone": "formal"})


def test_what_a_replay_makes_points_back_at_what_it_repeats(home, workspace, capsys):
    lm.save_prompt("qa", TEMPLATE)
    assert run(home, "qa", "--set", "name=qa-copy") == 0
    copy = workspace.registry.resolve("prompt://qa-copy/1")
    edges = {(e.source, e.relation) for e in workspace.registry.upstream(copy, depth=1)}
    assert edges == {("prompt://qa/1", "replayed_from")}
    assert (copy.spec["replayed_from"], copy.spec["command"]) == (
        "prompt://qa/1",
        f"llmops --home {home} run qa --set name=qa-copy",
    )


def test_a_replay_that_makes_the_same_version_links_nothing_to_itself(workspace):
    made = lm.save_prompt("qa", TEMPLATE)
    assert lm.replay(made.ref).ref == made.ref
    assert workspace.registry.upstream(made.ref) == []


def test_an_llmops_show_record_of_a_prompt_replays_from_its_spec(home, workspace, capsys, tmp_path):
    lm.save_prompt("qa", TEMPLATE)
    assert cli(["--home", home, "show", "qa"]) == 0
    record = tmp_path / "qa.json"
    record.write_text(capsys.readouterr().out)
    assert run(home, str(record), "--set", "name=qa-copy") == 0
    assert capsys.readouterr().out.splitlines()[-1] == "prompt://qa-copy/1"
    assert lm.get_prompt("qa-copy").template == TEMPLATE


def test_a_bare_stored_spec_replays_without_its_artifact(home, workspace, capsys, tmp_path):
    art = lm.save_prompt("qa", TEMPLATE).artifact
    spec = tmp_path / "spec.json"
    stored = art.to_dict()["spec"]
    spec.write_text(json.dumps({**stored, "args": {**stored["args"], "name": "qa-file"}}))
    assert run(home, str(spec)) == 0
    assert lm.get_prompt("qa-file").template == TEMPLATE


# ---------------------------------------------------------------------------- dry runs


def test_a_dry_run_prints_the_call_and_writes_nothing(home, workspace, capsys):
    lm.save_prompt("qa", TEMPLATE)
    before = snapshot(workspace)
    assert run(home, "prompt://qa/1", "--dry-run", "--set", "name=other") == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [f"save_prompt(name='other', template={TEMPLATE!r}, params={{}})",
                   "dry run: nothing was run or written"]  # fmt: skip
    assert snapshot(workspace) == before


def test_a_dry_run_of_a_finetune_starts_no_run(workspace):
    spec = {"op": "finetune", "args": {"data": "dataset://qa/1", "max_steps": 2, "seed": 3}, "command": "%finetune qa"}
    result = lm.replay(spec, dry_run=True)
    assert (result.ref, result.dry_run) == (None, True)
    assert result.call == "finetune(data='dataset://qa/1', max_steps=2, seed=3).wait()"
    assert workspace.registry.list_state("finetune") == {}
    assert not (workspace.home / "runs").exists()


def test_a_deployment_spec_replays_its_canary_and_settings(workspace):
    from llmops_magics.ops.deploy import DeploySpec

    made = DeploySpec(name="svc", target="adapter://qa/1", canary="adapter://qa/2:10%", max_batch_size=4)
    call = lm.replay({"op": "deploy", "args": made.to_dict()}, dry_run=True).call
    assert call == "deploy(target='adapter://qa/1', name='svc', canary='adapter://qa/2:10%', max_batch_size=4)"


def test_a_deployment_that_required_an_api_key_is_refused_without_one(workspace):
    spec = {"op": "deploy", "args": {"name": "svc", "target": "adapter://qa/1", "api_key": "***"}}
    with pytest.raises(ValidationError, match="used api key, which is never stored"):
        lm.replay(spec, dry_run=True)
    assert "api_key='***'" in lm.replay(spec, dry_run=True, overrides={"api_key": "s3cret"}).call


# ---------------------------------------------------------------------------- datasets and models


def test_a_dataset_from_a_file_is_read_again(workspace, tmp_path):
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    first = lm.save_dataset("t", str(path), validation_fraction=0.25, seed=1)
    assert lm.replay(first.ref).ref == first.ref
    path.write_text("".join(json.dumps(r) + "\n" for r in [*ROWS, {"question": "q8", "answer": "a8"}]))
    again = lm.replay(first.ref).value
    assert (again.ref, again.num_rows, again.artifact.spec["args"]["validation_fraction"]) == ("dataset://t/2", 9, 0.25)
    path.unlink()
    with pytest.raises(ValidationError, match="no longer exists"):
        lm.replay(first.ref)


def test_an_in_memory_dataset_re_registers_its_stored_rows(workspace):
    first = lm.save_dataset("m", ROWS, validation_fraction=0.25, seed=1)
    assert first.artifact.spec["args"]["data"] == "<list>"
    assert lm.replay(first.ref).value.created is False
    copy = lm.replay(first.ref, overrides={"name": "m2"}).value
    assert (copy.ref, copy.digest, copy.splits) == ("dataset://m2/1", first.digest, ("train", "validation"))
    with pytest.raises(ValidationError, match="validation_fraction cannot change"):
        lm.replay(first.ref, overrides={"validation_fraction": 0.5})
    with pytest.raises(ValidationError, match="in-memory <list>"):
        lm.replay(dict(first.artifact.spec))


def test_the_tiny_base_model_and_a_registered_folder_replay_to_the_same_version(workspace, tiny_model_dir, tmp_path):
    tiny = lm.tiny_base_model()
    assert (tiny.spec["op"], tiny.spec["args"]["source"]) == ("model", "tiny")
    assert lm.replay(tiny.ref).ref == tiny.ref
    folder = shutil.copytree(tiny_model_dir, tmp_path / "my-base")
    (folder / "extra.txt").write_text("not the tiny model")
    made = lm.register_model(str(folder))
    assert (made.ref, made.spec["op"], made.spec["args"]["source"]) == ("model://my-base/1", "model", str(folder))
    assert lm.replay(made.ref).ref == made.ref
    shutil.rmtree(folder)
    with pytest.raises(ValidationError, match="is not a folder"):
        lm.replay(made.ref)


# ---------------------------------------------------------------------------- eval and fine-tune


@pytest.mark.slow
def test_an_eval_replays_from_its_show_record_on_the_pinned_data(home, workspace, qa_dataset, capsys, tmp_path):
    lm.tiny_base_model()
    first = lm.evaluate(
        "model://tiny-gpt2", data="qa", limit=2, max_new_tokens=2, metrics=["exact_match", "tokens"]
    ).wait()
    lm.save_dataset("qa", ROWS, validation_fraction=0.25)  # qa now means another version
    assert cli(["--home", home, "show", first.ref]) == 0
    record = tmp_path / "eval.json"
    record.write_text(capsys.readouterr().out)
    assert run(home, str(record)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("evaluate(target=('model://tiny-gpt2/1',), data='dataset://qa/1'")
    assert out[-1] == first.ref  # same inputs and answers: the same version
    wider = lm.replay(first.ref, overrides={"limit": 3}).value
    assert (wider.ref != first.ref, wider.data, wider.summary["A"]["n"]) == (True, "dataset://qa/1", 3)


def test_an_eval_that_used_an_api_key_is_refused_without_one(workspace):
    spec = {"op": "eval", "args": {"target": ["http://127.0.0.1:9/v1"], "data": "qa", "api_key": "***"}}
    with pytest.raises(ValidationError, match="used api key, which is never stored"):
        lm.replay(spec)


def test_an_eval_that_named_its_key_variable_replays_with_that_variable(workspace):
    args = {"target": ["http://127.0.0.1:9/v1"], "data": "qa", "api_key": "***", "api_key_env": "QA_KEY"}
    call = lm.replay({"op": "eval", "args": args}, dry_run=True).call
    assert "api_key_env='QA_KEY'" in call and "api_key=" not in call.replace("api_key_env", "")


@pytest.mark.slow
def test_a_replayed_finetune_has_the_same_resolved_spec_and_parents(workspace, qa_dataset):
    lm.save_prompt("short-qa", TEMPLATE)
    first = lm.finetune("qa", prompt="short-qa", max_steps=2, logging_steps=1, name="qa-lora", seed=7).wait(600)
    lm.save_prompt("short-qa", "Question: {{ question }}\nAnswer:")  # newer versions must not leak in
    lm.save_dataset("qa", ROWS, validation_fraction=0.25)
    result = lm.replay(first.ref, overrides={"name": "qa-lora-replay"})
    made = result.value.artifact
    assert (result.op, result.ref) == ("finetune", "adapter://qa-lora-replay/1")
    original, replayed = dict(first.artifact.spec["args"]), dict(made.spec["args"])
    assert original.pop("name") == "qa-lora" and replayed.pop("name") == "qa-lora-replay"
    assert replayed == original and replayed["data"] == "dataset://qa/1" and replayed["seed"] == 7
    assert made.spec["replayed_from"] == first.ref

    def parents(art):
        return {(e.source, e.relation) for e in workspace.registry.upstream(art, depth=1)}

    assert parents(made) == parents(first.artifact) | {(first.ref, "replayed_from")}
    assert ("prompt://short-qa/1", "prompt") in parents(made)


# ---------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("spec", "args", "message"),
    [
        ({"op": "nope"}, [], "op must be one of prompt, dataset, model, finetune, eval, deploy"),
        ({"op": "prompt", "args": {"name": "qa", "template": "x", "bogus": 1}}, [], "unknown argument(s) bogus"),
        ({"op": "prompt", "name": "qa", "template": "x"}, [], "its spec has no 'args'"),
        ({"op": "prompt", "args": {"name": "qa"}}, [], "prompt needs template"),
        (None, ["prompt://qa/1", "--set", "bogus=1"], "unknown argument(s) bogus"),
        (None, ["prompt://qa/1", "--set", "command=%prompt"], "unknown argument(s) command"),
        (None, ["missing.json"], "spec file 'missing.json' does not exist"),
        (None, ["prompt://nope"], "no prompt is named 'nope'"),
        (None, ["prompt://qa/1", "--set", "name"], "--set takes KEY=VALUE, found 'name'"),
        ({"ref": "prompt://qa/1"}, [], "is neither a spec (no 'op' field) nor an artifact record"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(home, workspace, capsys, tmp_path, spec, args, message):
    lm.save_prompt("qa", TEMPLATE)
    if spec is not None:
        path = tmp_path / "spec.json"
        path.write_text(json.dumps(spec))
        args = [str(path)]
    before = snapshot(workspace)
    assert run(home, *args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("llmops: ") and message in err
    assert snapshot(workspace) == before
