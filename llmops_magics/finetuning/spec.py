"""What a fine-tune will do, checked and resolved before anything runs or is written.

``FinetuneSpec`` (``ops/finetune.py``) holds the caller's choices (``None`` meaning "the
default"); ``resolve_spec`` turns it into a ``ResolvedRun``: exact artifact versions, the
base model's folder and digests, the prompt template text, and every
hyperparameter filled in. Defaults come, in order, from the caller, then the
base model's ``finetune_defaults`` metadata (the tiny model ships values measured
to work on it), then ``DEFAULTS`` (each option's ``fallback``). Every error here is a ``ValidationError`` or
``NotFoundError`` raised before a run folder, registry row or W&B run exists.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..context.workspaces import Workspace
from ..errors import NotFoundError, ValidationError
from ..models.card import chat_template as folder_chat_template
from ..ops.finetune import LAUNCHERS, METHODS, FinetuneSpec
from ..ops.spec import NO_CONST
from ..store import Artifact, validate_alias, validate_name
from ..store.refs import safe_name
from .base_model import BaseModel, find_base, register_base, registered_base
from .data import check_template, default_template, pick_target_column

__all__ = ["ResolvedRun", "resolve_spec", "with_registered_base", "DEFAULTS", "METHODS", "LAUNCHERS"]

# What None resolves to when neither the caller nor the base model decides: each option's fallback.
DEFAULTS: dict[str, Any] = {o.name: o.fallback for o in FinetuneSpec.options() if o.fallback is not NO_CONST}
FULL_LR = 2e-5  # full fine-tuning moves every weight: a LoRA learning rate would wreck the model
# Below this many weight bytes a CPU run uses one thread: the matrices are too small to split, and on
# a busy machine two spinning OpenMP threads made a tiny-model step 20x slower than one (measured).
SMALL_MODEL_BYTES = 200 * 2**20


@dataclass
class ResolvedRun:
    """A spec with everything looked up: what the trainer and the registration need."""

    spec: dict[str, Any]  # every hyperparameter, resolved, plus ``defaults_from``
    base_ref: str  # "model://tiny-gpt2/1"; the folder path until the base is registered
    base_path: Path
    base_artifact: Artifact | None
    base_digest: str
    tokenizer_digest: str
    chat_template: str | None
    train: Artifact
    train_file: Path
    eval: Artifact | None
    eval_file: Path | None
    prompt: Artifact | None
    template: str
    prompt_format: str
    prompt_params: dict[str, Any]
    target_column: str
    name: str
    title: str = ""  # the name as given ("my run"); ``name`` is it made a registry name ("my-run")
    aliases: list[str] = field(default_factory=list)
    base: BaseModel | None = None  # what ``with_registered_base`` registers when base_artifact is None

    @property
    def inputs(self) -> list[tuple[Artifact, str]]:
        """Registry artifacts the output is made from, with the edge relation of each."""
        out: list[tuple[Artifact, str]] = []
        if self.base_artifact is not None:
            out.append((self.base_artifact, "base"))
        out.append((self.train, "train_data"))
        if self.eval is not None:
            out.append((self.eval, "eval_data"))
        if self.prompt is not None:
            out.append((self.prompt, "prompt"))
        return out


# Counts and rates that must be positive, by the spec's types (seed and dropout have their own rules).
INTS = tuple(name for name in DEFAULTS if FinetuneSpec.option_for(name).kind == "int" and name != "seed")
FLOATS = tuple(name for name in DEFAULTS if FinetuneSpec.option_for(name).kind == "float" and name != "dropout")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _positive(s: dict[str, Any], key: str, kind: type) -> None:
    """Check and normalise ``s[key]`` (``None`` stays ``None``: "not used")."""
    value = s[key]
    if value is None:
        return
    if not _is_number(value) or value <= 0 or (kind is int and not float(value).is_integer()):
        raise ValidationError(f"{key.replace('_', '-')} must be a positive {kind.__name__}, found {value!r}")
    s[key] = kind(value)


def _check_numbers(s: dict[str, Any]) -> None:
    if s["method"] not in METHODS:
        raise ValidationError(f"method must be one of {', '.join(METHODS)}, found {s['method']!r}")
    if s["launcher"] not in LAUNCHERS:
        raise ValidationError(f"launcher must be one of {', '.join(LAUNCHERS)}, found {s['launcher']!r}")
    for key in INTS:
        _positive(s, key, int)
    for key in FLOATS:
        _positive(s, key, float)
    if not isinstance(s["seed"], int) or isinstance(s["seed"], bool) or s["seed"] < 0:
        raise ValidationError(f"seed must be a non-negative integer, found {s['seed']!r}")
    if not _is_number(s["dropout"]) or not 0 <= s["dropout"] < 1:
        raise ValidationError(f"dropout must be in [0, 1), found {s['dropout']!r}")
    s["dropout"] = float(s["dropout"])
    if s["max_length"] < 8:
        raise ValidationError(f"max-length must be at least 8 tokens, found {s['max_length']}")
    if s["merge"] and s["method"] != "lora":
        raise ValidationError("merge applies to LoRA adapters; a full fine-tune already is a model")
    if s["nproc"] > 1 and s["launcher"] == "none":
        raise ValidationError("nproc > 1 needs a launcher: torchrun or accelerate")


def _target_modules(value: Any) -> str | list[str]:
    if value in (None, "", "all-linear", "all"):
        return "all-linear"
    if isinstance(value, str):
        value = [v.strip() for v in value.split(",")]
    mods = [str(v) for v in value if str(v).strip()]
    if not mods:
        raise ValidationError("target-modules must name at least one module (or be all-linear)")
    return mods


def _weight_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for pattern in ("*.safetensors", "*.bin") for p in folder.glob(pattern))


def _dataset(ref: str, what: str, ws: Workspace):
    from ..datasets import get_dataset

    try:
        return get_dataset(ref, workspace=ws)
    except NotFoundError as exc:
        raise NotFoundError(f"{what}: {exc}") from None


def resolve_spec(spec: FinetuneSpec, ws: Workspace, *, register: bool = True) -> ResolvedRun:
    """Check ``spec`` against the registry and fill in every default; see the module docstring.

    ``register=False`` writes nothing: a base model not registered yet keeps its folder path
    as ``base_ref`` (no earlier run can then share this spec) until ``with_registered_base``.
    """
    from ..models.loading import tokenizer_digest, tree_digest
    from ..prompts import get_prompt

    if not spec.data:
        raise ValidationError("a fine-tune needs training data: --data DATASET_REF")
    aliases = [validate_alias(a) for a in spec.aliases]
    train_ds = _dataset(spec.data, "--data", ws)
    eval_ds = _dataset(spec.eval_data, "--eval-data", ws) if spec.eval_data else None
    prompt = get_prompt(spec.prompt, workspace=ws) if spec.prompt else None
    base = find_base(spec.base, ws)
    base_path = base.path

    given = {k: v for k, v in spec.to_dict().items() if v is not None and k in DEFAULTS}
    if given.get("launcher") not in (None, "none") and "nproc" not in given:
        given["nproc"] = 2
    model_defaults = dict(base.defaults)
    s: dict[str, Any] = {**DEFAULTS, **model_defaults, **given}
    if s.get("method") == "full" and "lr" not in given:
        s["lr"] = FULL_LR
    s["target_modules"] = _target_modules(s["target_modules"])
    _check_numbers(s)

    train_split = s["train_split"]
    if train_split not in train_ds.splits:
        raise ValidationError(
            f"{train_ds.ref} has no split {train_split!r}; its splits are {', '.join(train_ds.splits)}"
        )
    if eval_ds is not None:
        eval_split = s["eval_split"] or ("validation" if "validation" in eval_ds.splits else eval_ds.splits[0])
    else:
        eval_split = s["eval_split"] or ("validation" if "validation" in train_ds.splits else None)
        if eval_split is not None:
            eval_ds = train_ds
    if eval_ds is not None and eval_split not in eval_ds.splits:
        raise ValidationError(f"{eval_ds.ref} has no split {eval_split!r}; its splits are {', '.join(eval_ds.splits)}")
    s["eval_split"] = eval_split
    if s["eval_steps"] and eval_ds is None:
        raise ValidationError(
            f"eval-steps needs evaluation data: --eval-data REF, or a validation split in {train_ds.ref}"
        )
    if s["early_stopping"] and eval_ds is None:
        raise ValidationError("early-stopping needs evaluation data: --eval-data REF or a validation split")
    if s["early_stopping"] and not s["eval_steps"]:
        raise ValidationError("early-stopping needs --eval-steps (how often to evaluate)")

    target_column = spec.target_column or pick_target_column(train_ds.columns)
    if prompt is not None:
        template, prompt_format, params = prompt.template, prompt.format, dict(prompt.params)
    else:
        template, prompt_format, params = default_template(train_ds.columns, target_column), "text", {}
    chat_template = folder_chat_template(base_path)
    if prompt_format == "chat" and not chat_template:
        raise ValidationError(f"{prompt.ref} is a chat prompt but the base model's tokenizer has no chat template")
    train_ds.require_columns([target_column])
    check_template(template, params, train_ds.records(train_split)[:1], target_column, train_ds.ref)
    if eval_ds is not None:
        eval_ds.require_columns([target_column])
        check_template(template, params, eval_ds.records(eval_split)[:1], target_column, eval_ds.ref)

    title = spec.name or f"{train_ds.name}-{s['method']}"
    if any(sep in title for sep in ("/", "\\", "..")):
        validate_name(title)  # a path or a reference is never a run name: say so rather than rewrite it
    name = safe_name(title, "finetune")
    if s["threads"] is None and _weight_bytes(base_path) < SMALL_MODEL_BYTES:
        s["threads"] = 1
    base_digest = base.artifact.digest if base.artifact is not None else tree_digest(base_path)
    base_art = registered_base(base, ws, base_digest)
    base_ref = base_art.ref if base_art is not None else str(base_path)
    resolved = {
        **s,
        "base": base_ref,
        "data": train_ds.ref,
        "eval_data": eval_ds.ref if eval_ds is not None else None,
        "prompt": prompt.ref if prompt is not None else None,
        "target_column": target_column,
        "name": title,
        "aliases": aliases,
        "defaults_from": base_ref if model_defaults else None,
    }
    resolved_run = ResolvedRun(
        spec=resolved,
        base_ref=base_ref,
        base_path=base_path,
        base_artifact=base_art,
        base_digest=base_digest,
        tokenizer_digest=tokenizer_digest(base_path),
        chat_template=chat_template,
        train=train_ds.artifact,
        train_file=train_ds.folder / f"{train_split}.jsonl",
        eval=eval_ds.artifact if eval_ds is not None else None,
        eval_file=(eval_ds.folder / f"{eval_split}.jsonl") if eval_ds is not None else None,
        prompt=prompt.artifact if prompt is not None else None,
        template=template,
        prompt_format=prompt_format,
        prompt_params=params,
        target_column=target_column,
        name=name,
        title=title,
        aliases=aliases,
        base=base,
    )
    return with_registered_base(resolved_run, ws) if register else resolved_run


def with_registered_base(run: ResolvedRun, ws: Workspace) -> ResolvedRun:
    """``run`` with its base model registered (a local folder or the tiny model), for the ``base`` edge.

    Call it only once every check has passed: it is the first write of a fine-tune.
    """
    if run.base_artifact is not None or run.base is None:
        return run
    art = register_base(run.base, ws, run.base_digest)
    spec = {**run.spec, "base": art.ref}
    if spec.get("defaults_from") == run.base_ref:
        spec["defaults_from"] = art.ref
    return replace(run, spec=spec, base_ref=art.ref, base_artifact=art, base_digest=art.digest)


def spec_key(resolved: Mapping[str, Any]) -> str:
    """What identifies "the same run" for ``resume=True``: the spec without names and aliases."""
    import hashlib

    core = {k: v for k, v in resolved.items() if k not in ("aliases", "magic", "resume", "name")}
    return hashlib.sha256(json.dumps(core, sort_keys=True, default=str).encode()).hexdigest()[:16]
