"""Data files read line by line within bounds: no line read whole past its limit, UTF-8 checked per line."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..errors import ValidationError
from .jsonlimits import TooLarge

__all__ = ["MAX_LINE_BYTES", "MAX_COLUMNS", "MAX_JSON_FILE_BYTES", "lines", "check_file_size"]

MAX_LINE_BYTES = 16 * 2**20  # one row of a data file
MAX_COLUMNS = 10_000
MAX_JSON_FILE_BYTES = 256 * 2**20  # a .json file is parsed whole; .jsonl and .parquet stream


def lines(path: Path, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each line; a longer line or bytes that are not UTF-8 end it with one error.

    Lines keep their newline (the csv module needs it to read quoted newlines).
    """
    with path.open("rb") as fh:
        number = 0
        while True:
            raw = fh.readline(max_line_bytes + 1)
            if not raw:
                return
            number += 1
            if len(raw) > max_line_bytes:
                raise TooLarge(f"cannot read {path}: line {number} is longer than {max_line_bytes // 2**20} MiB")
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ValidationError(
                    f"cannot read {path}: line {number} is not UTF-8 ({exc.reason} at byte {exc.start}); "
                    "save the file as UTF-8"
                ) from None


def check_file_size(path: Path, limit: int, hint: str) -> None:
    size = path.stat().st_size
    if size > limit:
        raise TooLarge(f"cannot read {path}: {size // 2**20} MiB is over the {limit // 2**20} MiB limit; {hint}")
