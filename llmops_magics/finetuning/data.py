"""Turning dataset rows into training examples: prompt text, target text, token ids, labels.

Each row is rendered with the prompt template (Jinja2, the row's columns as
variables, the prompt's params as defaults); the target is the row's
``target_column`` after one space (unless the prompt already ends in
whitespace), followed by EOS so generation learns to stop. The loss covers the
target tokens only: labels are ``-100`` on the prompt and the padding.

Evaluation and serving must format prompts exactly this way; the adapter's
metadata records ``prompt_template``, ``target_column`` and ``target_prefix``
for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from ..errors import RenderError, ValidationError
from ..prompts.template import parse_template

__all__ = [
    "DEFAULT_TEMPLATES",
    "TARGET_COLUMNS",
    "default_template",
    "pick_target_column",
    "check_template",
    "render_prompt_text",
    "target_text",
    "encode_examples",
    "CausalCollator",
]

# Input column → default template, in order of preference.
DEFAULT_TEMPLATES = {
    "question": "Question: {{ question }}\nAnswer:",
    "prompt": "{{ prompt }}",
    "instruction": "{{ instruction }}\n",
    "input": "{{ input }}",
}
TARGET_COLUMNS = ("answer", "completion", "output", "response")


def pick_target_column(columns: Sequence[str]) -> str:
    for col in TARGET_COLUMNS:
        if col in columns:
            return col
    raise ValidationError(
        f"no target column: the data has {', '.join(columns)}; name the completion column with --target-column"
    )


def default_template(columns: Sequence[str], target_column: str) -> str:
    for col, template in DEFAULT_TEMPLATES.items():
        if col in columns and col != target_column:
            return template
    raise ValidationError(
        f"no default prompt for columns {', '.join(columns)}: give --prompt PROMPT_REF "
        f"(a template over the columns), or a column named {' or '.join(DEFAULT_TEMPLATES)}"
    )


def target_prefix(prompt_text: str) -> str:
    return "" if not prompt_text or prompt_text[-1].isspace() else " "


def render_prompt_text(
    template: str,
    params: Mapping[str, Any],
    row: Mapping[str, Any],
    where: str,
    chat: Callable[[list[dict[str, str]]], str] | None = None,
) -> str:
    """The prompt for one row; a chat prompt goes through the tokenizer's chat template (``chat``)."""
    parsed = parse_template(template)
    out = parsed.render({**params, **row}, where=where)
    if isinstance(out, list):
        if chat is None:
            raise ValidationError(f"{where} is a chat prompt; it needs a tokenizer with a chat template")
        return chat(out)
    return out


def target_text(prompt_text: str, row: Mapping[str, Any], target_column: str, where: str) -> str:
    value = row.get(target_column)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValidationError(f"{where}: a row has no value in target column {target_column!r}")
    return target_prefix(prompt_text) + str(value).strip()


def check_template(
    template: str, params: Mapping[str, Any], rows: Iterable[Mapping[str, Any]], target_column: str, where: str
) -> None:
    """Render the given rows now, so a missing column fails before training starts."""
    parsed = parse_template(template)
    for row in rows:
        missing = [v for v in parsed.variables if v not in row and v not in params]
        if missing:
            raise RenderError(
                f"the prompt template needs column(s) {', '.join(missing)}, which {where} lacks; "
                f"its columns are {', '.join(row)}"
            )
        if parsed.format == "text":
            text = render_prompt_text(template, params, row, where)
            target_text(text, row, target_column, where)


def encode_examples(
    rows: Sequence[Mapping[str, Any]],
    tokenizer: Any,
    template: str,
    params: Mapping[str, Any],
    target_column: str,
    max_length: int,
    where: str,
    train: bool = True,
) -> tuple[list[dict[str, Any]], int]:
    """Token ids and labels for every row, and how many rows had to be truncated."""
    eos = tokenizer.eos_token_id
    if eos is None:
        raise ValidationError("the base model's tokenizer has no EOS token; generation could not learn to stop")
    chat = None
    if getattr(tokenizer, "chat_template", None):
        chat = lambda msgs: tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    out, truncated = [], 0
    for i, row in enumerate(rows):
        prompt = render_prompt_text(template, params, row, where, chat)
        target = target_text(prompt, row, target_column, where)
        p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        t_ids = [*tokenizer(target, add_special_tokens=False)["input_ids"], eos]
        if len(p_ids) + len(t_ids) > max_length:
            truncated += 1
            t_ids = t_ids[: max(1, max_length // 2)] if len(t_ids) > max_length // 2 else t_ids
            p_ids = p_ids[len(p_ids) - (max_length - len(t_ids)) :] if max_length > len(t_ids) else []
        out.append({"input_ids": p_ids + t_ids, "labels": [-100] * len(p_ids) + t_ids, "idx": i, "train": train})
    return out, truncated


class CausalCollator:
    """Pads on the right; counts the training rows it hands out (samples, real tokens, which rows).

    The counts are each process's own record of what it trained on: under DDP
    they show that every rank did work, and on disjoint rows.
    """

    def __init__(self, pad_token_id: int) -> None:
        self.pad = pad_token_id
        self.samples = 0
        self.tokens = 0
        self.seen: list[int] = []

    def __call__(self, features: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        ids, labels, mask = [], [], []
        for f in features:
            n = len(f["input_ids"])
            ids.append([*f["input_ids"], *[self.pad] * (width - n)])
            labels.append([*f["labels"], *[-100] * (width - n)])
            mask.append([1] * n + [0] * (width - n))
        train = [f for f in features if f.get("train", True)]
        self.samples += len(train)
        self.tokens += sum(len(f["input_ids"]) for f in train)
        self.seen.extend(int(f["idx"]) for f in train)
        return {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            "attention_mask": torch.tensor(mask, dtype=torch.long),
        }
