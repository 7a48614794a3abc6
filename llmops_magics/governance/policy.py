"""The release policy: what a version needs before an alias may point at it or ``%deploy`` serves it.

Declared in the project's ``pyproject.toml``, one table per alias, and ``deploy`` for what
a deployment serves (so no alias called ``deploy`` can be governed)::

    [tool.llmops.policy.production]
    kinds = ["adapter", "model"]                 # the kinds it governs (this is the default)
    card = true                                  # a model card of this version (%card)
    pii_scan = true                              # its training data scanned, no findings
    eval = { metric = "exact_match", min = 0.8 } # an eval of it whose mean reaches min
    fairness = { max_gap = 0.05 }                # a fairness report, no gap significantly above max_gap

    [tool.llmops.policy.deploy]
    card = true

Everything is read from lineage (``card_facts``: the same facts a card states), never from
what a caller claims. A check is passed or it is named in one line of what is missing.
The policy is read and validated on every check (``project_config`` notices an edited
file): a table that names an unknown check refuses every governed move in one line, so a
typo can never let a version through unchecked.

The one choke point of alias moves is ``Registry.set_alias`` (and ``save(aliases=…)``),
which calls ``check_alias`` inside its transaction: the refusal writes nothing, and an
override's ``policy-override`` audit event commits with the move. Deploy and promote call
``require`` before anything starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import PolicyError, ValidationError

if TYPE_CHECKING:
    import sqlite3

    from ..store import Artifact, Registry

__all__ = [
    "Rule",
    "Verdict",
    "policy_check",
    "load_policy",
    "parse_policy",
    "evaluate",
    "check_alias",
    "require",
    "DEPLOY",
    "CHECKS",
]

TABLE = "[tool.llmops.policy]"
DEPLOY = "deploy"
CHECKS = ("card", "eval", "fairness", "pii_scan")
DEFAULT_KINDS = ("adapter", "model")
OVERRIDE_HINT = "add --override-policy REASON to let it through (recorded in the audit trail)"


@dataclass(frozen=True)
class Rule:
    """What one alias (or ``deploy``) requires; ``None`` for a check it does not ask for."""

    name: str
    kinds: tuple[str, ...] = DEFAULT_KINDS
    card: bool = False
    pii_max_findings: int | None = None
    eval_metric: str | None = None
    eval_min: float | None = None
    fairness_max_gap: float | None = None

    @property
    def empty(self) -> bool:
        return (
            not self.card
            and self.pii_max_findings is None
            and self.eval_metric is None
            and (self.fairness_max_gap is None)
        )


@dataclass(frozen=True)
class Verdict:
    """What ``ref`` lacks under the rules named in ``rules`` (empty ``missing``: allowed)."""

    ref: str
    rules: tuple[str, ...]
    missing: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not self.missing

    def __str__(self) -> str:
        if not self.rules:
            return f"no policy rule governs {self.ref}"
        if self.ok:
            return f"{self.ref} meets the policy ({', '.join(self.rules)})"
        return f"{self.ref} lacks, under the policy ({', '.join(self.rules)}):\n" + "\n".join(
            f"  - {m}" for m in self.missing
        )

    def _repr_mimebundle_(self, include=None, exclude=None):
        from ..display.html import esc

        items = "".join(f"<li>{esc(m)}</li>" for m in self.missing)
        head = esc(str(self).splitlines()[0])
        return {"text/plain": str(self), "text/html": f"<p>{head}</p>" + (f"<ul>{items}</ul>" if items else "")}

    def line(self) -> str:
        return (
            f"policy ({', '.join(self.rules)}) refuses {self.ref}: it needs {'; '.join(self.missing)}; {OVERRIDE_HINT}"
        )


def _number(value: Any, where: str, low: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < low:
        raise ValidationError(f"{where} must be a number ≥ {low:g}, found {value!r}")
    return float(value)


def _table(value: Any, where: str, keys: tuple[str, ...]) -> dict[str, Any]:
    if value is True:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(f"{where} must be true or a table with {', '.join(keys)}, found {value!r}")
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise ValidationError(f"{where} has unknown key(s) {', '.join(unknown)}; known: {', '.join(keys)}")
    return value


def _rule(name: str, body: Any) -> Rule:
    from ..store.refs import KINDS

    where = f"[tool.llmops.policy.{name}]"
    if not isinstance(body, dict):
        raise ValidationError(f"{where} must be a table of checks ({', '.join(CHECKS)}), found {body!r}")
    unknown = sorted(set(body) - set(CHECKS) - {"kinds"})
    if unknown:
        raise ValidationError(
            f"{where} names unknown check(s) {', '.join(map(repr, unknown))}; known: {', '.join(CHECKS)} (and kinds)"
        )
    kinds = body.get("kinds", list(DEFAULT_KINDS))
    if not isinstance(kinds, list) or not kinds or any(k not in KINDS for k in kinds):
        raise ValidationError(f"{where} kinds must be a list of {', '.join(KINDS)}, found {kinds!r}")
    values: dict[str, Any] = {"name": name, "kinds": tuple(kinds)}
    if "card" in body:
        if not isinstance(body["card"], bool):
            raise ValidationError(f"{where} card must be true or false, found {body['card']!r}")
        values["card"] = body["card"]
    if body.get("pii_scan", False) is not False:
        pii = _table(body["pii_scan"], f"{where} pii_scan", ("max_findings",))
        values["pii_max_findings"] = int(_number(pii.get("max_findings", 0), f"{where} pii_scan max_findings"))
    if "eval" in body:
        ev = _table(body["eval"], f"{where} eval", ("metric", "min"))
        if not isinstance(ev.get("metric"), str) or not ev["metric"].strip() or "min" not in ev:
            raise ValidationError(
                f'{where} eval must name a metric and its min, e.g. {{ metric = "exact_match", min = 0.8 }}'
            )
        values["eval_metric"], values["eval_min"] = (
            ev["metric"].strip(),
            _number(ev["min"], f"{where} eval min", -1e300),
        )
    if body.get("fairness", False) is not False:
        fair = _table(body["fairness"], f"{where} fairness", ("max_gap",))
        values["fairness_max_gap"] = _number(fair.get("max_gap", 0.0), f"{where} fairness max_gap")
    return Rule(**values)


def parse_policy(table: Any) -> dict[str, Rule]:
    """``[tool.llmops.policy]`` as rules by alias (and ``deploy``); a bad table is one ``ValidationError`` line."""
    if table is None:
        return {}
    if not isinstance(table, dict):
        raise ValidationError(f"{TABLE} must be a table of aliases (and deploy), found {table!r}")
    return {name: _rule(name, body) for name, body in table.items()}


def load_policy() -> dict[str, Rule]:
    """The project's policy as it is in ``pyproject.toml`` now."""
    from ..context.home import project_config

    return parse_policy(project_config().get("policy"))


def _card(reg: Registry, art: Artifact) -> str | None:
    from .cards import EDGE

    has = any(e.relation == EDGE for e in reg.downstream(art, depth=1))
    return None if has else "a model card (%card)"


def _pii(reg: Registry, art: Artifact, max_findings: int) -> list[str]:
    from .card_facts import data_facts

    data = [d for d in data_facts(reg, art) if d["relation"] in ("train_data", "data")]
    if not data:
        return ["a passing PII scan of its training data (no training data in its lineage)"]
    out = []
    for d in data:
        scan = d["pii_scan"]
        if scan is None:
            out.append(f"a PII scan of {d['ref']} (%pii scan)")
        elif (scan.get("total") or 0) > max_findings:
            out.append(
                f"a passing PII scan of {d['ref']} ({scan['ref']} found {scan['total']}, at most {max_findings})"
            )
    return out


def _eval(reg: Registry, art: Artifact, metric: str, minimum: float) -> str | None:
    from .card_facts import eval_facts

    values = [(m["value"], e["ref"]) for e in eval_facts(reg, art) for m in e["metrics"] if m["name"] == metric]
    if any(v >= minimum for v, _ in values):
        return None
    best = max(values, default=None)
    found = f"best {best[0]:.3g} in {best[1]}" if best else f"no eval of it measures {metric}"
    return f"an eval with {metric} ≥ {minimum:g} ({found})"


def _fairness(reg: Registry, art: Artifact, max_gap: float) -> str | None:
    from .card_facts import fairness_facts as reports

    found = reports(reg, art)
    if not found:
        return "a fairness report of it (%fairness)"
    newest = found[-1]  # oldest first: the newest report is the evidence
    gaps = []
    for attr, entry in newest["attributes"].items():
        for measure, v in entry["measures"].items():
            ci = v.get("ci")
            if ci and ci[0] is not None and ci[0] > max_gap:
                gaps.append(f"{attr}/{measure} {v['difference']:.3g} [{ci[0]:.3g}, {ci[1]:.3g}]")
    if not gaps:
        return None
    return f"no significant fairness gap above {max_gap:g} ({newest['ref']}: {', '.join(gaps)})"


def evaluate(reg: Registry, art: Artifact, rules: list[Rule]) -> Verdict:
    """What ``art`` lacks under ``rules`` (those that govern its kind), read from lineage."""
    missing: list[str] = []
    applied = [r for r in rules if art.kind in r.kinds and not r.empty]
    for rule in applied:
        found: list[str | None] = []
        if rule.card:
            found.append(_card(reg, art))
        if rule.pii_max_findings is not None:
            found.extend(_pii(reg, art, rule.pii_max_findings))
        if rule.eval_metric is not None:
            found.append(_eval(reg, art, rule.eval_metric, rule.eval_min or 0.0))
        if rule.fairness_max_gap is not None:
            found.append(_fairness(reg, art, rule.fairness_max_gap))
        missing.extend(m for m in found if m and m not in missing)
    return Verdict(art.ref, tuple(r.name for r in applied), tuple(missing))


def _reason(override: str | None) -> str | None:
    if override is None:
        return None
    if not isinstance(override, str) or not override.strip():
        raise ValidationError("--override-policy needs a reason, found nothing")
    return override.strip()


def check_alias(reg: Registry, cur: sqlite3.Cursor, art: Artifact, alias: str, override: str | None) -> None:
    """Called by ``Registry`` inside the transaction that would move ``alias`` to ``art``.

    Raises ``PolicyError`` (so the transaction writes nothing) or, with ``override``,
    appends the ``policy-override`` event to that same transaction.
    """
    from ..store import audit

    reason = _reason(override)
    rule = load_policy().get(alias)
    if rule is None or alias == DEPLOY:
        return
    verdict = evaluate(reg, art, [rule])
    if verdict.ok:
        return
    if reason is None:
        raise PolicyError(verdict.line())
    audit.insert(cur, "policy-override", art.ref, to_ref=art.ref, reason=reason,
                 detail={"alias": alias, "missing": list(verdict.missing)})  # fmt: skip


def require(reg: Registry, art: Artifact, names: tuple[str, ...], override: str | None, action: str) -> Verdict:
    """Check ``art`` against the rules called ``names`` before ``action`` (deploy, promote) starts anything.

    Refused: ``PolicyError``. Overridden: a ``policy-override`` event is appended now and
    the verdict returned (the caller then moves aliases with ``policy=False``).
    """
    reason = _reason(override)
    policy = load_policy()
    verdict = evaluate(reg, art, [policy[n] for n in names if n in policy])
    if verdict.ok:
        return verdict
    if reason is None:
        raise PolicyError(verdict.line())
    reg.record_event("policy-override", art.ref, to_ref=art.ref, reason=reason,
                     detail={"action": action, "rules": list(verdict.rules), "missing": list(verdict.missing)})  # fmt: skip
    return verdict


def policy_check(ref: Any, alias: str = "production", *, workspace: Any = None) -> Verdict:
    """What ``ref`` lacks before ``alias`` may point at it (``alias="deploy"``: before it is served); writes nothing."""
    from ..context.workspaces import current

    reg = (workspace or current()).registry
    rule = load_policy().get(alias)
    return evaluate(reg, reg.resolve(ref), [rule] if rule else [])
