"""Versioned prompt templates (text or chat) with aliases, diff and render."""

from .template import ParsedTemplate, parse_template
from .versions import PromptVersion, get_prompt, list_prompts, prompt_history, render_prompt, tag_prompt
from .views import PromptDiff, PromptHistory, diff_prompts

__all__ = [
    "ParsedTemplate",
    "PromptDiff",
    "PromptHistory",
    "PromptVersion",
    "diff_prompts",
    "get_prompt",
    "list_prompts",
    "parse_template",
    "prompt_history",
    "render_prompt",
    "tag_prompt",
]
