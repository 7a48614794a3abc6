"""One codec per artifact kind: how its content is encoded and decoded, summarised and loaded.

The registry stores bytes and folders; a codec knows what they mean for its kind.
The registry API, the sidebar's read layer (``adapters/jupyter/browse.py``) and replay
all go through ``codec(kind)``, so a prompt's payload, say, is parsed in one place.
"""

from __future__ import annotations

from .base import Codec
from .codecs import CODECS

__all__ = ["Codec", "codec"]


def codec(kind: str) -> Codec:
    """The codec of ``kind`` (a generic one for kinds without their own)."""
    return CODECS.get(kind) or CODECS["*"]
