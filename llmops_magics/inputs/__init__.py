"""Hostile input, refused the same way at every boundary: JSON bodies and lines, data files.

The model server, the Jupyter server routes and ``%dataset`` all parse what someone else
wrote. Sizes and nesting are checked *before* parsing (``json.loads`` of 10,000 nested
brackets raises ``RecursionError``, and a 2 GB line would be read whole), and each refusal
is a ``ValidationError`` naming the limit, so every boundary can answer it in its own way:
a 413/400 with OpenAI's error JSON, a JSON 4xx, one ``UsageError`` line.
"""

from .files import MAX_COLUMNS, MAX_LINE_BYTES, check_file_size, lines
from .jsonlimits import MAX_DEPTH, TooLarge, check_depth, loads

__all__ = ["MAX_COLUMNS", "MAX_DEPTH", "MAX_LINE_BYTES", "TooLarge", "check_depth", "check_file_size", "lines", "loads"]
