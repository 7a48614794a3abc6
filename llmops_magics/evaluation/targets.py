"""What an eval runs: targets (a model, an adapter, a local folder, a prompt version, an endpoint).

A target is a *model* (``LocalBackend`` or ``EndpointBackend``) plus a *prompt source*
that turns a data row into what the model is sent:

1. a prompt version, when the target is a prompt reference (its model is ``model=``)
   or ``prompt=`` is given;
2. an adapter's training template (``metadata["prompt_template"]``), so an adapter is
   evaluated in the format it was trained on;
3. in a comparison, a model without a template of its own borrows the template of the
   first adapter target, so base and fine-tuned see the same prompts and only the
   weights differ;
4. otherwise the row's ``prompt``, ``input`` or ``question`` column, as it is.

Resolving targets reads the registry (and an endpoint's model list, to recognise a
``%deploy`` deployment of this registry): nothing is loaded or written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import NotFoundError, ValidationError
from ..prompts.template import ParsedTemplate, parse_template
from ..store import Artifact
from .endpoint import EndpointBackend, is_endpoint, normalize_url
from .generations import LocalBackend

__all__ = ["PromptSource", "Target", "resolve_targets", "resolve_backend", "deployment_behind", "INPUT_COLUMNS"]

INPUT_COLUMNS = ("prompt", "input", "question")
LABELS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True)
class PromptSource:
    """How a row becomes a prompt: a template (with params as defaults) or one column as is."""

    label: str
    parsed: ParsedTemplate | None = None
    column: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    artifact: Artifact | None = None

    @property
    def variables(self) -> tuple[str, ...]:
        if self.parsed is None:
            return (self.column,) if self.column else ()
        return self.parsed.required(self.params)

    @property
    def chat(self) -> bool:
        return self.parsed is not None and self.parsed.format == "chat"

    def render(self, row: Mapping[str, Any], where: str) -> str | list[dict[str, str]]:
        if self.parsed is None:
            return str(row[self.column])  # type: ignore[index]
        return self.parsed.render({**self.params, **row}, where=where)


@dataclass
class Target:
    """One side of an eval: ``label`` is A, B, … in the order given (A is the baseline)."""

    label: str
    model_ref: str
    backend: Any
    prompt: PromptSource
    inputs: list[tuple[Artifact, str]] = field(default_factory=list)
    adapter: Artifact | None = None
    deployment: Artifact | None = None  # the registered deployment behind an endpoint target
    cache: Any = None
    is_prompt: bool = False  # given as a prompt reference (run by ``model=``)

    def log_likelihoods(self, examples: Sequence[Any], continuations: Sequence[str]) -> list[tuple[float, int]]:
        """Log-likelihood of each continuation given the example's prompt (cached like generations)."""
        from .cache import cache_key

        payloads = [[dict(m) for m in ex.messages] if ex.messages else ex.prompt for ex in examples]
        identity = self.backend.identity
        if identity is None or self.cache is None:
            return self.backend.log_likelihoods(payloads, continuations)
        keys = [cache_key("loglik", identity, [p, c], {}) for p, c in zip(payloads, continuations, strict=True)]
        hits = self.cache.get_many(keys)
        todo = [i for i, k in enumerate(keys) if k not in hits]
        if todo:
            fresh = self.backend.log_likelihoods([payloads[i] for i in todo], [continuations[i] for i in todo])
            new = {keys[i]: list(v) for i, v in zip(todo, fresh, strict=True)}
            self.cache.put_many(new)
            hits.update(new)
        return [(float(hits[k][0]), int(hits[k][1])) for k in keys]

    @property
    def name(self) -> str:
        """What the user would call it: the prompt for prompt-vs-prompt evals, else the model."""
        if self.prompt.artifact is not None and self.prompt.artifact.kind == "prompt":
            return f"{self.prompt.artifact.ref} on {self.model_ref}"
        return self.model_ref

    @property
    def ref(self) -> str:
        """The target as given, pinned to a version: what replaying the eval passes."""
        if self.is_prompt and self.prompt.artifact is not None:
            return self.prompt.artifact.ref
        return self.model_ref

    def to_spec(self) -> dict[str, Any]:
        spec = {"label": self.label, "model": self.model_ref, "prompt": self.prompt.label}
        if self.deployment is not None:
            spec["deployment"] = self.deployment.ref
        return spec


def deployment_behind(backend: EndpointBackend, ws: Any) -> Artifact | None:
    """The deployment artifact of this registry that an endpoint serves, else ``None``.

    A ``%deploy`` server lists its deployment version first (``llmops.deployment``) and
    each arm with the artifact it serves (``llmops.version``, ``llmops.digest``). The
    deployment counts only when it resolves here and every arm's artifact resolves here
    with the same digest, so a server of another registry that happens to reuse the
    names is treated like any foreign endpoint.
    """
    infos = [e["llmops"] for e in backend.listed_models() if isinstance(e.get("llmops"), Mapping)]
    ref = next((i["deployment"] for i in infos if i.get("deployment")), None)
    if ref is None:
        return None
    reg = ws.registry
    try:
        deployment = reg.resolve(str(ref), "deployment")
        for info in infos:
            if info.get("arm") and reg.resolve(str(info.get("version"))).digest != info.get("digest"):
                return None
    except (NotFoundError, ValidationError):
        return None
    return deployment


def resolve_backend(
    ref: str | Path, ws: Any, *, batch_size: int = 16, endpoint_model: str | None = None, api_key: str | None = None
):
    """A model reference, a local folder or an endpoint URL to ``(backend, canonical ref, lineage inputs)``."""
    from ..models.loading import resolve_model_source

    if is_endpoint(ref):
        url = normalize_url(str(ref))
        backend = EndpointBackend(url, model=endpoint_model, api_key=api_key, concurrency=batch_size)
        deployment = deployment_behind(backend, ws)
        return backend, url, [] if deployment is None else [(deployment, "deployment")]
    registered = _endpoint_model(ref, ws)
    if registered is not None:
        from ..models.named import endpoint_key, endpoint_record

        rec = endpoint_record(registered)
        backend = EndpointBackend(
            rec["endpoint"], model=rec["served_model"], api_key=endpoint_key(rec["key_env"]), concurrency=batch_size
        )
        return backend, registered.ref, [(registered, "model")]
    src = resolve_model_source(ref, ws)
    inputs: list[tuple[Artifact, str]] = []
    if src.artifact is not None and src.artifact.kind == "adapter":
        inputs.append((src.artifact, "adapter"))
    if src.base_artifact is not None:
        inputs.append((src.base_artifact, "model"))
    if src.artifact is not None:
        canonical = src.artifact.ref
    else:
        canonical = str(src.adapter_path or src.base_path)
    return LocalBackend(src, canonical, workspace=ws), canonical, inputs


def register_folders(targets: Sequence[Target], ws: Any) -> None:
    """Once every check has passed: a model folder target becomes its registered version (content-addressed,
    as for ``--base`` and ``%deploy``), so the eval links to it and its stored spec pins it."""
    from ..models.named import model_for

    for t in targets:
        if t.backend.kind == "local" and "://" not in t.model_ref and (Path(t.model_ref) / "config.json").is_file():
            art = model_for(t.model_ref, ws)
            if art is not None:
                t.model_ref = t.backend.label = art.ref
                t.inputs.append((art, "model"))


def _endpoint_model(ref: str | Path, ws: Any) -> Artifact | None:
    """The registered endpoint model ``ref`` names, if it names one."""
    from ..models.named import endpoint_record, model_for

    if isinstance(ref, Path) or Path(str(ref)).expanduser().is_dir():
        return None
    try:
        art = ws.registry.resolve(str(ref))
    except NotFoundError:
        art = model_for(str(ref), ws)
    return art if art is not None and art.kind == "model" and endpoint_record(art) else None


def _prompt_version(ref: str, ws: Any):
    from ..prompts import get_prompt

    return get_prompt(ref, workspace=ws)


def _from_version(pv) -> PromptSource:
    return PromptSource(pv.ref, pv.parsed, None, dict(pv.params), pv.artifact)


def _adapter_template(adapter: Artifact, ws: Any) -> tuple[PromptSource | None, list[tuple[Artifact, str]]]:
    meta = adapter.metadata
    inputs: list[tuple[Artifact, str]] = []
    prompt_ref = meta.get("prompt")
    pv = None
    if prompt_ref:
        try:
            pv = _prompt_version(str(prompt_ref), ws)
            inputs.append((pv.artifact, "prompt"))
        except NotFoundError:
            pv = None
    text = meta.get("prompt_template")
    if text:
        return PromptSource(f"{adapter.ref} prompt_template", parse_template(str(text))), inputs
    if pv is not None:
        return _from_version(pv), inputs
    return None, inputs


def _column_source(columns: Sequence[str]) -> PromptSource:
    for c in INPUT_COLUMNS:
        if c in columns:
            return PromptSource(f"column {c}", column=c)
    raise ValidationError(
        f"no prompt for the data: pass a prompt (prompt=/--prompt) or give the data a "
        f"{'/'.join(INPUT_COLUMNS)} column; its columns are {', '.join(columns)}"
    )


def _classify(text: str, ws: Any) -> tuple[str, Artifact | None]:
    """``endpoint``, ``path``, ``prompt`` or ``model`` (registered model or adapter)."""
    if is_endpoint(text):
        return "endpoint", None
    if not text.startswith(("prompt://", "model://", "adapter://")) and Path(text).expanduser().is_dir():
        return "path", None
    try:
        art = ws.registry.resolve(text)
    except NotFoundError:
        from ..models.named import model_for

        art = model_for(text, ws)
        if art is None:
            raise NotFoundError(
                f"target {text!r} is not a registered model, adapter or prompt, a local model folder, "
                "a name in [tool.llmops.models], or an http(s) URL"
            ) from None
    if art.kind == "prompt":
        return "prompt", art
    if art.kind in ("model", "adapter"):
        return "model", art
    raise ValidationError(f"target {art.ref} is a {art.kind}; expected a model, adapter, prompt or endpoint URL")


def split_names(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def grid(targets: Sequence[str], model: str | None, prompt: str | None) -> list[tuple[str, str | None]]:
    """The (target, prompt) cells an eval runs: the matrix promptfoo users rely on.

    Without targets, ``model="m1,m2"`` and ``prompt="p1,p2"`` make every model run every
    prompt (models outer, prompts inner); with targets, each target runs each prompt. A
    single model and prompt target keeps its meaning: the prompt target is run by the model.
    """
    prompts: list[str | None] = list(split_names(prompt)) or [None]
    texts = [str(t).strip() for t in targets]
    if not texts:
        texts = split_names(model)
        if not texts:
            raise ValidationError("give at least one target: a model, adapter, prompt reference or endpoint URL")
    return [(t, p) for t in texts for p in prompts]


def resolve_targets(
    targets: Sequence[str],
    ws: Any,
    columns: Sequence[str],
    *,
    model: str | None = None,
    prompt: str | None = None,
    batch_size: int = 16,
    endpoint_model: str | None = None,
    api_key: str | None = None,
) -> list[Target]:
    cells = grid(targets, model, prompt)
    if len(cells) > len(LABELS):
        raise ValidationError(f"at most {len(LABELS)} targets can be compared, found {len(cells)}")
    versions = {p: _prompt_version(p, ws) for p in {p for _, p in cells if p}}
    out: list[Target] = []
    for label, (text, prompt_ref) in zip(LABELS, cells, strict=False):
        kind, art = _classify(text, ws)
        inputs: list[tuple[Artifact, str]] = []
        source: PromptSource | None = None
        if kind == "prompt":
            models = split_names(model)
            if len(models) != 1:
                raise ValidationError(
                    f"target {art.ref} is a prompt; say which model runs it (model=/--model, one model)"
                )
            source = _from_version(_prompt_version(art.ref, ws))
            model_text = models[0]
        else:
            model_text = art.ref if art is not None else text
            if prompt_ref is not None:
                source = _from_version(versions[prompt_ref])
        backend, canonical, model_inputs = resolve_backend(
            model_text, ws, batch_size=batch_size, endpoint_model=endpoint_model, api_key=api_key
        )
        inputs += model_inputs
        adapter = next((a for a, rel in model_inputs if rel == "adapter"), None)
        deployment = next((a for a, rel in model_inputs if rel == "deployment"), None)
        if source is None and adapter is not None:
            source, extra = _adapter_template(adapter, ws)
            inputs += extra
        if source is not None and source.artifact is not None:
            inputs.append((source.artifact, "prompt"))
        out.append(
            Target(label, canonical, backend, source, inputs, adapter, deployment, is_prompt=kind == "prompt")  # type: ignore[arg-type]
        )
    borrowed = next((t.prompt for t in out if t.prompt is not None and t.adapter is not None), None)
    for t in out:
        if t.prompt is None:
            t.prompt = borrowed or _column_source(columns)
    return out
