"""Turning what a data scientist has (a DataFrame, a file, a list of dicts, an HF Dataset) into rows.

Rows are stored as canonical JSON lines (sorted keys), so the same data always has
the same digest whatever it was loaded from.
"""

from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ValidationError
from ..inputs import MAX_COLUMNS, check_depth, check_file_size, lines, loads
from ..inputs.files import MAX_JSON_FILE_BYTES

__all__ = ["to_rows", "to_split_rows", "encode_jsonl", "decode_jsonl", "infer_schema", "split_rows"]

Rows = list[dict[str, Any]]


def _is_missing(value: Any) -> bool:
    """NaN, ``pd.NaT`` and ``pd.NA``: pandas' ways of saying "no value" (a parquet file says None)."""
    if isinstance(value, float):
        return math.isnan(value)
    return type(value).__name__ in ("NaTType", "NAType")


def _clean(value: Any) -> Any:
    """JSON-safe values, the same whatever the rows were loaded from.

    ``pd.read_parquet`` gives list columns as numpy arrays where pyarrow gives lists, and a
    DataFrame gives ``NaT`` where pyarrow gives None: arrays become lists (cleaned element by
    element, so a one-element array stays a list), numpy scalars Python scalars, and every
    kind of missing value None. Only what is left over becomes text.
    """
    if getattr(value, "ndim", 0) and hasattr(value, "tolist"):  # numpy arrays of any shape
        return [_clean(v) for v in value.tolist()]
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, (list, dict, str, bytes)):
        try:
            value = value.item()
        except (ValueError, TypeError):
            pass
    if value is None or _is_missing(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _read_jsonl(path: Path) -> Rows:
    """Each line parsed alone (bounded in size and nesting), so an error names the file's line."""
    rows = []
    for number, line in lines(path):
        if not line.strip():
            continue
        check_depth(line, what=f"cannot read {path}: line {number}")
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ValidationError(f"cannot read {path}: line {number}: {exc.msg} (column {exc.colno})") from None
    return rows


def _read_csv(path: Path) -> Rows:
    reader = csv.reader(line for _, line in lines(path))
    try:
        header = next(reader, None)
        if header is None:
            return []
        if len(header) > MAX_COLUMNS:
            raise ValidationError(f"cannot read {path}: {len(header):,} columns, at most {MAX_COLUMNS:,}")
        rows = []
        for row in reader:
            if len(row) > len(header):
                raise ValidationError(
                    f"cannot read {path}: line {reader.line_num} has {len(row)} fields, the header {len(header)}"
                )
            rows.append(dict(zip(header, row, strict=False)))
        return rows
    except csv.Error as exc:
        raise ValidationError(f"cannot read {path}: line {reader.line_num}: {exc}") from None


def _read_file(path: Path) -> Rows:
    suffix = "".join(path.suffixes[-1:]).lower()
    try:
        if suffix == ".csv":
            return _read_csv(path)
        if suffix in (".jsonl", ".ndjson"):
            return _read_jsonl(path)
        if suffix == ".json":
            check_file_size(path, MAX_JSON_FILE_BYTES, "write it as .jsonl (one row a line) or .parquet")
            data = loads(path.read_bytes(), what=f"cannot read {path}: it")
            if not isinstance(data, list):
                raise ValidationError(f"{path}: a .json data file must hold a list of objects")
            return data
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path).to_pylist()
    except ValidationError:
        raise
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc}") from None
    except ImportError as exc:
        raise ValidationError(f"reading {path} needs {exc.name}; pip install llmops-magics[ml]") from None
    except Exception as exc:  # pyarrow raises its own error types
        raise ValidationError(f"cannot read {path}: {exc}") from None
    raise ValidationError(f"{path}: unsupported file type {suffix!r}; use .csv, .jsonl, .json or .parquet")


def to_rows(data: Any) -> Rows:
    """Rows from a DataFrame, an HF ``Dataset``, a path, or an iterable of mappings."""
    if isinstance(data, (str, Path)):
        path = Path(data).expanduser()
        if not path.is_file():
            raise ValidationError(f"data file {str(path)!r} does not exist")
        rows = _read_file(path)
    elif hasattr(data, "to_dict") and hasattr(data, "columns"):  # pandas.DataFrame
        rows = data.to_dict(orient="records")
    elif hasattr(data, "to_list") and hasattr(data, "column_names"):  # datasets.Dataset
        rows = data.to_list()
    elif isinstance(data, Iterable) and not isinstance(data, (bytes, Mapping)):
        rows = list(data)
    else:
        raise ValidationError(
            f"cannot make a dataset from {type(data).__name__}; give a DataFrame, a datasets.Dataset, "
            "a .csv/.jsonl/.json/.parquet path or a list of dicts"
        )
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ValidationError(f"row {i} is a {type(row).__name__}, expected a mapping of column to value")
        out.append({str(k): _clean(v) for k, v in row.items()})
    return out


def to_split_rows(data: Any) -> dict[str, Rows]:
    """``{"train": rows, …}``: a ``DatasetDict`` or a dict of split name to data keeps its splits."""
    if isinstance(data, Mapping) or (
        hasattr(data, "keys")
        and hasattr(data, "column_names")
        and isinstance(getattr(data, "column_names", None), Mapping)
    ):
        return {str(k): to_rows(v) for k, v in data.items()}
    return {"train": to_rows(data)}


def split_rows(rows: Rows, fraction: float, seed: int) -> dict[str, Rows]:
    """A seeded train/validation split (the same seed and rows give the same split)."""
    if not 0 < fraction < 1:
        raise ValidationError(f"validation fraction must be between 0 and 1, found {fraction}")
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    n_val = max(1, round(len(rows) * fraction))
    if n_val >= len(rows):
        raise ValidationError(f"cannot split {len(rows)} row(s) into train and validation")
    val = set(order[:n_val])
    return {
        "train": [r for i, r in enumerate(rows) if i not in val],
        "validation": [r for i, r in enumerate(rows) if i in val],
    }


def infer_schema(rows: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Column → type name (``str``, ``int``, ``float``, ``bool``, ``list``, ``dict``, ``null``, or ``a|b``)."""
    names = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict", type(None): "null"}
    seen: dict[str, set[str]] = {}
    for row in rows:
        for k, v in row.items():
            seen.setdefault(k, set()).add(names.get(type(v), type(v).__name__))
    return {k: "|".join(sorted(t - {"null"}) or ["null"]) for k, t in seen.items()}


def encode_jsonl(rows: Rows) -> bytes:
    return "".join(json.dumps(r, sort_keys=True, ensure_ascii=False) + "\n" for r in rows).encode()


def decode_jsonl(data: bytes) -> Rows:
    return [json.loads(line) for line in data.decode().splitlines() if line.strip()]
