"""Replaying a recorded call: ``replay(ref_or_spec)``, the core of ``llmops run``.

Every artifact stores the resolved arguments of the call that made it (``artifact.spec``,
``op`` naming the call). ``replay`` maps that spec back onto the public function and
calls it again; identical content comes back as the same version, as for any save::

    op                     call
    save_prompt            save_prompt(name, template, params, aliases, description)
    save_dataset           save_dataset(name, data, ...)  data: the recorded file, else the stored rows
    finetune               finetune(...).wait()           -> the adapter (or model, method="full")
    finetune-merge         finetune(...).wait()           -> its merged model
    evaluate               evaluate(target=targets, ...)
    deploy                 deploy(target, ...)            starts a server, like %deploy
    register_model_folder  register_model_folder(path)   the local base folder, registered again
    tiny_base_model        tiny_base_model(spec=TinyModelSpec(...))

References in a spec are pinned versions (``dataset://qa/1``, never ``@latest``), so a replay
uses the same inputs even after newer versions were saved. A spec may be given as a dict, a
JSON file (the bare spec, or an artifact record as ``llmops show`` prints it) or a reference.
Fields recorded for people (``magic``, ``cell``) or derived from the others are not passed on;
any other field the op does not take is an error, never silently dropped. What cannot be
replayed faithfully is refused with a ``ValidationError`` before anything is written:
a prompt spec without its template, rows that came from an in-memory object with no stored
version to re-register, an API key (only its use is recorded).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..context.workspaces import Workspace, current
from ..errors import NotFoundError, ValidationError
from ..store import Artifact
from ..store.records import thaw

__all__ = ["replay", "plan_replay", "ReplayPlan", "ReplayResult", "OPS"]

PROVENANCE = ("magic", "cell")  # what a person typed: recorded, never passed as an argument
DATA_SUFFIXES = (".csv", ".jsonl", ".json", ".parquet")
HIDDEN = "***"


@dataclass(frozen=True)
class _Source:
    """Where a spec came from: the artifact it was stored with, or the record ``llmops show`` printed."""

    origin: str
    artifact: Artifact | None = None
    record: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class _Op:
    function: str
    args: tuple[str, ...]  # the spec fields that are arguments, in the function's order
    derived: tuple[str, ...] = ()  # recorded results of resolution: the arguments already imply them
    extras: tuple[str, ...] = ()  # arguments a spec may add that the op never records (a template, a key)
    required: tuple[str, ...] = ()
    suffix: str = ""

    @property
    def accepted(self) -> tuple[str, ...]:
        return self.args + self.extras


_EVAL_ARGS = (
    "targets", "data", "split", "metrics", "model", "prompt", "limit", "max_new_tokens", "temperature", "seed",
    "batch_size", "stop", "target_column", "judge_model", "judge_prompt", "judge_k", "judge_temperature",
    "endpoint_model", "api_key", "name", "cache", "fail_on_regression", "n_resamples", "min_delta",
)  # fmt: skip
_EVAL_FIXED = {"alpha": 0.05, "judge_max_new_tokens": 8}  # recorded, but evaluate() always uses these
_DEPLOY_ARGS = (
    "target", "prompt", "name", "port", "host", "canary", "engine", "max_batch_size", "max_wait_ms",
    "default_max_tokens", "log_text", "reference_data", "threads", "metrics_interval", "ray_address", "replicas",
)  # fmt: skip


def _ops() -> dict[str, _Op]:
    from ..finetuning.spec import FinetuneSpec
    from ..models.tiny import TinyModelSpec

    finetune = tuple(FinetuneSpec.__dataclass_fields__)
    return {
        "save_prompt": _Op(
            "save_prompt", ("name", "params", "aliases", "description"), extras=("template",), required=("name",)
        ),
        "save_dataset": _Op(
            "save_dataset",
            ("name", "from", "validation_fraction", "seed", "required_columns", "aliases"),
            extras=("description",),
            required=("name",),
        ),
        "finetune": _Op("finetune", finetune, derived=("defaults_from",), required=("data",), suffix=".wait()"),
        "finetune-merge": _Op("finetune", finetune, derived=("defaults_from",), required=("data",), suffix=".wait()"),
        "evaluate": _Op("evaluate", _EVAL_ARGS, derived=("target_details", *_EVAL_FIXED), required=("targets", "data")),
        "deploy": _Op("deploy", _DEPLOY_ARGS, derived=("auth",), extras=("api_key", "timeout"), required=("target",)),
        "register_model_folder": _Op("register_model_folder", ("path",), required=("path",)),
        "tiny_base_model": _Op("tiny_base_model", tuple(TinyModelSpec.__dataclass_fields__)),
    }


@dataclass(frozen=True)
class ReplayResult:
    """What a replay did: the op, the call it made, and the reference of what that produced."""

    op: str
    call: str
    ref: str | None  # None for a dry run
    origin: str
    value: Any = field(default=None, repr=False, compare=False)  # what the call returned
    dry_run: bool = False

    def __str__(self) -> str:
        if self.dry_run:
            return f"{self.op} (dry run, nothing written): {self.call}"
        return f"{self.op}: {self.call} -> {self.ref}"

    def _repr_mimebundle_(self, include=None, exclude=None):
        from ..display.html import kv_html, mimebundle

        pairs = {"replayed": self.origin, "op": self.op, "call": self.call, "ref": self.ref or "(dry run)"}
        return mimebundle(str(self), kv_html(pairs, title="replay"), {"ref": self.ref} if self.ref else None)


@dataclass(frozen=True)
class ReplayPlan:
    """The call a spec maps to, checked but not made; ``execute()`` makes it."""

    op: str
    function: str
    kwargs: Mapping[str, Any]
    origin: str
    suffix: str = ""
    shown: Mapping[str, str] = field(default_factory=dict)  # arguments printed as a description
    _invoke: Callable[[dict[str, Any]], Any] | None = field(default=None, repr=False, compare=False)
    _ref_of: Callable[[Any], str] | None = field(default=None, repr=False, compare=False)

    @property
    def call(self) -> str:
        def show(key: str, value: Any) -> str:
            if key in self.shown:
                return self.shown[key]
            return repr(HIDDEN) if key == "api_key" and value is not None else repr(value)

        args = ", ".join(f"{k}={show(k, v)}" for k, v in self.kwargs.items())
        return f"{self.function}({args}){self.suffix}"

    def execute(self) -> ReplayResult:
        assert self._invoke is not None and self._ref_of is not None
        value = self._invoke(dict(self.kwargs))
        return ReplayResult(self.op, self.call, self._ref_of(value), self.origin, value)

    def __str__(self) -> str:
        return self.call


def replay(
    spec_or_ref: Any,
    *,
    workspace: Workspace | None = None,
    dry_run: bool = False,
    overrides: Mapping[str, Any] | None = None,
) -> ReplayResult:
    """Make the recorded call again and return what it produced (see the module docstring).

    ``spec_or_ref``: a spec dict, a path to a JSON file (a spec, or an artifact record as
    ``llmops show`` prints it), or an artifact reference (its stored spec is used).
    ``overrides`` replaces arguments (``{"name": "qa-v2", "max_steps": 4}``); their keys
    are checked like the spec's. ``dry_run`` checks and describes the call, writing nothing.
    A fine-tune is waited for.
    """
    plan = plan_replay(spec_or_ref, workspace=workspace, overrides=overrides)
    if dry_run:
        return ReplayResult(plan.op, plan.call, None, plan.origin, dry_run=True)
    return plan.execute()


def plan_replay(
    spec_or_ref: Any, *, workspace: Workspace | None = None, overrides: Mapping[str, Any] | None = None
) -> ReplayPlan:
    """The call ``replay`` would make, checked; nothing is written (the registry is only read)."""
    ws = workspace or current()
    spec, source = _load(spec_or_ref, ws)
    op_name = spec.pop("op", None)
    ops = _ops()
    if op_name not in ops:
        raise ValidationError(f"{source.origin}: op must be one of {', '.join(ops)}, found {op_name!r}")
    op = ops[op_name]
    extra = dict(overrides or {})
    for what, keys, allowed in (
        ("field", spec, (*op.accepted, *op.derived, *PROVENANCE)),
        ("override", extra, op.accepted),
    ):
        unknown = sorted(k for k in keys if k not in allowed)
        if unknown:
            raise ValidationError(
                f"{source.origin}: unknown {what}(s) {', '.join(unknown)} for {op_name}; "
                f"its arguments are {', '.join(op.accepted)}"
            )
    values = {k: v for k, v in spec.items() if k in op.accepted}
    missing = [k for k in op.required if {**values, **extra}.get(k) is None]
    if missing:
        raise ValidationError(f"{source.origin}: {op_name} needs {', '.join(missing)}, found none")
    build = _BUILDERS[op_name]
    kwargs, shown, invoke, ref_of = build(values, extra, spec, source, ws)
    return ReplayPlan(op_name, op.function, kwargs, source.origin, op.suffix, shown, invoke, ref_of)


def _ordered(kwargs: dict[str, Any], fn: Callable[..., Any]) -> dict[str, Any]:
    """``kwargs`` in the order of ``fn``'s parameters, so the printed call reads like the signature."""
    import inspect

    names = list(inspect.signature(fn).parameters)
    return {k: kwargs[k] for k in sorted(kwargs, key=lambda k: names.index(k) if k in names else len(names))}


# ---------------------------------------------------------------------------- reading the input


def _load(value: Any, ws: Workspace) -> tuple[dict[str, Any], _Source]:
    if isinstance(value, Mapping):
        return _from_mapping(value, _Source("spec dict"))
    if not isinstance(value, (str, Path)):
        raise ValidationError(f"replay takes a spec dict, a JSON file or a reference, found {type(value).__name__}")
    path = Path(value).expanduser()
    if path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValidationError(f"spec file {str(path)!r} is not JSON: {exc}") from None
        if not isinstance(data, Mapping):
            raise ValidationError(f"spec file {str(path)!r} must hold a JSON object, found {type(data).__name__}")
        return _from_mapping(data, _Source(str(path)))
    text = str(value)
    if path.exists() or text.endswith(".json") or text.startswith((".", "~", "/")):
        what = "is a folder, not a spec file" if path.exists() else "does not exist"
        raise NotFoundError(f"spec file {text!r} {what}")
    art = ws.registry.resolve(text)
    if not art.spec:
        raise ValidationError(f"{art.ref} has no recorded spec to replay")
    return thaw(art.spec), _Source(art.ref, artifact=art)


def _from_mapping(data: Mapping[str, Any], source: _Source) -> tuple[dict[str, Any], _Source]:
    if "op" in data:
        return thaw(data), source
    if isinstance(data.get("spec"), Mapping) and "ref" in data:
        if not data["spec"]:
            raise ValidationError(f"{data['ref']} has no recorded spec to replay")
        return thaw(data["spec"]), _Source(f"{data['ref']} ({source.origin})", record=thaw(data))
    raise ValidationError(f"{source.origin} is neither a spec (no 'op' field) nor an artifact record (no 'spec')")


def _artifact(source: _Source, ws: Workspace, why: str) -> Artifact:
    """The stored version a spec belongs to; a record must match this registry's version by digest."""
    if source.artifact is not None:
        return source.artifact
    record = source.record
    if record is None:
        raise ValidationError(f"{why}; replay the artifact by reference or from its `llmops show` record")
    try:
        art = ws.registry.resolve(record["ref"])
    except NotFoundError:
        art = None
    if art is None or art.digest != record.get("digest"):
        raise ValidationError(
            f"{why}, and this registry does not hold {record['ref']} with digest {record.get('digest')}"
        )
    return art


# ---------------------------------------------------------------------------- one builder per op

Built = tuple[dict[str, Any], dict[str, str], Callable[[dict[str, Any]], Any], Callable[[Any], str]]


def _prompt(values, extra, spec, source: _Source, ws: Workspace) -> Built:
    from ..prompts import save_prompt

    kwargs = {**values, **extra}
    if "template" not in kwargs:
        content = (source.record or {}).get("content")
        if isinstance(content, Mapping) and "template" in content:
            kwargs["template"] = content["template"]
        else:
            art = _artifact(source, ws, "a save_prompt spec holds no template (the template is the prompt's content)")
            kwargs["template"] = json.loads(ws.registry.read_bytes(art))["template"]
    return _ordered(kwargs, save_prompt), {}, lambda kw: save_prompt(**kw, workspace=ws), lambda v: v.ref


def _dataset(values, extra, spec, source: _Source, ws: Workspace) -> Built:
    from ..datasets import get_dataset, save_dataset

    kwargs = {**values, **extra}
    origin = str(kwargs.pop("from", "") or "")
    path = Path(origin).expanduser()
    shown: dict[str, str] = {}
    if origin and (path.exists() or origin.startswith(("/", "~")) or path.suffix.lower() in DATA_SUFFIXES):
        if not path.exists():
            raise NotFoundError(f"the dataset was read from {origin!r}, which no longer exists")
        kwargs["data"] = origin
    else:
        art = _artifact(source, ws, f"its rows came from an in-memory {origin or 'object'}, which cannot be re-read")
        changed = sorted(k for k in ("validation_fraction", "seed") if k in extra)
        if changed:
            raise ValidationError(
                f"{art.ref} came from an in-memory {origin or 'object'}: replay re-registers its stored splits, "
                f"so {', '.join(changed)} cannot change"
            )
        version = get_dataset(art.ref, workspace=ws)
        kwargs["data"] = {split: version.records(split) for split in version.splits}
        kwargs["validation_fraction"] = None
        kwargs.setdefault("description", art.metadata.get("description"))
        counts = ", ".join(f"{s}={len(r)}" for s, r in kwargs["data"].items())
        shown["data"] = f"<stored rows of {art.ref}: {counts}>"
    return _ordered(kwargs, save_dataset), shown, lambda kw: save_dataset(**kw, workspace=ws), lambda v: v.ref


def _finetune(values, extra, spec, source: _Source, ws: Workspace) -> Built:
    from ..finetuning import finetune

    kwargs = {**values, **extra}

    def run(kw: dict[str, Any]):
        return finetune(**kw, workspace=ws).wait()

    return _ordered(kwargs, finetune), {}, run, lambda v: v.artifact.ref


def _finetune_merge(values, extra, spec, source, ws) -> Built:
    kwargs, shown, run, _ = _finetune(values, extra, spec, source, ws)
    return kwargs, shown, run, lambda v: (v.merged or v.artifact).ref


def _evaluate(values, extra, spec, source: _Source, ws: Workspace) -> Built:
    from ..evaluation import evaluate

    for key, default in _EVAL_FIXED.items():
        if key in spec and spec[key] != default:
            raise ValidationError(
                f"{source.origin}: {key}={spec[key]!r} is recorded, but evaluate() has no {key} argument"
            )
    kwargs = {**values, **extra}
    if kwargs.get("api_key") == HIDDEN and "api_key" not in extra:
        raise ValidationError(
            f"{source.origin}: the eval used an API key, which is never stored; give it again (--set api_key=KEY)"
        )
    kwargs["target"] = kwargs.pop("targets")
    return _ordered(kwargs, evaluate), {}, lambda kw: evaluate(**kw, workspace=ws), lambda v: v.ref


def _deploy(values, extra, spec, source: _Source, ws: Workspace) -> Built:
    from ..serving import deploy

    kwargs = {**values, **extra}
    if spec.get("auth") and not kwargs.get("api_key"):
        raise ValidationError(
            f"{source.origin}: the deployment required an API key, which is never stored (only its hash, on the server); "
            "give it again (--set api_key=KEY)"
        )
    canary = kwargs.get("canary")
    if isinstance(canary, Mapping):
        kwargs["canary"] = f"{canary['target']}:{canary['weight']:g}%"
    return _ordered(kwargs, deploy), {}, lambda kw: deploy(**kw, workspace=ws), lambda v: v.ref


def _model_folder(values, extra, spec, source: _Source, ws: Workspace) -> Built:
    def run(kw: dict[str, Any]) -> Artifact:
        from ..finetuning.base_model import find_base, register_base
        from ..models.loading import tree_digest

        base = find_base(str(kw["path"]), ws)
        return register_base(base, ws, base.artifact.digest if base.artifact else tree_digest(base.path))

    return {**values, **extra}, {}, run, lambda v: v.ref


def _tiny(values, extra, spec, source: _Source, ws: Workspace) -> Built:
    from ..models.tiny import TinyModelSpec, tiny_base_model

    kwargs = {"spec": TinyModelSpec(**{**values, **extra})}
    return kwargs, {}, lambda kw: tiny_base_model(ws, **kw), lambda v: v.ref


_BUILDERS: dict[str, Callable[..., Built]] = {
    "save_prompt": _prompt,
    "save_dataset": _dataset,
    "finetune": _finetune,
    "finetune-merge": _finetune_merge,
    "evaluate": _evaluate,
    "deploy": _deploy,
    "register_model_folder": _model_folder,
    "tiny_base_model": _tiny,
}
OPS = tuple(_BUILDERS)
