"""The digit-gated phone recognizer finds exactly what Presidio's ``PhoneRecognizer`` finds.

It skips regions whose shortest possible match has more digits than the text holds; the
texts below are built to sit on those bounds: short national numbers (DE allows 4 digits),
international numbers of short-numbered countries (``+683 4002``), numbers behind an IDD
prefix, full-width digits, vanity numbers, and seeded random digit soups of 3 to 14 digits
with and without ``+``.
"""

from __future__ import annotations

import random

import pytest

from llmops_magics.governance.entities import DEFAULT_THRESHOLD, default_entities
from llmops_magics.governance.phones import fewest_digits, gated_phone_recognizer

FULLWIDTH = "tel " + "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in "030 1234567")
SHAPED = [
    "call 1-800-FLOWERS now", "call +1 800 356 9377", "ring 030 1234", "#1234 hi", "+49 30 1234", "+683 4002",
    FULLWIDTH, "00 49 30 1234", "011 44 20 7946 0958", "tel 0301234", "+1 (416) 555-0199",
    "my cell 416 555 0199", "07700 900123", "+44 7700 900123", "(555) 123-4567", "+91 98765 43210",
    "+55 11 91234 5678", "+972 50 123 4567", "+33 1 23 45 67 89", "4002", "+6834002", "phone: 555-0100", "",
]  # fmt: skip


def _soups(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        digits = "".join(
            rng.choice("0123456789") + (rng.choice(" -.()") if rng.random() < 0.25 else "")
            for _ in range(rng.randint(3, 14))
        )
        out.append(rng.choice(["", "+", "00", "call ", "tel: +"]) + digits + rng.choice(["", " now", " x12"]))
    return out


@pytest.mark.parametrize("regions", [None, ("US",), ("GB", "US"), ("DE",), ("FR", "IN", "BR")])
def test_the_gated_recognizer_finds_what_presidios_finds(regions):
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    reference = PhoneRecognizer() if regions is None else PhoneRecognizer(supported_regions=regions)
    gated = gated_phone_recognizer(regions)
    texts = SHAPED + _soups(600)

    def spans(recognizer, text):
        return sorted((r.start, r.end, r.score, r.entity_type) for r in recognizer.analyze(text, ["PHONE_NUMBER"]))

    found = [spans(reference, t) for t in texts]
    assert sum(map(len, found)) > 20  # the texts do hold numbers to find
    assert [spans(gated, t) for t in texts] == found


def test_the_bounds_are_the_shortest_valid_numbers_and_never_above_an_international_one():
    assert fewest_digits("DE", 1) == 4  # German numbers can be 4 digits long
    assert fewest_digits("US", 1) == 5  # +683 4002 (Niue) can be written in any region
    assert fewest_digits("US", 0) == 1  # possible (not valid) numbers: never skipped


def test_context_words_still_raise_a_gated_findings_score():
    """Presidio enhances a score by the recognizer that found it (looked up by id): the gated one must be found."""
    from llmops_magics.governance.engine import engine

    eng = engine(None)
    plain, near = eng.find(["reach me at 212-555-0199 today", "my phone 212-555-0199 today"], ["PHONE_NUMBER"], 0.0)
    assert plain and near and near[0].score > plain[0].score
    assert default_entities(None) and DEFAULT_THRESHOLD <= near[0].score
