"""``%model show``: one model version's card, as a table a person reads (and plain text)."""

from __future__ import annotations

from typing import Any

from ..display.html import kv_html, mimebundle, text_table

__all__ = ["ModelCard", "CARD_FIELDS"]

CARD_FIELDS = (
    "architecture",
    "parameters",
    "context_length",
    "dtype",
    "vocab_size",
    "license",
    "endpoint",
    "served_model",
    "key_env",
    "tokenizer_digest",
    "chat_template_digest",
    "source_path",
    "description",
)


class ModelCard:
    """What a chooser needs about ``artifact``; fields a version does not have are left out."""

    def __init__(self, artifact: Any) -> None:
        self.artifact = artifact
        meta = artifact.metadata or {}
        self.fields = {k: meta[k] for k in CARD_FIELDS if meta.get(k) is not None}
        if isinstance(self.fields.get("parameters"), int):
            self.fields["parameters"] = f"{self.fields['parameters']:,}"
        for key in ("tokenizer_digest", "chat_template_digest"):
            if key in self.fields:
                self.fields[key] = str(self.fields[key])[:12]
        self.fields["aliases"] = ", ".join(artifact.aliases) or "-"

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]

    def _repr_mimebundle_(self, include=None, exclude=None):
        plain = f"{self.artifact.ref}\n" + text_table(("field", "value"), self.fields.items())
        return mimebundle(plain, kv_html(self.fields, title=self.artifact.ref))

    def __repr__(self) -> str:
        return f"ModelCard({self.artifact.ref})"
