"""``%card``: a real Hugging Face model card written from lineage, stored, read back by ``huggingface_hub``.

One real lineage is built once for the module: a dataset scanned for PII, a LoRA
fine-tune of the tiny model on it, an eval of the adapter and a counterfactual fairness
report. Every number the card states is checked against the stored artifact it came
from, recomputed here; a bare adapter with no such lineage gets "not recorded".
"""

from __future__ import annotations

import json
import math

import pytest
from IPython.core.error import UsageError

import llmops_magics as lm
from llmops_magics import NotFoundError, ValidationError
from llmops_magics.governance.cards import EDGE, latest_card

pytest.importorskip("huggingface_hub")

PEOPLE = [
    {"question": "What did he tell his wife?", "answer": "hello"},
    {"question": "Where does the man live?", "answer": "Paris"},
    {"question": "Is his brother tall?", "answer": "yes"},
]


@pytest.fixture(scope="module")
def lineage(tmp_path_factory, tiny_model_dir):
    """dataset qa (PII-scanned) → finetune → adapter → eval + fairness → card (ws, adapter, eval, fairness, card)."""
    from llmops_magics.context import workspaces as context
    from llmops_magics.recording import MemoryRecorder

    home = tmp_path_factory.mktemp("cards") / ".llmops"
    ws = context.configure(home=str(home), wandb_mode="disabled", recorder=MemoryRecorder())
    try:
        lm.save_dataset("qa", lm.task_examples(), validation_fraction=0.2, seed=0)
        lm.save_dataset("people", PEOPLE)
        scan = lm.pii_scan("qa", limit=50)
        result = lm.finetune("qa", max_steps=6, eval_steps=3, logging_steps=3, name="qa-lora").wait(600)
        adapter = result.artifact.ref
        ev = lm.evaluate(adapter, data="qa", split="validation", limit=8, max_new_tokens=8).wait(600)
        fair = lm.fairness(adapter, data="people", attributes="gender", max_new_tokens=4, n_resamples=200)
        view = lm.card(adapter, intended_use="Answering <b>quiz</b> questions", limitations="Tiny | English only")
        yield {"ws": ws, "adapter": result.artifact, "scan": scan, "eval": ev, "fairness": fair, "view": view}
    finally:
        ws.close()
        context._current = None


@pytest.fixture
def bare(workspace, tiny_model_dir):
    """A base and an adapter registered with nothing else: no data, eval, fairness or W&B run."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = workspace.home.parent / "bare-adapter"
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           LoraConfig(r=2, target_modules=["c_attn"], fan_in_fan_out=True))  # fmt: skip
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(folder)
    base = workspace.registry.save("model", "tiny-gpt2", path=tiny_model_dir).artifact
    meta = {"base_model": base.ref, "base_digest": base.digest}
    adapter = workspace.registry.save("adapter", "bare", path=folder, metadata=meta, parents=[(base, "base")])
    return base, adapter.artifact


# ---------------------------------------------------------------------- the card's content


@pytest.mark.slow
def test_the_stored_readme_round_trips_through_huggingface_hub(lineage):
    from huggingface_hub import ModelCard, ModelCardData
    from huggingface_hub.repocard_data import model_index_to_eval_results

    ws, view = lineage["ws"], lineage["view"]
    text = ws.registry.read_bytes(view.ref).decode()
    path = ws.home.parent / "README.md"
    path.write_text(text)
    card = ModelCard.load(path)
    assert isinstance(card.data, ModelCardData) and card.text.lstrip().startswith("# qa-lora")
    assert card.data.base_model == str(ws.registry.checkout("model://tiny-gpt2/1"))
    assert card.data.library_name == "peft" and card.data.model_name == "qa-lora"
    assert card.data.datasets == ["dataset://qa/1"]
    name, results = model_index_to_eval_results(card.data.to_dict()["model-index"])
    assert name == "qa-lora" and len(results) == len(lineage["eval"].columns)
    again = ModelCardData(**card.data.to_dict())  # validated again from the YAML alone
    assert [(r.metric_type, r.metric_value) for r in again.eval_results] == [
        (r.metric_type, r.metric_value) for r in results
    ]


@pytest.mark.slow
def test_model_index_holds_each_metric_mean_with_its_interval_recomputed_from_the_eval(lineage):
    from llmops_magics.evaluation.stats import paired_bootstrap

    ev, view = lineage["eval"], lineage["view"]
    adapter = lineage["adapter"].ref
    back = lm.get_eval(ev.ref)
    label = next(t["label"] for t in back.targets if t["model"] == adapter)
    by_metric = {r.metric_type: r for r in view.card.data.eval_results}
    assert set(by_metric) == {c.name for c in back.columns}
    for column in back.columns:
        values = [r[column.name] for r in back.records if r["target"] == label and r[column.name] is not None]
        mean = sum(values) / len(values)
        lo, hi = paired_bootstrap(values, n_resamples=2000, seed=0)
        result = by_metric[column.name]
        assert math.isclose(result.metric_value, mean, abs_tol=1e-6)
        assert result.dataset_name == "dataset://qa/1" and result.dataset_split == "validation"
        assert f"(n={len(values)}, 95% CI [{lo:.4g}, {hi:.4g}])" in result.metric_name
        assert result.verified is False


@pytest.mark.slow
def test_the_body_states_data_digests_pii_scan_hyperparameters_fairness_and_statements(lineage):
    ws, view, scan, fair = lineage["ws"], lineage["view"], lineage["scan"], lineage["fairness"]
    body = view.card.text
    data = ws.registry.resolve("dataset://qa/1")
    assert data.digest[:12] in body
    assert scan.ref in body and f"{scan.total} finding(s)" in body
    assert f"run `{lineage['adapter'].metadata['wandb_run_id']}`" in body
    stored = lineage["adapter"].spec["args"]
    assert f"| lr | {json.dumps(stored['lr'])} |" in body and f"| max_steps | {stored['max_steps']} |" in body
    gender = fair.attributes["gender"]["measures"]
    assert fair.ref in body
    for measure, values in gender.items():
        assert f"| {measure} | {values['difference']:.4g} |" in body
    # what a person states is escaped, inside the markdown and inside a table cell
    assert "Answering &lt;b&gt;quiz&lt;/b&gt; questions" in body and "Tiny \\| English only" in body
    assert "<b>" not in view._repr_mimebundle_()[0]["text/markdown"]


@pytest.mark.slow
def test_the_card_is_an_artifact_linked_to_its_version_and_stable_for_the_same_lineage(lineage):
    ws, view, adapter = lineage["ws"], lineage["view"], lineage["adapter"]
    art = ws.registry.resolve(view.ref)
    assert art.kind == "card" and art.metadata["of"] == adapter.ref and art.metadata["pii_scanned"] is True
    edges = {(e.source, e.relation) for e in ws.registry.upstream(art, depth=1)}
    assert edges == {(adapter.ref, EDGE)}
    assert latest_card(ws, adapter.ref).ref == view.ref
    again = lm.card(adapter.ref, intended_use="Answering <b>quiz</b> questions", limitations="Tiny | English only")
    assert again.ref == view.ref  # nothing in the card changes with time alone
    other = lm.card(adapter.ref)
    assert other.ref != view.ref and latest_card(ws, adapter.ref).ref == other.ref
    restated = lm.card(adapter.ref, intended_use="Answering <b>quiz</b> questions", limitations="Tiny | English only")
    assert restated.ref == view.ref and latest_card(ws, adapter.ref).ref == view.ref  # the statement made last
    assert lm.get_card(view.ref).markdown == view.markdown


# ---------------------------------------------------------------------- honesty and bad input


def test_a_bare_adapter_gets_not_recorded_and_no_model_index(bare, workspace):
    from huggingface_hub import ModelCard

    base, adapter = bare
    view = lm.card(adapter.ref)
    card = ModelCard(view.markdown)
    assert card.data.base_model == str(workspace.registry.checkout(base)) and card.data.eval_results is None
    body = card.text
    for section in ("## Intended use\n\nNot recorded.", "## Limitations\n\nNot recorded.",
                    "## Training data\n\nNot recorded.", "Hyperparameters: not recorded.",
                    "Weights & Biases: not recorded.", "Not recorded: no eval of this version.",
                    "Not recorded: no counterfactual fairness report"):  # fmt: skip
        assert section in body, section
    assert "model-index" not in view.markdown
    assert latest_card(workspace, base.ref) is None


def test_bad_input_is_one_line_and_writes_nothing(bare, workspace):
    lm.save_dataset("rows", [{"q": "a"}])
    before = workspace.registry.change_counter()
    cases = [
        (
            dict(ref="dataset://rows/1"),
            ValidationError,
            "describes an adapter or a model; dataset://rows/1 is a dataset",
        ),
        (dict(ref="nope"), NotFoundError, "no artifact is named 'nope'"),
        (dict(ref="adapter://bare/9"), NotFoundError, "bare"),
        (dict(ref="bare", intended_use="  "), ValidationError, "intended_use must be some text"),
    ]
    for kwargs, error, words in cases:
        with pytest.raises(error) as info:
            lm.card(**kwargs)
        assert words in str(info.value) and "\n" not in str(info.value)
    assert workspace.registry.change_counter() == before


def test_the_magic_shows_markdown_and_the_cli_prints_the_ref(bare, ip, workspace, capsys):
    from llmops_magics.adapters.cli import main

    lm.save_dataset("rows", [{"q": "a"}])
    view = ip.run_line_magic("card", 'bare --intended-use "Demos only"')
    data, meta = view._repr_mimebundle_()
    assert "## Intended use\n\nDemos only" in data["text/markdown"] and meta["llmops"]["ref"] == view.ref
    with pytest.raises(UsageError, match="dataset://rows/1 is a dataset"):
        ip.run_line_magic("card", "rows")
    capsys.readouterr()
    assert main(["--home", str(workspace.home), "card", "bare", "--limitations", "Untrained"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[-1] == "card://adapter-bare.1/2"
    assert "Untrained" in workspace.registry.read_bytes("card://adapter-bare.1/2").decode()


def test_the_sidebar_codec_shows_what_the_card_covers_and_loads_it(bare, workspace):
    from llmops_magics.kinds.codecs import CODECS

    _, adapter = bare
    view = lm.card(adapter.ref, limitations="Untrained")
    art = workspace.registry.resolve(view.ref)
    details = CODECS["card"].details(art, workspace.registry)
    assert details["of"] == adapter.ref and details["limitations"] == "Untrained"
    assert (details["evals"], details["fairness"], details["pii_scanned"]) == (0, 0, None)
    assert CODECS["card"].load(art, workspace).markdown == view.markdown


def test_replaying_a_card_writes_the_same_card_while_lineage_is_unchanged(bare, workspace):
    _, adapter = bare
    view = lm.card(adapter.ref, intended_use="Demos only")
    again = lm.replay(view.ref)
    assert again.ref == view.ref and again.value.markdown == view.markdown
