"""Which version answers a request: the canary split, sticky per user id.

A user id is hashed with the deployment's name into a point in [0, 1); the
canary serves the points below its share. The same user therefore always lands
on the same version, and raising the share from 10% to 20% keeps the first 10%
where they were (they are still below the line) instead of reshuffling everyone.
Requests without a user id are assigned at random in the same proportions.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

__all__ = ["CanaryRouter", "bucket"]


def bucket(salt: str, user: str) -> float:
    """A stable point in [0, 1) for ``user``."""
    digest = hashlib.sha256(f"{salt}\0{user}".encode(errors="surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class CanaryRouter:
    """``arms`` are ``(label, percent)`` pairs; the first is the primary and takes the rest."""

    def __init__(self, salt: str, arms: Sequence[tuple[str, float]], rng: random.Random | None = None) -> None:
        self.salt = salt
        self.arms = list(arms)
        self._rng = rng or random.Random()

    def choose(self, user: str | None = None) -> str:
        if len(self.arms) == 1:
            return self.arms[0][0]
        point = bucket(self.salt, user) if user else self._rng.random()
        edge = 0.0
        for label, percent in self.arms[1:]:
            edge += percent / 100.0
            if point < edge:
                return label
        return self.arms[0][0]
