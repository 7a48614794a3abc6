"""Personal data: ``%pii scan REF`` / ``pii_scan(ref)`` / ``llmops pii-scan REF`` and
``%pii redact DATASET`` / ``pii_redact(dataset)`` / ``llmops pii-redact DATASET``.

A scan counts what Microsoft Presidio finds (patterns with checksums always; person,
location and organisation when ``[tool.llmops.governance] pii_model`` names a spaCy
model) per entity type and column of a dataset, an eval's outputs, a prompt or a
deployment's request log, and stores a ``pii-scan`` artifact. A redaction makes a new
dataset version with what it finds replaced, masked or hashed, linked ``redacted_from``
the version it read. Nothing goes online: see ``governance/engine.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import ValidationError
from ..governance.entities import DEFAULT_THRESHOLD, OPERATORS, PATTERN_ENTITIES, parse_entities
from .catalog import Operation
from .datasets import _columns
from .spec import Spec, option

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from ..datasets import DatasetVersion
    from ..governance.scan import PiiScan

__all__ = ["PiiScanSpec", "PiiRedactSpec", "pii_scan", "pii_redact", "PII_SCAN", "PII_REDACT"]

_ENTITIES_HELP = (
    f"Entity types, comma-separated (default: {','.join(PATTERN_ENTITIES)}, plus PERSON,LOCATION,ORGANIZATION "
    "when [tool.llmops.governance] pii_model names a spaCy model)."
)


def _threshold(value: float) -> float:
    if not 0 <= value <= 1:
        raise ValidationError(f"threshold must be a number from 0 to 1, found {value!r}")
    return value


def _limit(value: int) -> int:
    if value < 1:
        raise ValidationError(f"limit must be a positive integer, found {value!r}")
    return value


def _name(value: str) -> str:
    from ..store.refs import validate_name

    return validate_name(value)


@dataclass(frozen=True, kw_only=True)
class PiiScanSpec(Spec):
    """What to scan, for which entity types, in which columns, above which score."""

    op = "pii-scan"

    ref: str = option(
        positional=True,
        help="What to scan: a dataset, an eval (its outputs), a prompt, or a deployment (its request log).",
    )
    entities: tuple[str, ...] = option((), short="-e", repeat=True, parse=",".join, check=parse_entities,
                                       help=_ENTITIES_HELP)  # fmt: skip
    columns: tuple[str, ...] = option(
        (),
        short="-c",
        check=_columns,
        help="Columns to scan, comma-separated (default: a dataset's text columns, an eval's output, "
        "a log's input_text,output_text).",
    )
    threshold: float = option(DEFAULT_THRESHOLD, check=_threshold, help="Lowest Presidio score that counts.")
    limit: int | None = option(None, check=_limit, help="Scan only the first N rows (a request log: the newest N).")
    name: str | None = option(
        None, check=_name, help="Name of the pii-scan artifact (default: KIND-NAME of the source)."
    )


@dataclass(frozen=True, kw_only=True)
class PiiRedactSpec(Spec):
    """Which dataset, which entity types in which columns, and how they are replaced."""

    op = "pii-redact"

    dataset: str = option(positional=True, help="Dataset version to redact (qa, qa/2, dataset://qa@golden).")
    entities: tuple[str, ...] = option((), short="-e", repeat=True, parse=",".join, check=parse_entities,
                                       help=_ENTITIES_HELP)  # fmt: skip
    operator: str = option(
        "replace",
        short="-o",
        choices=OPERATORS,
        help="replace: <EMAIL_ADDRESS>; mask: *****; hash: salted SHA-256 (the same value hashes alike).",
    )
    columns: tuple[str, ...] = option(
        (), short="-c", check=_columns, help="Columns to redact, comma-separated (default: every text column)."
    )
    threshold: float = option(DEFAULT_THRESHOLD, check=_threshold, help="Lowest Presidio score that is redacted.")
    name: str | None = option(
        None, check=_name, help="Dataset the redacted rows are saved as (default: the same name)."
    )
    aliases: tuple[str, ...] = option(
        (), flag="--alias", short="-a", help="Alias to point at the new version (repeatable)."
    )


def pii_scan(
    ref: str,
    *,
    entities: str | Sequence[str] = (),
    columns: str | Sequence[str] = (),
    threshold: float = DEFAULT_THRESHOLD,
    limit: int | None = None,
    name: str | None = None,
    workspace: Workspace | None = None,
) -> PiiScan:
    """Count personal data in ``ref`` and store a ``pii-scan`` artifact (see the module docstring).

    Returns a ``PiiScan``: ``.counts[entity][column]``, ``.by_entity``, ``.total``,
    ``.findings`` (row, column, start, end, entity, score), ``.ref``; it displays the
    texts with their findings highlighted.
    """
    return PII_SCAN.call(locals())


def pii_redact(
    dataset: str,
    *,
    entities: str | Sequence[str] = (),
    operator: str = "replace",
    columns: str | Sequence[str] = (),
    threshold: float = DEFAULT_THRESHOLD,
    name: str | None = None,
    aliases: Sequence[str] = (),
    workspace: Workspace | None = None,
) -> DatasetVersion:
    """A new version of ``dataset`` with its personal data replaced, masked or hashed, linked ``redacted_from`` it."""
    return PII_REDACT.call(locals())


PII_SCAN = Operation(
    "pii-scan",
    PiiScanSpec,
    "llmops_magics.governance.scan:run_scan",
    "pii_scan",
    "count personal data (Presidio) in a dataset, an eval's outputs, a prompt or a request log",
)
PII_REDACT = Operation(
    "pii-redact",
    PiiRedactSpec,
    "llmops_magics.governance.redact:run_redact",
    "pii_redact",
    "save a new dataset version with its personal data replaced, masked or hashed",
)
