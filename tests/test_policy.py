"""``[tool.llmops.policy]``: what a version needs before ``production`` points at it or it is served.

The policy is read from the test's own ``pyproject.toml`` (the workspace fixture works in
``tmp_path``) and checked against real lineage: a real PEFT adapter on the tiny model with
a ``train_data`` edge, a real Presidio scan, a real eval on the tiny model and a real
``huggingface_hub`` card. Refusals name every missing item in one line and write nothing;
an override goes through and is in the audit trail with its reason.
"""

from __future__ import annotations

import json
import textwrap

import pytest

import llmops_magics as lm
from llmops_magics.adapters.cli import main as cli
from llmops_magics.errors import PolicyError, ValidationError
from llmops_magics.governance.policy import parse_policy

PEOPLE = [{"text": "write to ann@example.com"}, {"text": "call 212-555-0100 today"}, {"text": "no names"}]


def _policy(workspace, body: str) -> None:
    (workspace.home.parent / "pyproject.toml").write_text("[tool.llmops]\n" + textwrap.dedent(body))


def _adapter(workspace, tiny_model_dir, name: str, data: str | None) -> str:
    """A real LoRA adapter of the tiny model, registered with a ``train_data`` edge as ``%finetune`` records it."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = workspace.home.parent / f"{name}-folder"
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_dir),
                           LoraConfig(r=2, target_modules=["c_attn"], fan_in_fan_out=True))  # fmt: skip
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(folder)
    reg = workspace.registry
    base = reg.save("model", "tiny-gpt2", path=tiny_model_dir).artifact
    parents = [(base, "base")] + ([(data, "train_data")] if data else [])
    meta = {"base_model": base.ref, "base_digest": base.digest}
    return reg.save("adapter", name, path=folder, metadata=meta, parents=parents).artifact.ref


@pytest.fixture
def adapter(qa_dataset, workspace, tiny_model_dir):
    return _adapter(workspace, tiny_model_dir, "qa-lora", qa_dataset.ref)


FULL = """
[tool.llmops.policy.production]
card = true
pii_scan = true
eval = { metric = "rouge_l", min = 0.5 }
fairness = true
"""


def test_a_save_asking_for_a_governed_alias_keeps_the_version_and_withholds_only_the_alias(workspace, adapter):
    _policy(workspace, FULL)
    reg = workspace.registry
    with pytest.warns(UserWarning, match="saved without alias 'production'.*a model card"):
        saved = reg.save("adapter", "qa-lora", data=b"another version", aliases=["production", "staging"])
    assert saved.created and saved.artifact.version == 2  # the work that made it is kept
    assert len(saved.withheld) == 1 and "a model card" in saved.withheld[0]
    assert reg.aliases("adapter", "qa-lora") == {"staging": 2}
    assert [(e.action, e.detail["alias"], e.to_ref) for e in lm.audit_events("adapter://qa-lora")] == [
        ("alias-set", "staging", "adapter://qa-lora/2")
    ]


def test_a_policy_refuses_a_tag_and_lists_every_missing_item(workspace, adapter, capsys):
    _policy(workspace, FULL)
    with pytest.raises(PolicyError) as info:
        workspace.registry.set_alias(adapter, "production")
    line = str(info.value)
    assert "\n" not in line and adapter in line
    for missing in ("a model card", "a PII scan of dataset://qa/1", "an eval with rouge_l ≥ 0.5", "a fairness report"):
        assert missing in line
    assert "--override-policy" in line
    assert cli(["tag", adapter, "production"]) == 2  # the CLI front: the same line, exit 2
    assert "a model card" in capsys.readouterr().err
    assert workspace.registry.aliases("adapter", "qa-lora") == {}
    assert list(lm.audit_events()) == []
    staging = workspace.registry.set_alias(adapter, "staging")  # an alias the policy does not name moves freely
    assert "staging" in staging.aliases


def test_an_override_goes_through_and_is_recorded_with_its_reason(workspace, adapter, monkeypatch):
    monkeypatch.setenv("LLMOPS_ACTOR", "release-manager")
    _policy(workspace, FULL)
    art = workspace.registry.set_alias(adapter, "production", override_policy="hotfix for ticket 42")
    assert "production" in art.aliases
    override, moved = lm.audit(adapter)
    assert (override.action, override.reason, override.actor) == ("policy-override", "hotfix for ticket 42",
                                                                   "release-manager")  # fmt: skip
    assert "a model card (%card)" in override.to_dict()["detail"]["missing"]
    assert (moved.action, moved.to_ref) == ("alias-set", adapter)
    with pytest.raises(ValidationError, match="needs a reason"):
        workspace.registry.set_alias(adapter, "production", override_policy="  ")


def test_the_magic_fronts_take_the_override(ip, workspace):
    _policy(workspace, '[tool.llmops.policy.production]\nkinds = ["prompt"]\ncard = true\n')
    lm.save_prompt("qa", "Q: {{ q }}")
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="needs a model card"):
        ip.run_line_magic("prompt", "tag qa production")
    ip.run_line_magic("prompt", 'tag qa production --override-policy "prompts carry no card"')
    assert [e.action for e in lm.audit("qa")] == ["policy-override", "alias-set"]
    assert lm.audit("qa")[0].reason == "prompts carry no card"


@pytest.mark.parametrize(
    "body, message",
    [
        ("[tool.llmops.policy.production]\ncards = true\n", "unknown check(s) 'cards'; known: card, eval, fairness"),
        ("[tool.llmops.policy.production]\neval = { metric = 'rouge_l' }\n", "eval must name a metric and its min"),
        ("[tool.llmops.policy.production]\nkinds = ['secrets']\ncard = true\n", "kinds must be a list of"),
        ("[tool.llmops.policy.production]\nfairness = { max_gap = -1 }\n", "max_gap must be a number ≥ 0"),
        ("[tool.llmops]\npolicy = 3\n", "must be a table of aliases"),
    ],
)
def test_a_bad_policy_is_one_clear_line_and_nothing_is_written(workspace, adapter, body, message):
    _policy(workspace, body.replace("[tool.llmops]\n", ""))
    changes = workspace.registry.change_counter()
    with pytest.raises(ValidationError) as info:
        workspace.registry.set_alias(adapter, "production", override_policy="an override does not mend a typo")
    assert message in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ValidationError, match="policy"):
        lm.deploy(adapter, name="never-started")
    assert workspace.registry.change_counter() == changes
    assert workspace.registry.aliases("adapter", "qa-lora") == {}
    assert list(lm.audit_events()) == []
    assert workspace.registry.list_state("deployments") == {}


def test_parse_names_each_rule_and_a_missing_table_is_no_policy():
    rules = parse_policy({"production": {"card": True, "eval": {"metric": "rouge_l", "min": 0.7}}, "deploy": {}})
    assert rules["production"].eval_metric == "rouge_l" and rules["production"].card
    assert rules["deploy"].empty
    assert parse_policy(None) == {}


@pytest.mark.slow
def test_the_policy_is_satisfied_once_a_card_and_a_good_enough_eval_exist(workspace, adapter):
    ev = lm.evaluate(adapter, data="qa", split="validation", limit=6, max_new_tokens=6, metrics="rouge_l").wait(600)
    label = ev.labels[0]
    values = [v for v in ev.values(label, "rouge_l") if v is not None]
    mean = sum(values) / len(values)  # what the eval measured, recomputed here from its examples
    _policy(
        workspace, f"[tool.llmops.policy.production]\ncard = true\neval = {{ metric = 'rouge_l', min = {mean!r} }}\n"
    )
    with pytest.raises(PolicyError) as info:
        workspace.registry.set_alias(adapter, "production")
    assert "a model card" in str(info.value) and "rouge_l" not in str(info.value)
    lm.card(adapter, intended_use="tests")
    assert "production" in workspace.registry.set_alias(adapter, "production").aliases
    assert [e.action for e in lm.audit(adapter)] == ["alias-set"]  # no override was needed
    strict = f"[tool.llmops.policy.production]\ncard = true\neval = {{ metric = 'rouge_l', min = {mean + 0.01!r} }}\n"
    _policy(workspace, strict)
    with pytest.raises(PolicyError, match=f"rouge_l ≥ {mean + 0.01:g} \\(best {mean:.3g} in eval://"):
        workspace.registry.set_alias(adapter, "production")
    assert lm.policy_check(adapter).missing == (
        f"an eval with rouge_l ≥ {mean + 0.01:g} (best {mean:.3g} in {ev.ref})",
    )


@pytest.mark.slow
def test_a_pii_scan_with_findings_fails_the_check_and_a_clean_one_passes(workspace, tiny_model_dir):
    lm.save_dataset("people", PEOPLE)
    lm.save_dataset("clean", [{"text": "nothing personal"}, {"text": "still nothing"}])
    dirty = _adapter(workspace, tiny_model_dir, "dirty", "dataset://people/1")
    clean = _adapter(workspace, tiny_model_dir, "clean", "dataset://clean/1")
    _policy(workspace, "[tool.llmops.policy.production]\npii_scan = true\n")
    assert lm.policy_check(clean).missing == ("a PII scan of dataset://clean/1 (%pii scan)",)
    scan = lm.pii_scan("people")
    lm.pii_scan("clean")
    (missing,) = lm.policy_check(dirty).missing
    assert missing.startswith(f"a passing PII scan of dataset://people/1 ({scan.ref} found {scan.total},")
    assert scan.total >= 2
    assert lm.policy_check(clean).ok
    assert "production" in workspace.registry.set_alias(clean, "production").aliases


@pytest.mark.slow
def test_deploy_and_promote_refuse_then_an_audited_override_serves(workspace, tiny_model_dir, adapter):
    _policy(workspace, "[tool.llmops.policy.deploy]\ncard = true\n[tool.llmops.policy.production]\ncard = true\n")
    with pytest.raises(PolicyError, match=r"policy \(deploy\) refuses .* a model card"):
        lm.deploy(adapter, name="svc")
    assert workspace.registry.list_state("deployments") == {}
    assert not workspace.registry.list("deployment")
    other = _adapter(workspace, tiny_model_dir, "qa-lora-2", None)
    dep = lm.deploy(adapter, name="svc", override_policy="demo", timeout=120)
    try:
        lm.set_canary("svc", f"{other}:10%", override_policy="canary for the demo")
        with pytest.raises(PolicyError, match=r"policy \(deploy, production\) refuses"):
            lm.promote_deployment("svc")
        assert lm.get_deployment("svc").state["canary"]["target"] == other  # nothing changed
        lm.promote_deployment("svc", override_policy="approved by the demo's owner")
        assert "production" in workspace.registry.resolve(other).aliases
    finally:
        lm.stop_deployment("svc")
    actions = [(e.action, e.reason) for e in lm.audit_events(action=None) if e.action != "alias-set"]
    assert [a for a, _ in actions if a not in ("alias-move",)] == [
        "policy-override", "deploy", "policy-override", "canary", "policy-override", "promote", "stop",
    ]  # fmt: skip
    assert ("policy-override", "approved by the demo's owner") in actions
    promote = lm.audit_events(action="promote")[0]
    assert (promote.from_ref, promote.to_ref) == (adapter, other)
    assert dep.name == "svc"


QUIZ = [
    {"question": "What did he tell his wife?", "answer": "hello"},
    {"question": "Where does the man live?", "answer": "Paris"},
    {"question": "Is his brother tall?", "answer": "yes"},
]


@pytest.mark.slow
def test_the_fairness_check_reads_the_newest_reports_intervals(workspace, adapter):
    _policy(workspace, "[tool.llmops.policy.production]\nfairness = { max_gap = 0.0 }\n")
    assert lm.policy_check(adapter).missing == ("a fairness report of it (%fairness)",)
    lm.save_dataset("quiz", QUIZ)
    report = lm.fairness(adapter, data="quiz", attributes="gender", max_new_tokens=4, n_resamples=200)
    stored = json.loads(workspace.registry.read_bytes(report.ref))
    significant = [f"gender/{m}" for m, v in stored["attributes"]["gender"]["measures"].items()
                   if v["difference_ci"] and v["difference_ci"][0] is not None and v["difference_ci"][0] > 0.0]  # fmt: skip
    verdict = lm.policy_check(adapter)
    if significant:
        (missing,) = verdict.missing
        assert missing.startswith(f"no significant fairness gap above 0 ({report.ref}: ")
        assert all(name in missing for name in significant)
    else:
        assert verdict.ok
    _policy(workspace, "[tool.llmops.policy.production]\nfairness = { max_gap = 1000.0 }\n")
    assert lm.policy_check(adapter).ok


def _report(workspace, adapter: str, ci: list[float]) -> str:
    """A ``fairness`` version in the stored format (``governance/fairness.py``) with a known gap interval."""
    measures = {"length": {"difference": sum(ci) / 2, "difference_ci": ci, "ratio": 0.5}}
    report = {"dataset": "dataset://quiz/1", "metric": "exact_match",
              "attributes": {"gender": {"groups": ["female", "male"], "rows": 20, "measures": measures}}}  # fmt: skip
    saved = workspace.registry.save(
        "fairness", "qa-lora-gender", data=json.dumps(report).encode(), metadata={"target": adapter},
        parents=[(adapter, "target")],
    )  # fmt: skip
    return saved.artifact.ref


def test_a_gap_whose_interval_lies_above_max_gap_is_refused_and_the_newest_report_decides(workspace, adapter):
    _policy(workspace, "[tool.llmops.policy.production]\nfairness = { max_gap = 0.05 }\n")
    wide = _report(workspace, adapter, [0.2, 0.4])
    (missing,) = lm.policy_check(adapter).missing
    assert missing == f"no significant fairness gap above 0.05 ({wide}: gender/length 0.3 [0.2, 0.4])"
    _policy(workspace, "[tool.llmops.policy.production]\nfairness = { max_gap = 0.25 }\n")
    assert lm.policy_check(adapter).ok  # the gap may be as small as 0.2: not significantly above 0.25
    _policy(workspace, "[tool.llmops.policy.production]\nfairness = { max_gap = 0.05 }\n")
    _report(workspace, adapter, [-0.1, 0.3])  # a newer report whose interval holds no gap at all
    assert lm.policy_check(adapter).ok
