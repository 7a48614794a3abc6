"""Artifact references, one syntax everywhere (magics, Python API, CLI, REST).

``kind://name/3``      version 3
``kind://name@alias``  whatever ``alias`` points at (``latest`` is automatic)
``kind://name``        the latest version (the one saved most recently)
``name``, ``name/3``, ``name@alias``   the same with the kind left to the caller
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InvalidReferenceError, ValidationError

KINDS = (
    "prompt",
    "dataset",
    "model",
    "adapter",
    "eval",
    "deployment",
    "selection",
    "abtest",
    "monitor",
    "pii-scan",
    "fairness",
    "pipeline",
    "card",
)
LATEST = "latest"
MAX_NAME = 128

MAX_VERSION = 2**63 - 1  # SQLite's INTEGER


def version_number(text: str) -> int | None:
    """``text`` as a version number, or None: ASCII digits only ("²".isdigit() is true) and within SQLite's range."""
    if not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if 1 <= number <= MAX_VERSION else None


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_REF_RE = re.compile(
    r"^(?:(?P<kind>[a-z]+(?:-[a-z]+)*)://)?(?P<name>[^/@\s]+)(?:/(?P<version>[^/@\s]+)|@(?P<alias>[^/@\s]+))?$"
)

__all__ = ["Reference", "parse_reference", "validate_name", "validate_alias", "validate_kind", "KINDS"]


def validate_name(name: object, what: str = "name") -> str:
    """Names become W&B artifact names and URL segments: letters, digits, ``. _ -``, ≤128."""
    if not isinstance(name, str) or not name.strip():
        raise ValidationError(f"{what} must be a non-empty string, found {name!r}")
    if len(name) > MAX_NAME:
        raise ValidationError(f"{what} must be at most {MAX_NAME} characters, found {len(name)}")
    if "/" in name or "\\" in name or ".." in name:
        raise ValidationError(f"{what} must not contain path separators or '..', found {name!r}")
    if not _NAME_RE.match(name):
        raise ValidationError(
            f"{what} may hold only letters, digits, '.', '_' and '-' and must start with a "
            f"letter or digit, found {name!r}"
        )
    return name


def safe_name(text: str, fallback: str = "artifact") -> str:
    """``text`` made a valid name: runs of other characters become ``-``, cut to ``MAX_NAME``.

    For names people type freely (a run called "my run") or take from elsewhere (a folder,
    a URL): the registry name is then ``my-run``, and the text as typed is kept beside it.
    """
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", text.strip())
    name = re.sub(r"\.{2,}", ".", name).lstrip("._-")[:MAX_NAME].rstrip("._-")
    return name or fallback


def validate_alias(alias: object) -> str:
    validate_name(alias, "alias")
    assert isinstance(alias, str)
    if alias.isdigit():
        raise ValidationError(f"alias must not be a number (it would read as a version), found {alias!r}")
    if alias == LATEST:
        raise ValidationError("alias 'latest' is automatic: it always points at the most recently saved version")
    return alias


def validate_kind(kind: object) -> str:
    if kind not in KINDS:
        raise ValidationError(f"kind must be one of {', '.join(KINDS)}, found {kind!r}")
    return kind  # type: ignore[return-value]


@dataclass(frozen=True)
class Reference:
    kind: str | None
    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        head = f"{self.kind}://{self.name}" if self.kind else self.name
        if self.version is not None:
            return f"{head}/{self.version}"
        if self.alias is not None and self.alias != LATEST:
            return f"{head}@{self.alias}"
        return head

    def with_kind(self, kind: str) -> Reference:
        return Reference(kind, self.name, self.version, self.alias)


def parse_reference(text: object, kind: str | None = None) -> Reference:
    """Parse ``text``; ``kind`` fills in a missing kind and must agree with an explicit one."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidReferenceError(f"reference must be a non-empty string, found {text!r}")
    m = _REF_RE.match(text.strip())
    if not m:
        raise InvalidReferenceError(f"reference {text!r} is not of the form kind://name/3, kind://name@alias or name")
    ref_kind = m["kind"]
    if ref_kind is not None and ref_kind not in KINDS:
        raise InvalidReferenceError(
            f"reference {text!r}: unknown kind {ref_kind!r}; expected one of {', '.join(KINDS)}"
        )
    if kind is not None and ref_kind is not None and ref_kind != kind:
        raise InvalidReferenceError(f"reference {text!r} names a {ref_kind}, but a {kind} is expected here")
    try:
        name = validate_name(m["name"])
    except ValidationError as exc:
        raise InvalidReferenceError(f"reference {text!r}: {exc}") from None
    version = None
    if m["version"] is not None:
        version = version_number(m["version"])
        if version is None:
            raise InvalidReferenceError(
                f"reference {text!r}: version must be a positive integer, found {m['version']!r}"
            )
    alias = m["alias"]
    if alias is not None and alias != LATEST:
        try:
            validate_name(alias, "alias")
        except ValidationError as exc:
            raise InvalidReferenceError(f"reference {text!r}: {exc}") from None
    return Reference(ref_kind or kind, name, version, alias)
