"""Phone numbers, found as Presidio finds them, without asking regions that cannot match.

Presidio's ``PhoneRecognizer`` runs libphonenumber's ``PhoneNumberMatcher`` over every text
once per region (eight by default), and on short rows that was most of a pattern-only scan
(profiled: 60%). Most short rows cannot hold a phone number at all, and the digits a text
holds say which regions could match in it:

- a number written nationally in region R has at least as many digits as the shortest
  valid number of a region sharing R's country code (libphonenumber's ``possible_length``;
  a trunk prefix only adds digits);
- a number written internationally (``+49 30 1234``, ``00 49 …``) has a country code of at
  least one digit before a national number at least as long as the shortest anywhere (4),
  so at least 5 digits;
- a letter is never part of a match (``1-800-FLOWERS`` is not matched).

So a region whose lower bound exceeds the text's digit count (Unicode digits, counted
generously with ``str.isdigit``) is skipped; the regions left are run by Presidio's own
recognizer, and its findings keep this recognizer's name and id (Presidio's context
enhancement looks recognizers up by id). The tests hold it to Presidio's findings on
every text they try. With leniency 0 (possible, not valid, numbers: local-only lengths, and
international ones as short as a country code and 2 digits) no region is skipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

__all__ = ["gated_phone_recognizer", "fewest_digits"]

INTERNATIONAL = 5  # one country-code digit + the world's shortest national number (4 digits)


def fewest_digits(region: str, leniency: int) -> int:
    """The fewest digits of any text in which ``PhoneNumberMatcher(text, region, leniency)`` can match."""
    import phonenumbers
    from phonenumbers import PhoneMetadata

    if leniency < 1:
        return 1  # possible numbers have no useful lower bound: never skip
    code = phonenumbers.country_code_for_region(region)
    lengths = []
    for sibling in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code, (region,)):
        metadata = PhoneMetadata.metadata_for_region(sibling)
        if metadata is None or metadata.general_desc is None:
            return 1  # nothing known about it: never skip the region
        lengths += [n for n in metadata.general_desc.possible_length if n > 0]
    return min([INTERNATIONAL, *lengths])


@lru_cache(maxsize=1)
def _class() -> type:
    from presidio_analyzer import RecognizerResult
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer

    class DigitGatedPhoneRecognizer(PhoneRecognizer):
        """``PhoneRecognizer`` that runs only the regions a text's digit count allows (module docstring)."""

        def __init__(self, supported_regions: Sequence[str] = PhoneRecognizer.DEFAULT_SUPPORTED_REGIONS) -> None:
            super().__init__(supported_regions=tuple(supported_regions))
            self._need = {r: fewest_digits(r, self.leniency) for r in self.supported_regions}
            self._subsets: dict[tuple[str, ...], Any] = {}

        def _for(self, regions: tuple[str, ...]) -> Any:
            found = self._subsets.get(regions)
            if found is None:  # built once per subset; a dict write is atomic under the GIL
                found = self._subsets[regions] = PhoneRecognizer(
                    context=self.context, supported_regions=regions, leniency=self.leniency
                )
            return found

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            digits = sum(ch.isdigit() for ch in text)
            regions = tuple(r for r in self.supported_regions if digits >= self._need[r])
            if not regions:
                return []
            results = self._for(regions).analyze(text, entities, nlp_artifacts)
            for result in results:  # as if this recognizer had found them
                result.recognition_metadata[RecognizerResult.RECOGNIZER_NAME_KEY] = self.name
                result.recognition_metadata[RecognizerResult.RECOGNIZER_IDENTIFIER_KEY] = self.id
            return results

    return DigitGatedPhoneRecognizer


def gated_phone_recognizer(supported_regions: Sequence[str] | None = None) -> Any:
    """A ``PhoneRecognizer`` for ``supported_regions`` (None: Presidio's default eight) that skips regions
    a text's digits rule out; Presidio is imported only when one is made."""
    cls = _class()
    return cls() if supported_regions is None else cls(supported_regions)
