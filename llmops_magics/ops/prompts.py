"""Saving a prompt version: ``%%prompt NAME``, ``save_prompt(name, template)``, ``llmops prompt NAME --template …``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .catalog import Operation
from .spec import Spec, option

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from ..prompts import PromptVersion

__all__ = ["PromptSpec", "save_prompt", "PROMPT"]


@dataclass(frozen=True, kw_only=True)
class PromptSpec(Spec):
    """A prompt version: its template and params (the content) plus aliases and a description."""

    op = "prompt"

    name: str = option(help="Prompt name (letters, digits, '.', '_', '-').", positional=True)
    template: str = option(help="The Jinja2 template; the body of a %%prompt cell.", cell=True)
    params: Mapping[str, Any] | None = option(
        None,
        flag="--param",
        short="-p",
        help="Param key=value stored with the prompt; a default for the template variable of that name (repeatable).",
    )
    aliases: tuple[str, ...] = option(
        (), flag="--alias", short="-a", help="Alias to point at this version (repeatable)."
    )
    description: str | None = option(None, short="-d", help="What this version is for (metadata, not content).")


def save_prompt(
    name: str,
    template: str,
    *,
    params: Mapping[str, Any] | None = None,
    aliases: Sequence[str] = (),
    description: str | None = None,
    workspace: Workspace | None = None,
) -> PromptVersion:
    """Save a new version of prompt ``name`` unless this template and params are already stored.

    Saving content an older version holds returns that version and makes it ``latest``
    again (as W&B does). ``aliases`` are moved to the version returned. A body whose first
    line is ``system:``, ``user:`` or ``assistant:`` is a chat prompt.
    """
    return PROMPT.call(locals())


PROMPT = Operation(
    "prompt",
    PromptSpec,
    "llmops_magics.prompts.versions:run_save",
    "save_prompt",
    "save a prompt template as a new version (unchanged content returns the existing one)",
)
