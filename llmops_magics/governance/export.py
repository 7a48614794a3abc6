"""``export(REF, FOLDER)``: a folder that plain ``transformers`` + ``peft`` load, with its model card.

What leaves the registry must stand on its own: the version's files as stored (PEFT's
``adapter_config.json`` and weights, or a full model's), the tokenizer (the base's when
the version has none), and the card as ``README.md``. An adapter's
``adapter_config.json`` is rewritten to name the base's folder in this registry, the
same path as the card's ``base_model``: the folder it was trained from may be gone.

The folder is built beside the destination and renamed into place, so a failed export
leaves nothing half-written; an existing folder that is not empty is refused unless
``force``, and ``force`` never replaces a folder that holds the registry, the working
directory or a home directory.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from .card_facts import base_of, subject
from .cards import card_for, latest_card

if TYPE_CHECKING:
    from ..ops.card import ExportSpec
    from ..ops.catalog import Call

__all__ = ["Exported", "run_export", "TOKENIZER_FILES"]

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
                   "tokenizer.model", "added_tokens.json", "chat_template.jinja")  # fmt: skip


@dataclass(frozen=True)
class Exported:
    """Where ``ref`` was written, which files, and which card (``card_ref`` None: written for the export)."""

    ref: str
    folder: Path
    files: tuple[str, ...]
    card_ref: str | None
    base_model: str | None

    def _summary(self) -> dict[str, Any]:
        return {"exported": self.ref, "folder": str(self.folder), "files": ", ".join(self.files),
                "card": self.card_ref or "written from lineage for this export (not stored)",
                "base model": self.base_model or "not recorded"}  # fmt: skip

    def __str__(self) -> str:
        return "\n".join(f"{k}: {v}" for k, v in self._summary().items())

    def _repr_mimebundle_(self, include=None, exclude=None):
        from ..display.html import kv_html, mimebundle

        return mimebundle(str(self), kv_html(self._summary(), title="export"), {"ref": self.ref})


def _check_destination(dest: Path, force: bool, home: Path) -> None:
    if dest.exists() and not dest.is_dir():
        raise ValidationError(f"folder {dest} is a file, not a folder; nothing exported")
    entries = list(dest.iterdir()) if dest.is_dir() else []
    if not entries:
        return
    if not force:
        raise ValidationError(f"folder {dest} is not empty ({len(entries)} entries); pass force=True (--force) "
                              "to replace it, or choose a new folder; nothing exported")  # fmt: skip
    guarded = {Path.cwd().resolve(), Path.home().resolve(), home.resolve(), Path(dest.anchor)}
    if any(g == dest or dest in g.parents for g in guarded) or (dest / "registry.db").exists():
        raise ValidationError(f"folder {dest} holds the registry, the working directory or a home; "
                              "--force replaces only an export folder; nothing exported")  # fmt: skip


def _write(tmp: Path, source: Path, base: Path | None, markdown: str, kind: str) -> None:
    for item in source.iterdir():
        if item.name == "README.md":
            continue
        if item.is_dir():
            shutil.copytree(item, tmp / item.name, copy_function=shutil.copyfile)
        else:
            shutil.copyfile(item, tmp / item.name)
    has_tokenizer = any((tmp / name).is_file() for name in ("tokenizer.json", "tokenizer_config.json"))
    if not has_tokenizer and base is not None:
        for name in TOKENIZER_FILES:
            if (base / name).is_file():
                shutil.copyfile(base / name, tmp / name)
    config = tmp / "adapter_config.json"
    if kind == "adapter" and base is not None and config.is_file():
        data = json.loads(config.read_text())
        data["base_model_name_or_path"] = str(base)
        config.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    (tmp / "README.md").write_text(markdown, encoding="utf-8")


def run_export(spec: ExportSpec, call: Call) -> Exported:
    ws = call.ws
    reg = ws.registry
    art = subject(reg, spec.ref)
    dest = Path(spec.folder).expanduser().resolve()
    _check_destination(dest, spec.force, reg.home)
    stored = latest_card(ws, art)
    markdown = reg.read_bytes(stored).decode() if stored is not None else card_for(ws, art).markdown
    base = base_of(reg, art)
    base_path = Path(base["path"]) if base else None
    source = reg.checkout(art)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
    tmp.chmod(0o755)  # mkdtemp's 0700 would make the export private
    try:
        _write(tmp, source, base_path, markdown, art.kind)
        if dest.is_dir():
            shutil.rmtree(dest) if any(dest.iterdir()) else dest.rmdir()
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    files = tuple(sorted(p.name for p in dest.iterdir()))
    reg.record_event("export", art.ref, to_ref=str(dest), detail={"card": stored.ref if stored else None})
    return Exported(art.ref, dest, files, stored.ref if stored else None, str(base_path) if base_path else None)
