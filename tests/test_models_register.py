"""Bring your own model: user-style folders built with plain transformers, an endpoint, configured names.

The folders are made as a user would make them (``save_pretrained`` of a GPT-2 and of a
Llama-architecture model of another size, with a model card's license); what the registry
records about them is checked against what transformers itself says when it loads them.
"""

from __future__ import annotations

import pytest
from deploy_support import gpt2_folder, llama_folder
from eval_support import OpenAIServer

import llmops_magics as lm
from llmops_magics.errors import ValidationError

KEY = "sk-own-model-123"


@pytest.fixture
def folders(tmp_path, tiny_model_dir):
    return {
        "gpt2": gpt2_folder(tmp_path / "my-gpt2", tiny_model_dir),
        "llama": llama_folder(tmp_path / "small-llama", tiny_model_dir),
    }


@pytest.mark.parametrize(
    "which, architecture, license", [("gpt2", "gpt2", "MIT License"), ("llama", "llama", "apache-2.0")]
)
def test_a_folder_is_registered_with_what_a_chooser_needs(workspace, folders, which, architecture, license):
    from transformers import AutoConfig, AutoModelForCausalLM

    folder = folders[which]
    art = lm.register_model(str(folder))
    meta = art.metadata
    config = AutoConfig.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert art.ref == f"model://{folder.name}/1"
    assert meta["architecture"] == architecture and meta["license"] == license
    assert meta["parameters"] == model.num_parameters()  # read from safetensors headers, not by loading
    assert meta["context_length"] == getattr(config, "max_position_embeddings", getattr(config, "n_positions", None))
    assert meta["vocab_size"] == config.vocab_size
    assert len(meta["tokenizer_digest"]) == 64
    assert (meta["chat_template_digest"] is None) == (which == "gpt2")
    assert lm.register_model(str(folder)).ref == art.ref  # same weights, same version


def test_two_folders_of_different_sizes_load_and_generate_by_reference(workspace, folders):
    from llmops_magics.models.generation import generate
    from llmops_magics.models.loading import load_model

    sizes = {}
    for which, folder in folders.items():
        art = lm.register_model(str(folder), name=f"cand-{which}")
        out = generate(load_model(art.ref, workspace=workspace), ["The capital of"], max_new_tokens=3)
        assert out[0].completion_tokens > 0
        sizes[which] = art.metadata["parameters"]
    assert sizes["gpt2"] != sizes["llama"]


def test_configured_names_resolve_everywhere_and_are_registered_on_first_use(workspace, folders, tmp_path):
    from llmops_magics.models.loading import resolve_model_source

    (tmp_path / "pyproject.toml").write_text('[tool.llmops.models]\nmy-llama = "small-llama"\n')
    src = resolve_model_source("my-llama", workspace)  # the folder is relative to pyproject.toml
    assert src.base_artifact.ref == "model://my-llama/1"
    assert src.base_artifact.metadata["architecture"] == "llama"
    assert workspace.registry.resolve("my-llama").ref == "model://my-llama/1"
    assert resolve_model_source("my-llama", workspace).base_artifact.ref == "model://my-llama/1"


@pytest.mark.parametrize(
    "breakage, message",
    [
        (lambda f: (f / "config.json").write_text("{not json"), r"config.json is not valid JSON"),
        (lambda f: (f / "config.json").write_text("[]"), r"config.json must hold a JSON object"),
        (lambda f: (f / "model.safetensors").write_bytes(b"abc"), r"is not a safetensors file \(3 bytes\)"),
        (
            lambda f: (f / "model.safetensors").write_text(
                "version https://git-lfs.github.com/spec/v1\noid sha256:0\n"
            ),
            r"is a Git LFS pointer, not the weights: run `git lfs pull`",
        ),
        (lambda f: (f / "tokenizer_config.json").write_text("{"), r"tokenizer_config.json is not valid JSON"),
    ],
)
def test_a_broken_folder_is_refused_in_one_line_and_nothing_is_registered(workspace, folders, breakage, message):
    breakage(folders["gpt2"])
    with pytest.raises(ValidationError, match=message):
        lm.register_model(str(folders["gpt2"]))
    assert not list(workspace.registry.names())


def test_the_tiny_model_has_the_card_of_any_folder(workspace):
    meta = lm.register_model("tiny").metadata
    assert (meta["context_length"], meta["vocab_size"], meta["dtype"]) == (128, 768, "float32")
    assert meta["license"] == "BSD-3-Clause" and len(meta["tokenizer_digest"]) == 64 and meta["parameters"] > 0


def test_a_configured_name_is_a_fine_tune_base_and_lora_finds_the_llama_modules(workspace, folders, tmp_path):
    (tmp_path / "pyproject.toml").write_text('[tool.llmops.models]\nmy-llama = "small-llama"\n')
    lm.save_dataset("qa", [{"prompt": f"Q{i}?", "completion": f" A{i}."} for i in range(8)])
    adapter = lm.finetune("qa", base="my-llama", max_steps=2, batch_size=4, logging_steps=1).wait(600).artifact
    assert adapter.metadata["base_model"] == "model://my-llama/1"  # registered under its configured name
    assert {"q_proj", "k_proj", "v_proj", "o_proj"} <= set(adapter.metadata["lora_modules"])
    assert not {"c_attn", "c_proj"} & set(adapter.metadata["lora_modules"])


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    from llmops_magics.models.tiny import TinyModelSpec, build_tiny_model

    base = build_tiny_model(tmp_path_factory.mktemp("endpoint-model") / "tiny", TinyModelSpec(steps=40))
    with OpenAIServer(base, api_key=KEY) as server:
        yield server


def test_an_endpoint_is_registered_without_its_key_and_evaluated_by_name(workspace, endpoint, monkeypatch):
    monkeypatch.setenv("OWN_MODEL_KEY", KEY)
    art = lm.register_model(endpoint.url + "/v1/", served_model="tiny", key_env="OWN_MODEL_KEY", name="remote")
    assert art.metadata["endpoint"] == endpoint.url and art.metadata["key_env"] == "OWN_MODEL_KEY"
    lm.save_dataset("rows", [{"prompt": "The capital of", "answer": "x"}] * 3)
    result = lm.evaluate("remote", data="rows", max_new_tokens=3, metrics=["tokens"]).wait()
    assert len(result.df) == 3 and endpoint.requests
    assert all(r.get("model") == "tiny" for r in endpoint.requests)
    assert any(e.source == art.ref for e in workspace.registry.upstream(result.artifact))
    stored = b"".join(p.read_bytes() for p in workspace.registry.home.rglob("*") if p.is_file())
    assert KEY.encode() not in stored


def test_an_endpoint_key_comes_from_dotenv_and_a_missing_one_is_named(workspace, endpoint, tmp_path, monkeypatch):
    from llmops_magics.models.named import endpoint_key

    monkeypatch.delenv("DOTENV_KEY", raising=False)
    with pytest.raises(ValidationError, match="DOTENV_KEY is not set"):
        endpoint_key("DOTENV_KEY")
    (tmp_path / "pyproject.toml").write_text("[tool.llmops]\n")
    (tmp_path / ".env").write_text("OTHER=1\nexport DOTENV_KEY='from-dotenv'\n")
    assert endpoint_key("DOTENV_KEY") == "from-dotenv"


def test_what_needs_weights_refuses_an_endpoint_in_one_line(workspace, endpoint):
    lm.register_model(endpoint.url, served_model="tiny", name="remote")
    with pytest.raises(ValidationError, match=r"model://remote/1 is an endpoint .* served already"):
        lm.deploy("remote")
    lm.save_dataset("qa", [{"prompt": "Q?", "completion": " A."}] * 4)
    with pytest.raises(ValidationError, match=r"base 'remote' is an endpoint .* needs the model's weights"):
        lm.finetune("qa", base="remote")
    with pytest.raises(ValidationError, match=r"base 'model://remote/1' is an endpoint"):
        lm.finetune("qa", base="model://remote/1")
    assert workspace.registry.list_state("finetune") == {}
    with pytest.raises(ValidationError, match="needs --served-model"):
        lm.register_model(endpoint.url)
    with pytest.raises(ValidationError, match="describe an endpoint"):
        lm.register_model("tiny-folder-that-is-not-a-url", key_env="X")


@pytest.mark.slow
def test_a_folder_deploys_as_itself_and_answers_the_openai_client(workspace, folders):
    import openai

    handle = lm.deploy(str(folders["llama"]), name="own-llama", api_key=KEY)
    try:
        assert handle.ref.startswith("deployment://own-llama/")
        assert workspace.registry.resolve("model://small-llama").metadata["architecture"] == "llama"
        client = openai.OpenAI(base_url=handle.url + "/v1", api_key=KEY, max_retries=0)
        out = client.completions.create(model="own-llama", prompt="The capital of", max_tokens=3, temperature=0)
        assert out.usage.completion_tokens > 0
    finally:
        lm.stop_deployment("own-llama")


def test_model_magic_registers_shows_tags_and_removes_an_alias(ip, folders):
    from IPython.core.error import UsageError

    art = ip.run_line_magic("model", f"{folders['llama']} --name cand --alias candidate")
    card = ip.run_line_magic("model", "show cand@candidate")
    assert card["architecture"] == "llama" and card["license"] == "apache-2.0" and "candidate" in card["aliases"]
    assert "model://cand/1" in card._repr_mimebundle_()["text/plain"]
    assert "selected" in ip.run_line_magic("model", "tag cand selected")["aliases"]
    assert "selected" not in ip.run_line_magic("model", "remove-alias cand selected")["aliases"]
    assert [n.name for n in ip.run_line_magic("model", "list")] == ["cand"]
    with pytest.raises(UsageError, match="needs REF and ALIAS"):
        ip.run_line_magic("model", "tag cand")
    with pytest.raises(UsageError, match="needs --served-model"):
        ip.run_line_magic("model", "http://127.0.0.1:9/v1")
    assert art.ref == "model://cand/1"


def test_compare_ranks_candidates_with_intervals_card_and_cost_and_selects_the_winner(eval_ws, tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        "[tool.llmops.prices]\n" + f'"{eval_ws.base.name}" = {{ input = 1.0, output = 2.0 }}\n'
    )
    lm.save_prompt("qa", "Question: {{ question }}\nAnswer:")
    board = lm.compare_models(
        [eval_ws.adapter.ref, eval_ws.base.ref],
        data="qa-task",
        prompt="qa",
        limit=12,
        max_new_tokens=6,
        select="selected",
    )
    assert [r["candidate"] for r in board.rows] == sorted(
        [eval_ws.adapter.ref, eval_ws.base.ref], key=lambda c: -board[c]["exact_match"]
    )
    best, other = board.rows
    assert best["exact_match vs best"] == (0.0, 0.0)
    lo, hi = other["exact_match vs best"]
    assert lo <= other["exact_match"] - best["exact_match"] <= hi
    for row in board.rows:
        assert row["p95 latency s"] >= row["p50 latency s"] > 0 and row["tokens/s"] > 0
        assert row["parameters"] > 0 and row["context"] == 128
    base_row = board[eval_ws.base.ref]
    expected = 1000 * (1.0 * base_row_mean(board, eval_ws.base.ref, "prompt_tokens")
                       + 2.0 * base_row_mean(board, eval_ws.base.ref, "completion_tokens")) / 1e6  # fmt: skip
    assert base_row["$ / 1k requests"] == pytest.approx(expected)
    assert board[eval_ws.adapter.ref]["$ / 1k requests"] == 0.0  # local and unpriced
    reg = eval_ws.registry
    winner = reg.resolve(board.winner)
    assert "selected" in reg.resolve(winner.ref).aliases
    sel = board.selection
    assert sel.kind == "selection" and sel.metadata["winner"] == winner.ref
    sources = {e.source for e in reg.upstream(sel, depth=1)}
    assert {eval_ws.adapter.ref, eval_ws.base.ref, board.eval_ref} <= sources
    stored = sel.spec["args"]  # pinned: a replay compares these versions on these rows
    assert list(stored["candidates"]) == [eval_ws.adapter.ref, eval_ws.base.ref]
    assert stored["data"] == reg.resolve("qa-task").ref and stored["prompt"] == "prompt://qa/1"


def test_a_selection_that_cannot_be_recorded_moves_no_alias(eval_ws, monkeypatch):
    from llmops_magics.models import leaderboard

    reg = eval_ws.registry

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(leaderboard, "publish", broken)
    with pytest.raises(OSError, match="disk full"):
        lm.compare_models([eval_ws.base.ref, eval_ws.adapter.ref], data="qa-task", metrics=["exact_match", "latency"], limit=4,
                          max_new_tokens=2, select="selected")  # fmt: skip
    assert not any("selected" in reg.aliases(a.kind, a.name) for a in (eval_ws.base, eval_ws.adapter))
    assert not any(n.kind == "selection" for n in reg.names())


def test_a_compare_with_a_missing_data_set_registers_no_candidate(workspace, folders):
    from llmops_magics.errors import NotFoundError

    with pytest.raises(NotFoundError, match="nope"):
        lm.compare_models(["tiny", str(folders["llama"])], data="nope")
    assert not list(workspace.registry.names())


def base_row_mean(board, candidate, column):
    label = board.labels[candidate]
    values = [r[column] for r in board.examples if r["target"] == label]
    return sum(values) / len(values)


def test_a_prompts_by_models_grid_runs_in_one_eval_and_pivots(eval_ws):
    from llmops_magics.evaluation.targets import grid

    assert grid([], "m1,m2", "p1,p2") == [("m1", "p1"), ("m1", "p2"), ("m2", "p1"), ("m2", "p2")]
    assert grid(["a"], None, "p1,p2") == [("a", "p1"), ("a", "p2")]
    p1 = lm.save_prompt("terse", "Question: {{ question }}\nAnswer:")
    p2 = lm.save_prompt("chatty", "Please answer the question.\nQuestion: {{ question }}\nAnswer:")
    models = f"{eval_ws.base.ref},{eval_ws.adapter.ref}"
    result = lm.evaluate(
        [], model=models, prompt="terse,chatty", data="qa-task", limit=5, max_new_tokens=6, metrics=["exact_match"]
    ).wait()
    cells = {(t["model"], t["prompt"]) for t in result.targets}
    assert cells == {(m, p) for m in (eval_ws.base.ref, eval_ws.adapter.ref) for p in (p1.ref, p2.ref)}
    table = result.df.pivot_table(index="prompt_version", columns="model", values="exact_match", aggfunc="mean")
    assert table.shape == (2, 2)
    stored = eval_ws.registry.resolve(result.ref).spec["args"]
    assert stored["model"] == models and stored["prompt"] == f"{p1.ref},{p2.ref}"
    again = lm.replay(result.ref).value
    assert again.df["output"].tolist() == result.df["output"].tolist()


def test_user_folders_of_two_architectures_go_through_a_grid_a_compare_a_selection_and_replay(
    workspace, folders, tmp_path
):
    (tmp_path / "pyproject.toml").write_text('[tool.llmops.models]\nmy-llama = "small-llama"\n')
    lm.save_dataset("rows", [{"question": f"What is {i}?", "answer": str(i)} for i in range(6)])
    lm.save_prompt("terse", "Question: {{ question }}\nAnswer:")
    lm.save_prompt("chatty", "Please answer.\nQuestion: {{ question }}\nAnswer:")
    models = f"my-llama,{folders['gpt2']}"
    options = {"data": "rows", "max_new_tokens": 3, "metrics": ["exact_match"]}
    result = lm.evaluate([], model=models, prompt="terse,chatty", **options).wait()
    assert {t["model"] for t in result.targets} == {"model://my-llama/1", "model://my-gpt2/1"}  # pinned
    assert len(result.targets) == 4 and len(result.df) == 24
    assert {"model://my-llama/1", "model://my-gpt2/1"} <= {
        e.source for e in workspace.registry.upstream(result.artifact)
    }
    assert lm.replay(result.ref).value.df["output"].tolist() == result.df["output"].tolist()
    board = lm.compare_models(["my-llama", str(folders["gpt2"])], prompt="terse", select="selected", **options)
    again = lm.replay(board.selection.ref).value
    assert again.selection.metadata["winner"] == board.selection.metadata["winner"]  # the same version wins
    assert [r["exact_match"] for r in again.rows] == [r["exact_match"] for r in board.rows]


def test_the_eval_magic_takes_a_grid(ip, eval_ws):
    lm.save_prompt("terse", "Question: {{ question }}\nAnswer:")
    lm.save_prompt("chatty", "Please answer.\nQuestion: {{ question }}\nAnswer:")
    ip.run_line_magic(
        "eval",
        f"--model {eval_ws.base.ref},{eval_ws.adapter.ref} --prompt terse,chatty --data qa-task --limit 3 "
        "--max-new-tokens 4 --metrics exact_match --wait",
    )
    (name,) = [n.name for n in eval_ws.registry.names("eval")]
    assert len(eval_ws.registry.resolve(f"eval://{name}").metadata["targets"]) == 4


def test_compare_with_a_malformed_price_table_ranks_without_dollars(eval_ws, tmp_path, monkeypatch):
    from llmops_magics.evaluation import usage

    monkeypatch.setattr(usage, "_WARNED", set())
    (tmp_path / "pyproject.toml").write_text('[tool.llmops.prices]\ntiny = "cheap"\n')
    lm.save_prompt("qa", "Question: {{ question }}\nAnswer:")
    with pytest.warns(usage.PriceWarning, match="tiny"):
        board = lm.compare_models(
            [eval_ws.adapter.ref, eval_ws.base.ref], data="qa-task", prompt="qa", limit=4, max_new_tokens=4
        )
    assert len(board.rows) == 2 and all(r["$ / 1k requests"] is None for r in board.rows)
    assert all(r["exact_match"] >= 0 for r in board.rows)
    assert "-" in board._table()[1][0] and str(board)  # the table shows the missing dollars rather than failing
