"""Model cards: ``%card ADAPTER`` writes a Hugging Face model card from lineage and stores it.

The card is a real ``huggingface_hub.ModelCard``: YAML front matter from ``ModelCardData``
(``base_model``, ``datasets``, ``license``, ``library_name``, the evals as ``model-index``)
and a markdown body, so the Hub, ``ModelCard.load`` and any tool that reads cards read it.
Its facts come from ``card_facts.gather`` only; what lineage does not hold is written as
"not recorded". Intended use and limitations are what a person states (``--intended-use``,
``--limitations``): the registry cannot know them.

A card is a ``card`` artifact whose content is the README (``card://adapter-qa-lora.2/1``), linked
``card_of`` from the version it describes; the body holds no time of writing, so the same
lineage and statements give the same version. ``latest_card(ws, ref)`` is the newest card
of one version (what a release policy asks for); ``export`` writes it as ``README.md``.

``base_model`` names the base's folder in this registry (its checkout, verified against
its digest): the project's bases are local folders, and that is the path plain
``transformers`` loads.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .card_facts import gather, subject

if TYPE_CHECKING:
    from huggingface_hub import ModelCard

    from ..context.workspaces import Workspace
    from ..ops.card import CardSpec
    from ..ops.catalog import Call
    from ..store import Artifact

__all__ = ["CardView", "build_card", "run_card", "get_card", "latest_card", "card_for", "card_name", "KIND", "EDGE"]

KIND = "card"
EDGE = "card_of"
NOT_RECORDED = "not recorded"
TRAINING_METRICS = ("train_loss", "eval_loss", "global_step", "epoch", "train_runtime", "train_tokens")


def _md(value: Any) -> str:
    """Text from the registry or a person, safe inside markdown and a table cell."""
    return html.escape(" ".join(str(value).split())).replace("|", "\\|")


def _num(x: Any) -> str:
    return f"{x:.4g}" if isinstance(x, float) else str(x)


def _ci(pair: Any) -> str:
    return f"[{_num(pair[0])}, {_num(pair[1])}]" if pair and pair[0] is not None else "-"


def _table(columns: list[str], rows: list[list[Any]]) -> str:
    head = f"| {' | '.join(columns)} |\n|{'---|' * len(columns)}\n"
    return head + "".join(f"| {' | '.join(_md(c) for c in row)} |\n" for row in rows)


def _card_data(facts: dict[str, Any], license: str | None):
    from huggingface_hub import EvalResult, ModelCardData

    subj, base = facts["subject"], facts["base"]
    results = [
        EvalResult(
            task_type="text-generation",
            task_name="Text generation",
            dataset_type=ev["data"].split("://")[-1].split("/")[0],
            dataset_name=ev["data"],
            dataset_split=ev["split"],
            dataset_revision=ev["data_digest"],
            metric_type=m["name"],
            metric_value=round(m["value"], 6),
            verified=False,
            metric_name=f"{m['name']} (n={m['n']}, 95% CI {_ci(m['ci'])})",
        )
        for ev in facts["evals"]
        for m in ev["metrics"]
    ]
    return ModelCardData(
        base_model=base["path"] if base else None,
        datasets=list(dict.fromkeys(d["ref"] for d in facts["data"])) or None,
        license=license or (base or {}).get("license"),
        library_name="peft" if subj["kind"] == "adapter" else "transformers",
        pipeline_tag="text-generation",
        tags=[
            "llmops-magics",
            subj["kind"],
            *([str(facts["hyperparameters"]["method"])] if facts["hyperparameters"].get("method") else []),
        ],
        model_name=subj["name"],
        eval_results=results or None,
        llmops={"ref": subj["ref"], "digest": subj["digest"], "base": (base or {}).get("ref")},
    )


def _body(facts: dict[str, Any], intended_use: str | None, limitations: str | None) -> str:
    s, base = facts["subject"], facts["base"]
    out = [f"# {_md(s['name'])}\n",
           f"{s['kind'].capitalize()} `{_md(s['ref'])}` (digest `{s['digest'][:12]}`), registered {s['created']}, "
           "described from its lineage in an llmops-magics registry.\n"]  # fmt: skip
    out.append("## Base model\n")
    if base:
        ref = f"`{_md(base['ref'])}`, digest `{(base['digest'] or '?')[:12]}`, " if base["ref"] else ""
        out.append(f"{ref}folder `{_md(base['path'])}`; license: {_md(base['license'] or NOT_RECORDED)}.\n")
    else:
        out.append(f"{NOT_RECORDED.capitalize()}.\n")
    out += ["## Intended use\n", f"{_md(intended_use) if intended_use else NOT_RECORDED.capitalize() + '.'}\n"]
    out += ["## Limitations\n", f"{_md(limitations) if limitations else NOT_RECORDED.capitalize() + '.'}\n"]
    out.append("## Training data\n")
    if facts["data"]:
        rows = []
        for d in facts["data"]:
            pii = d["pii_scan"]
            part = f" of the first {pii['limit']} row(s)" if pii and pii["limit"] else ""
            scan = (f"{pii['total']} finding(s) in {pii['texts_scanned']} text(s){part} ({pii['ref']}, {'patterns only' if pii['model'] == 'blank' else pii['model']})"
                    + (": " + ", ".join(f"{e} {n}" for e, n in sorted(pii["by_entity"].items())) if pii["total"]
                       else "") if pii else "no PII scan recorded")  # fmt: skip
            if d["redacted_from"]:
                scan += f"; redacted from {d['redacted_from']}"
            rows.append([d["ref"], d["relation"], d["rows"] if d["rows"] is not None else "?", d["digest"][:12], scan])
        out.append(_table(["dataset", "used as", "rows", "digest", "PII scan"], rows))
    else:
        out.append(f"{NOT_RECORDED.capitalize()}.\n")
    out.append("## Training procedure\n")
    hp = facts["hyperparameters"]
    out.append(_table(["hyperparameter", "value"], [[k, v if isinstance(v, str) else json.dumps(v)]
                                                    for k, v in hp.items()])
               if hp else f"Hyperparameters: {NOT_RECORDED}.\n")  # fmt: skip
    tm = facts["training_metrics"]
    shown = {k: tm[k] for k in TRAINING_METRICS if k in tm} or tm
    out.append(f"Training metrics: {', '.join(f'{_md(k)} {_num(v)}' for k, v in shown.items()) or NOT_RECORDED}.\n")
    w = facts["wandb"]
    run = (f"run `{_md(w['run_id'])}`" + (f" in project `{_md(w['project'])}`" if w.get("project") else "")
           + (f" ({_md(w['mode'])})" if w.get("mode") else "") if w else NOT_RECORDED)  # fmt: skip
    out.append(f"Weights & Biases: {run}.\n")
    if facts["libraries"]:
        out.append(f"Libraries: {', '.join(f'{_md(k)} {_md(v)}' for k, v in facts['libraries'].items())}.\n")
    out.append("## Evaluation\n")
    rows = [[ev["ref"], ev["data"], ev["split"] or "all", m["name"], _num(m["value"]), _ci(m["ci"]), m["n"]]
            for ev in facts["evals"] for m in ev["metrics"]]  # fmt: skip
    out.append(_table(["eval", "data", "split", "metric", "mean", "95% CI", "n"], rows) if rows
               else f"{NOT_RECORDED.capitalize()}: no eval of this version.\n")  # fmt: skip
    out.append("## Fairness\n")
    rows = [
        [f["ref"], attr, ", ".join(a["groups"] or []), a["rows"], m, _num(v["difference"]), _ci(v["ci"])]
        for f in facts["fairness"]
        for attr, a in f["attributes"].items()
        for m, v in a["measures"].items()
    ]
    out.append(_table(["report", "attribute", "groups", "rows", "measure", "largest gap", "95% CI"], rows) if rows
               else f"{NOT_RECORDED.capitalize()}: no counterfactual fairness report of this version.\n")  # fmt: skip
    out.append("## How to load\n")
    out.append(_snippet(s["kind"]))
    return "\n".join(out)


def _snippet(kind: str) -> str:
    if kind == "adapter":
        code = ("from huggingface_hub import ModelCard\nfrom peft import PeftModel\n"
                "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
                'card = ModelCard.load("FOLDER/README.md")\n'
                "base = AutoModelForCausalLM.from_pretrained(card.data.base_model)\n"
                'model = PeftModel.from_pretrained(base, "FOLDER")\ntokenizer = AutoTokenizer.from_pretrained("FOLDER")\n')  # fmt: skip
    else:
        code = ("from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
                'model = AutoModelForCausalLM.from_pretrained("FOLDER")\n'
                'tokenizer = AutoTokenizer.from_pretrained("FOLDER")\n')  # fmt: skip
    return f"With the folder `llmops export` wrote (FOLDER):\n\n```python\n{code}```\n"


def build_card(facts: dict[str, Any], *, intended_use: str | None = None, limitations: str | None = None,
               license: str | None = None) -> ModelCard:  # fmt: skip
    """A ``huggingface_hub.ModelCard`` stating ``facts`` (from ``card_facts.gather``)."""
    from huggingface_hub import ModelCard

    data = _card_data(facts, license)
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{_body(facts, intended_use, limitations)}")


@dataclass
class CardView:
    """A model card: ``.card`` (``huggingface_hub.ModelCard``), ``.markdown`` (the README), ``.facts``.

    In a notebook it displays as rendered markdown (the body; the YAML as a code block).
    """

    of: str
    markdown: str
    facts: dict[str, Any] = field(default_factory=dict, repr=False)
    artifact: Artifact | None = field(default=None, repr=False)

    @property
    def ref(self) -> str | None:
        return self.artifact.ref if self.artifact is not None else None

    @property
    def card(self) -> ModelCard:
        from huggingface_hub import ModelCard

        return ModelCard(self.markdown)

    def __str__(self) -> str:
        return self.markdown

    def _repr_mimebundle_(self, include=None, exclude=None):
        _, yaml, body = self.markdown.split("---\n", 2)
        where = f"*{self.ref}*, " if self.ref else "*not stored*, "
        shown = f"{where}card of `{self.of}`\n\n{body.strip()}\n\n<details><summary>Card metadata</summary>\n\n```yaml\n{yaml}```\n</details>\n"  # fmt: skip
        meta = {"llmops": {"ref": self.ref, "of": self.of}}
        return {"text/plain": self.markdown, "text/markdown": shown}, meta


def card_for(ws: Workspace, art: Artifact, spec: CardSpec | None = None) -> CardView:
    """The card of ``art`` as lineage stands now, not stored (``export`` uses it when no card is)."""
    facts = gather(ws.registry, art)
    kwargs = {k: getattr(spec, k) for k in ("intended_use", "limitations", "license")} if spec else {}
    return CardView(art.ref, str(build_card(facts, **kwargs)), facts)


def run_card(spec: CardSpec, call: Call) -> CardView:
    from ..recording.publish import publish

    ws = call.ws
    art = subject(ws.registry, spec.ref)
    view = card_for(ws, art, spec)
    meta = {"of": art.ref, "of_digest": art.digest, "base_model": view.card.data.base_model,
            "intended_use": spec.intended_use, "limitations": spec.limitations, "license": view.card.data.license,
            "evals": len(view.facts["evals"]), "fairness": len(view.facts["fairness"]),
            "pii_scanned": all(d["pii_scan"] for d in view.facts["data"]) if view.facts["data"] else None,
            "filename": "README.md"}  # fmt: skip
    resolved = spec.replace(ref=art.ref)
    name = card_name(art)
    view.artifact = publish(ws, KIND, name, spec=resolved, call=call, data=view.markdown.encode(),
                            metadata=meta, parents=[(art, EDGE)]).artifact  # fmt: skip
    return view


def get_card(ref: str, *, workspace: Workspace | None = None) -> CardView:
    """A stored card (``card://adapter-qa-lora.2/1``) read back."""
    from ..context.workspaces import current

    ws = workspace or current()
    art = ws.registry.resolve(ref, KIND)
    return CardView(str(art.metadata.get("of")), ws.registry.read_bytes(art).decode(), artifact=art)


def card_name(art: Artifact) -> str:
    """``adapter-qa-lora.2``: one name per described version, never the version's own name (a bare
    ``qa-lora`` must stay unambiguous), so its ``latest`` is the card stated last, even when that
    statement repeats an earlier version's content."""
    return f"{art.kind}-{art.name}"[:120] + f".{art.version}"


def latest_card(ws: Workspace, ref: Any) -> Artifact | None:
    """The card stated last for the version ``ref`` names (not another version's), else None."""
    from ..store.refs import parse_reference

    reg = ws.registry
    art = reg.resolve(ref)
    names = {parse_reference(e.target).name for e in reg.downstream(art, depth=1) if e.relation == EDGE}
    cards = [reg.resolve(f"{KIND}://{name}") for name in names]
    return max(cards, key=lambda a: (a.created_at, a.id), default=None)
