"""Saving a dataset version: ``%dataset NAME --from VAR_OR_PATH``, ``save_dataset(name, data)``, ``llmops dataset``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from .catalog import Operation
from .spec import Spec, option

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from ..datasets import DatasetVersion
    from ..store import Artifact

__all__ = ["DatasetSpec", "save_dataset", "DATASET", "DATA_SUFFIXES"]

DATA_SUFFIXES = (".csv", ".jsonl", ".json", ".parquet")


def _columns(value: Any) -> tuple[str, ...]:
    """``"a,b"`` or ``["a", "b"]`` → ``("a", "b")``."""
    items = value.split(",") if isinstance(value, str) else value
    return tuple(c.strip() for item in items for c in str(item).split(",") if c.strip())


def _fraction(value: float) -> float:
    if not 0 < value < 1:
        raise ValidationError(f"validation_fraction must be between 0 and 1 (exclusive), found {value!r}")
    return value


@dataclass(frozen=True, kw_only=True)
class DatasetSpec(Spec):
    """A dataset version: rows from a DataFrame, an HF dataset, rows or a file, with optional splits."""

    op = "dataset"

    name: str = option(
        help="Dataset name (letters, digits, '.', '_', '-'); 'register NAME' for a name that is a subcommand.",
        positional=True,
    )
    data: Any = option(
        flag="--from",
        short="-f",
        kind="any",
        help="A variable in the notebook (DataFrame, datasets.Dataset, list of dicts) "
        "or a .csv/.jsonl/.json/.parquet path; a dict of split name to any of these.",
    )
    validation_fraction: float | None = option(
        None, flag="--validation", short="-v", check=_fraction, help="Fraction held out as the validation split."
    )
    seed: int = option(0, help="Seed of the train/validation split.")
    required_columns: tuple[str, ...] = option(
        (), flag="--require", short="-r", check=_columns, help="Columns the data must have (comma-separated)."
    )
    aliases: tuple[str, ...] = option(
        (), flag="--alias", short="-a", help="Alias to point at this version (repeatable)."
    )
    description: str | None = option(None, short="-d", help="What this version is (metadata, not content).")

    def to_dict(self, *, stored_only: bool = True) -> dict[str, Any]:
        """As stored, ``data`` is the file's absolute path, or ``<TypeName>`` for rows held in memory."""
        out = super().to_dict(stored_only=stored_only)
        out["data"] = describe_data(self.data)
        return out


def describe_data(data: Any) -> str:
    """Where rows came from, as recorded: a path, or the kind of in-memory object in angle brackets."""
    if isinstance(data, (str, Path)):
        return str(Path(data).expanduser().resolve())
    return f"<{type(data).__name__}>"


def save_dataset(
    name: str,
    data: Any,
    *,
    validation_fraction: float | None = None,
    seed: int = 0,
    required_columns: Sequence[str] = (),
    aliases: Sequence[str] = (),
    description: str | None = None,
    workspace: Workspace | None = None,
) -> DatasetVersion:
    """Register ``data`` as a version of dataset ``name`` (unchanged data returns the existing version).

    ``data``: a DataFrame, a ``datasets.Dataset``/``DatasetDict``, a .csv/.jsonl/.json/.parquet
    path, a list of dicts, or a dict of split name to any of these. ``validation_fraction``
    splits a single table with ``seed``. ``required_columns`` must all be present. The W&B
    mirror carries a ``wandb.Table`` preview of the first rows.
    """
    return DATASET.call(locals())


def _prepare_replay(spec: DatasetSpec, art: Artifact | None, ws: Workspace) -> DatasetSpec:
    """A recorded file is read again; rows that came from memory are re-registered from the stored version."""
    origin = str(spec.data or "")
    path = Path(origin).expanduser()
    if origin and not origin.startswith("<"):
        if not path.exists():
            raise ValidationError(f"the dataset was read from {origin!r}, which no longer exists")
        return spec
    if art is None:
        raise ValidationError(
            f"its rows came from an in-memory {origin or 'object'}, which cannot be re-read; "
            "replay the artifact by reference or from its `llmops show` record"
        )
    from ..datasets import get_dataset

    version = get_dataset(art.ref, workspace=ws)
    if spec.validation_fraction is not None and spec.validation_fraction != art.spec.get("args", {}).get(
        "validation_fraction"
    ):
        raise ValidationError(
            f"{art.ref} came from an in-memory {origin or 'object'}: replay re-registers its stored splits, "
            "so validation_fraction cannot change"
        )
    rows = {split: version.records(split) for split in version.splits}
    return spec.replace(
        data=rows, validation_fraction=None, description=spec.description or art.metadata.get("description")
    )


DATASET = Operation(
    "dataset",
    DatasetSpec,
    "llmops_magics.datasets.versions:run_save",
    "save_dataset",
    "register rows (a file) as a dataset version, with an optional validation split",
    prepare_replay=_prepare_replay,
)
