"""Model cards and export: ``%card REF`` / ``card(ref)`` / ``llmops card REF`` and
``%export REF FOLDER`` / ``export(ref, folder)`` / ``llmops export REF FOLDER``.

A card states what the registry knows of an adapter or model (its base, training data
with digests and PII scans, hyperparameters, evals as ``model-index``, fairness gaps,
the W&B run) and what a person states (intended use, limitations), as a Hugging Face
``ModelCard`` stored as a ``card`` artifact. An export writes a folder that plain
``transformers`` + ``peft`` load without this project: the weights, the tokenizer and
the card as ``README.md``. See ``governance/cards.py`` and ``governance/export.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ValidationError
from .catalog import Operation
from .spec import Spec, option

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from ..governance.cards import CardView
    from ..governance.export import Exported

__all__ = ["CardSpec", "ExportSpec", "card", "export", "CARD", "EXPORT"]

_STATEMENT_MAX = 4000


def _statement(what: str):
    def check(value: str | None) -> str | None:
        if value is None:
            return None
        text = value.strip()
        if not text:
            raise ValidationError(f"{what} must be some text, found {value!r}")
        if len(text) > _STATEMENT_MAX:
            raise ValidationError(f"{what} must be at most {_STATEMENT_MAX} characters, found {len(text)}")
        return text

    return check


def _folder(value: str) -> str:
    if not str(value).strip():
        raise ValidationError("folder must name a folder to write, found nothing")
    return str(value)


@dataclass(frozen=True, kw_only=True)
class CardSpec(Spec):
    """Which version the card describes, and what a person states about it."""

    op = "card"

    ref: str = option(positional=True, help="Adapter or model version to describe (qa-lora, adapter://qa-lora/2).")
    intended_use: str | None = option(None, check=_statement("intended_use"),
                                      help="What the model is for (default: not recorded).")  # fmt: skip
    limitations: str | None = option(None, check=_statement("limitations"),
                                     help="Known limitations and risks (default: not recorded).")  # fmt: skip
    license: str | None = option(None, check=_statement("license"),
                                 help="License identifier (default: the base model's, when its folder states one).")  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class ExportSpec(Spec):
    """Which version goes to which folder."""

    op = "export"

    ref: str = option(positional=True, help="Adapter or model version to export (qa-lora, adapter://qa-lora/2).")
    folder: str = option(positional=True, check=_folder, help="Folder to write (new or empty unless --force).")
    force: bool = option(False, stored=False, help="Replace the folder's contents when it is not empty.")


def card(
    ref: str,
    *,
    intended_use: str | None = None,
    limitations: str | None = None,
    license: str | None = None,
    workspace: Workspace | None = None,
) -> CardView:
    """Write and store the model card of ``ref`` (see the module docstring).

    Returns a ``CardView``: ``.card`` (a ``huggingface_hub.ModelCard``), ``.markdown``,
    ``.facts`` (what lineage held) and ``.ref`` (``card://adapter-NAME.VERSION/N``); it displays as markdown.
    """
    return CARD.call(locals())


def export(ref: str, folder: str, *, force: bool = False, workspace: Workspace | None = None) -> Exported:
    """Write ``ref`` as a folder plain transformers + PEFT load: weights, tokenizer, the card as README.md.

    The card is the version's newest stored one, else one written from lineage now (not
    stored). An adapter's ``adapter_config.json`` names the base's folder, as the card's
    ``base_model`` does. A folder that is not empty is refused unless ``force``.
    """
    return EXPORT.call(locals())


CARD = Operation(
    "card",
    CardSpec,
    "llmops_magics.governance.cards:run_card",
    "card",
    "write a model card (Hugging Face format) from lineage and store it as a card artifact",
)
EXPORT = Operation(
    "export",
    ExportSpec,
    "llmops_magics.governance.export:run_export",
    "export",
    "write an adapter or model as a folder plain transformers + PEFT load, with its card as README.md",
    ref_of=lambda value, stored: str(value.folder),
)
