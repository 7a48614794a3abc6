"""The model-selection leaderboard: what ``compare_models`` (``ops/compare.py``) runs.

One eval answers every row with every candidate (shared batching and the generation
cache). Quality is reported as each candidate's mean with a paired-bootstrap interval of
its difference from the best candidate on the same rows: "B is 0.04 below the best,
interval [-0.09, 0.01]" says whether the gap is real at this sample size. Beside it:
latency p50/p95 and tokens per second from the same answers, time to first token p50/p95
for endpoint candidates (their requests are streamed for it), the model card (parameters,
context length, license) and the cost of 1,000 such requests at the prices in
``[tool.llmops.prices]`` (dollars per million input and output tokens; local models cost 0
unless priced).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..context.home import project_config
from ..display.html import mimebundle, table_html, text_table
from ..errors import NotFoundError, ValidationError
from ..evaluation.stats import paired_bootstrap
from ..recording.publish import publish

if TYPE_CHECKING:
    from ..ops.catalog import Call
    from ..ops.compare import CompareSpec
    from ..store import Artifact

__all__ = ["Leaderboard", "run_compare", "prices", "price_of", "price_entry"]

KIND = "selection"
_OPERATIONAL = {"latency_s", "completion_tokens", "prompt_tokens", "ttft_s"}


def prices() -> dict[str, dict[str, float]]:
    """``[tool.llmops.prices]``: ``name = { input = $/M tokens, output = $/M tokens }``."""
    table = project_config().get("prices") or {}
    out = {}
    for name, entry in table.items():
        try:
            out[name] = {"input": float(entry.get("input", 0)), "output": float(entry.get("output", 0))}
        except (AttributeError, TypeError, ValueError):
            raise ValidationError(f"[tool.llmops.prices] {name} must be {{ input = N, output = N }}") from None
    return out


def price_entry(model: str | None, table: dict[str, dict[str, float]] | None = None) -> dict[str, float] | None:
    """The price the table gives ``model`` (a reference, URL or name): by the text itself, then by its
    registry name (``model://name/3`` or ``name@alias`` → ``name``); None when it gives none."""
    table = prices() if table is None else table
    if model:
        if model in table:
            return table[model]
        name = model.split("://", 1)[-1].split("@", 1)[0].rsplit("/", 1)[0] if "://" in model else model.split("@")[0]
        if name in table:
            return table[name]
    return None


def price_of(model: str | None, table: dict[str, dict[str, float]] | None = None) -> dict[str, float]:
    """The price of ``model`` as ``price_entry`` finds it; zero for a model the table does not price."""
    entry = price_entry(model, table)
    return entry if entry is not None else {"input": 0.0, "output": 0.0}


@dataclass
class Leaderboard:
    """Rows best first (by ``primary``); ``winner`` is the first row's candidate."""

    primary: str
    rows: list[dict[str, Any]]
    eval_ref: str | None
    selection: Artifact | None = None
    examples: list[dict[str, Any]] = field(default_factory=list, repr=False)  # the eval's records: the drill-down
    labels: dict[str, str] = field(default_factory=dict)  # candidate -> its target label (A, B, ...) in ``examples``
    higher_is_better: dict[str, bool] = field(default_factory=dict)  # quality metric -> its direction (sorting)

    @property
    def winner(self) -> str:
        return self.rows[0]["candidate"]

    @property
    def ref(self) -> str | None:
        """The selection's reference when one was recorded, else the eval's."""
        return self.selection.ref if self.selection is not None else self.eval_ref

    def __str__(self) -> str:
        return text_table(*self._table())

    def __getitem__(self, candidate: str) -> dict[str, Any]:
        for row in self.rows:
            if row["candidate"] == candidate:
                return row
        raise KeyError(candidate)

    @property
    def df(self):
        import pandas as pd

        return pd.DataFrame(self.rows)

    def _table(self) -> tuple[list[str], list[list[str]]]:
        columns = list(self.rows[0]) if self.rows else []
        return columns, [[_fmt(row.get(c)) for c in columns] for row in self.rows]

    def _repr_mimebundle_(self, include=None, exclude=None):
        """The notebook's sortable panel (the ``"leaderboard"`` view) when one is installed; the table's
        text and HTML ride along, so a saved notebook still shows the table without the widget state."""
        from ..display.views import make_view

        columns, rows = self._table()
        title = f"leaderboard by {self.primary} ({self.eval_ref})"
        if self.selection is not None:
            title += f"; selected {self.winner} as {self.selection.metadata.get('alias')}"
        data = mimebundle(title + "\n" + text_table(columns, rows), table_html(columns, rows, title=title))
        view = make_view("leaderboard", self) if self.rows else None
        if view is None:
            return data
        bundle = view._repr_mimebundle_(include=include, exclude=exclude)
        widget = bundle[0] if isinstance(bundle, tuple) else bundle
        return {**data, **{k: v for k, v in widget.items() if k != "text/plain"}}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, float) for v in value):
        return f"[{value[0]:+.3f}, {value[1]:+.3f}]"
    if isinstance(value, int) and value >= 10_000:
        return f"{value:,}"
    return "-" if value is None else str(value)


def _artifact(text: str, ws: Any) -> Artifact | None:
    from .named import model_for

    try:
        return model_for(text, ws) or ws.registry.resolve(text)
    except (NotFoundError, ValidationError):
        return None  # a URL or unregistered folder: no card to show


def _card(art: Artifact | None, ws: Any) -> dict[str, Any]:
    if art is None:
        return {}
    meta = dict(art.metadata or {})
    if art.kind == "adapter" and meta.get("base_model"):
        return {
            **_card(ws.registry.resolve(meta["base_model"]), ws),
            **{k: v for k, v in meta.items() if v is not None},
        }
    if art.kind == "model" and "context_length" not in meta and not meta.get("endpoint"):
        from .card import describe_folder  # a version registered before cards were recorded

        meta.update({k: v for k, v in describe_folder(ws.registry.checkout(art)).items() if v is not None})
    return meta


def _percentile(values: list[float], q: float) -> float:
    import numpy as np

    return float(np.percentile(values, q)) if values else float("nan")


def _any_endpoint(candidates: tuple[str, ...], ws: Any) -> bool:
    """Whether a candidate is an endpoint (a URL, a registered endpoint model or a configured one): then answers
    stream, for TTFT. Registers nothing: the eval registers its targets once its inputs are checked."""
    from ..errors import InvalidReferenceError
    from ..evaluation.endpoint import is_endpoint
    from .named import configured_models, endpoint_record

    for text in candidates:
        if is_endpoint(text):
            return True
        try:
            art = ws.registry.resolve(text, "model")
        except (InvalidReferenceError, NotFoundError, ValidationError):
            art = None
        if art is not None and endpoint_record(art) is not None:
            return True
        if art is None and "endpoint" in configured_models().get(text, {}):
            return True
    return False


def run_compare(spec: CompareSpec, call: Call) -> Leaderboard:
    """Run a ``CompareSpec``: one span (``compare …``) holds the eval's trace and names the selection."""
    from ..tracing.conventions import LLMOPS_ARTIFACT_REF
    from ..tracing.spans import operation_span

    with operation_span("compare", f"compare {', '.join(spec.candidates)}", workspace=call.ws) as span:
        board = _run_compare(spec, call)
        span.set({LLMOPS_ARTIFACT_REF: board.selection.ref if board.selection is not None else board.eval_ref})
    return board


def _operational_metrics(candidates: tuple[str, ...], ws: Any) -> list[str]:
    """What every leaderboard shows besides quality (a user may have asked for some already)."""
    return ["latency", "tokens", *(["ttft"] if _any_endpoint(candidates, ws) else [])]


def _run_compare(spec: CompareSpec, call: Call) -> Leaderboard:
    from ..ops.evaluate import evaluate

    ws = call.ws
    quality = list(spec.metrics)
    result = evaluate(
        spec.candidates[0],
        compare=spec.candidates[1:],
        data=spec.data,
        prompt=spec.prompt,
        metrics=[*quality, *(m for m in _operational_metrics(spec.candidates, ws) if m not in quality)],
        limit=spec.limit,
        max_new_tokens=spec.max_new_tokens,
        n_resamples=spec.n_resamples,
        workspace=ws,
    ).wait()
    columns = [c for c in result.columns if c.name not in _OPERATIONAL and c.higher_is_better is not None]
    if not columns:
        raise ValidationError(f"none of the metrics {', '.join(quality)} ranks answers; add e.g. exact_match")
    primary = columns[0]
    labels = {t["label"]: text for t, text in zip(result.targets, spec.candidates, strict=True)}
    per: dict[str, dict[str, dict[int, float]]] = {label: {} for label in labels}
    for rec in result.records:
        for name in [c.name for c in columns] + sorted(_OPERATIONAL):
            value = rec.get(name)
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                per[rec["target"]].setdefault(name, {})[rec["example"]] = float(value)

    def mean(label: str, name: str) -> float:
        values = list(per[label].get(name, {}).values())
        return sum(values) / len(values) if values else float("nan")

    sign = 1 if primary.higher_is_better else -1
    best = max(
        labels, key=lambda lb: sign * (mean(lb, primary.name) if not math.isnan(mean(lb, primary.name)) else -1e300)
    )
    from ..evaluation.usage import price_table as readable_prices

    price_table = readable_prices()  # None when [tool.llmops.prices] is malformed (a PriceWarning, once): no dollars
    rows = []
    for label, text in labels.items():
        art = _artifact(text, ws)
        card = _card(art, ws)
        row: dict[str, Any] = {"candidate": text, "version": art.ref if art else text}
        for col in columns:
            row[col.name] = mean(label, col.name)
            a, b = per[best].get(col.name, {}), per[label].get(col.name, {})
            both = sorted(set(a) & set(b))
            deltas = [b[i] - a[i] for i in both]
            row[f"{col.name} vs best"] = (
                (0.0, 0.0) if label == best else paired_bootstrap(deltas, n_resamples=spec.n_resamples, seed=spec.seed)
            )
        latencies = list(per[label].get("latency_s", {}).values())
        row["p50 latency s"] = _percentile(latencies, 50)
        row["p95 latency s"] = _percentile(latencies, 95)
        generated = sum(per[label].get("completion_tokens", {}).values())
        row["tokens/s"] = generated / sum(latencies) if latencies and sum(latencies) > 0 else float("nan")
        if any("ttft_s" in per[lb] for lb in per):  # some candidate streamed: an endpoint
            ttfts = list(per[label].get("ttft_s", {}).values())
            row["ttft p50 s"] = _percentile(ttfts, 50)  # endpoints only: local candidates show "-"
            row["ttft p95 s"] = _percentile(ttfts, 95)
        row["parameters"] = card.get("parameters")
        row["context"] = card.get("context_length")
        row["license"] = card.get("license")
        row["$ / 1k requests"] = None
        if price_table is not None:
            price = (
                price_table.get(text) or (price_table.get(art.name) if art else None) or {"input": 0.0, "output": 0.0}
            )
            row["$ / 1k requests"] = (
                1000
                * (mean(label, "prompt_tokens") * price["input"] + mean(label, "completion_tokens") * price["output"])
                / 1e6
            )
        rows.append(row)
    rows.sort(key=lambda r: -sign * (r[primary.name] if not math.isnan(r[primary.name]) else -sign * 1e300))
    board = Leaderboard(
        primary.name,
        rows,
        result.ref,
        examples=list(result.records),
        labels={t: lb for lb, t in labels.items()},
        higher_is_better={c.name: bool(c.higher_is_better) for c in columns},
    )
    if spec.select:
        board.selection = _select(spec, call, board, result)
    return board


def _select(spec: CompareSpec, call: Call, board: Leaderboard, result: Any) -> Artifact:
    ws = call.ws
    winner = _artifact(board.winner, ws)
    if winner is None:
        raise ValidationError(f"the winner {board.winner} is not a registered model; register it to select it")
    previous = _alias_target(ws, winner, spec.select)
    ws.registry.set_alias(winner, spec.select)  # first: a release policy that refuses it leaves nothing recorded
    try:
        return _publish_selection(spec, call, board, result, winner)
    except BaseException:  # no alias moved without the selection that moved it
        if previous is None:
            ws.registry.remove_alias(winner.kind, winner.name, spec.select)
        elif previous.ref != winner.ref:
            ws.registry.set_alias(previous, spec.select, policy=False)
        raise


def _alias_target(ws: Any, art: Artifact, alias: str) -> Artifact | None:
    version = ws.registry.aliases(art.kind, art.name).get(alias)
    return None if version is None else ws.registry.get(art.kind, art.name, version)


def _publish_selection(spec: CompareSpec, call: Call, board: Leaderboard, result: Any, winner: Artifact) -> Artifact:
    ws = call.ws
    parents: list[tuple[Any, str]] = []
    for text in spec.candidates:
        art = _artifact(text, ws)
        if art is not None:
            parents.append((art, "selected" if art.ref == winner.ref else "candidate"))
    if result.artifact is not None:
        parents.append((result.artifact, "eval"))
    data_name = result.data.split("://", 1)[-1].rsplit("/", 1)[0]
    body = {"primary": board.primary, "winner": winner.ref, "alias": spec.select, "rows": board.rows}
    pinned = {  # the versions the eval used, so a replay compares the same candidates on the same rows
        "candidates": tuple(str(t.get("model") or c) for t, c in zip(result.targets, spec.candidates, strict=True)),
        "data": result.data,
        **({"prompt": result.targets[0]["prompt"]} if spec.prompt else {}),
    }
    return publish(
        ws,
        KIND,
        f"selection-{data_name}",
        spec=spec.replace(**pinned),
        call=call,
        data=json.dumps(body, sort_keys=True, default=list).encode(),
        metadata={"winner": winner.ref, "alias": spec.select, "primary": board.primary, "eval": result.ref,
                  "filename": "selection.json"},
        parents=parents,
    ).artifact  # fmt: skip
