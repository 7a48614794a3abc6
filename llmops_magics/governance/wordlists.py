"""The attribute terms ``%fairness`` swaps, and the swapping itself.

Each attribute has groups whose term lists are *aligned*: the i-th term of one group
is swapped for the i-th term of another (``he`` ↔ ``she``, ``Mr`` ↔ ``Ms``), so a
counterfactual changes the attribute and nothing else. Swaps are whole words,
case-insensitive to find and case-preserving to write (``He`` → ``She``, ``MR`` →
``MS``): ``other`` never becomes ``otsher``, and a sentence keeps its capitals.

The shipped lists are small on purpose (a starting point, easy to read); a project
extends or replaces them with ``[tool.llmops.governance] fairness_terms`` (a table
``attribute -> group -> [terms]`` or the path of a JSON file of that shape) or with
``--terms FILE`` for one call. Later sources replace whole groups and add attributes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ValidationError

__all__ = ["DEFAULT_TERMS", "Swapper", "load_terms", "check_terms"]

DEFAULT_TERMS: dict[str, dict[str, list[str]]] = {
    "gender": {
        "male": [
            "he",
            "him",
            "his",
            "himself",
            "man",
            "men",
            "boy",
            "boys",
            "Mr",
            "father",
            "son",
            "brother",
            "husband",
            "king",
            "uncle",
            "nephew",
            "gentleman",
            "male",
            "sir",
        ],
        "female": [
            "she",
            "her",
            "her",
            "herself",
            "woman",
            "women",
            "girl",
            "girls",
            "Ms",
            "mother",
            "daughter",
            "sister",
            "wife",
            "queen",
            "aunt",
            "niece",
            "lady",
            "female",
            "madam",
        ],
    },
    "name": {
        "anglo": ["John", "Emily", "James", "Sarah", "Michael", "Anna"],
        "hispanic": ["Carlos", "Maria", "Jose", "Lucia", "Miguel", "Sofia"],
        "east_asian": ["Wei", "Mei", "Hiroshi", "Yuki", "Jun", "Ling"],
        "west_african": ["Kwame", "Amara", "Chinedu", "Ngozi", "Kofi", "Ama"],
    },
    "nationality": {
        "american": ["American", "America", "Americans"],
        "british": ["British", "Britain", "Britons"],
        "indian": ["Indian", "India", "Indians"],
        "nigerian": ["Nigerian", "Nigeria", "Nigerians"],
        "chinese": ["Chinese", "China", "Chinese"],
        "mexican": ["Mexican", "Mexico", "Mexicans"],
    },
}


def check_terms(terms: Any, where: str) -> dict[str, dict[str, list[str]]]:
    """``attribute -> group -> [terms]``, at least two groups of equal length each; one line naming what is wrong."""
    if not isinstance(terms, Mapping):
        raise ValidationError(f"{where} must map attribute -> group -> [terms], found {type(terms).__name__}")
    out: dict[str, dict[str, list[str]]] = {}
    for attr, groups in terms.items():
        if not isinstance(groups, Mapping) or len(groups) < 2:
            raise ValidationError(f"{where}: attribute {attr!r} needs at least two groups of terms")
        sizes = set()
        for group, words in groups.items():
            if not isinstance(words, list) or not words or not all(isinstance(w, str) and w.strip() for w in words):
                raise ValidationError(f"{where}: {attr}.{group} must be a non-empty list of words")
            sizes.add(len(words))
        if len(sizes) != 1:
            raise ValidationError(f"{where}: the groups of {attr!r} must list the same number of terms (aligned)")
        out[str(attr)] = {str(g): [w.strip() for w in ws] for g, ws in groups.items()}
    return out


def _read_file(path: str, where: str) -> Any:
    file = Path(path).expanduser()
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationError(f"{where}: no such file {path}") from None
    except json.JSONDecodeError as e:
        raise ValidationError(f"{where}: {path} is not JSON ({e.msg} at line {e.lineno})") from None


def load_terms(terms_file: str | None = None) -> dict[str, dict[str, list[str]]]:
    """The shipped lists, then ``[tool.llmops.governance] fairness_terms``, then ``terms_file`` on top."""
    from .entities import settings

    out = {a: {g: list(w) for g, w in groups.items()} for a, groups in DEFAULT_TERMS.items()}
    layers = []
    configured = settings()["fairness_terms"]
    if configured is not None:
        where = "[tool.llmops.governance] fairness_terms"
        layers.append((_read_file(configured, where) if isinstance(configured, str) else configured, where))
    if terms_file:
        layers.append((_read_file(terms_file, f"--terms {terms_file}"), f"--terms {terms_file}"))
    for raw, where in layers:  # a layer may add one group to a shipped attribute: check what it makes
        if not isinstance(raw, Mapping) or not all(isinstance(g, Mapping) for g in raw.values()):
            raise ValidationError(f"{where} must map attribute -> group -> [terms]")
        for attr, groups in raw.items():
            out[str(attr)] = check_terms({attr: {**out.get(str(attr), {}), **groups}}, where)[str(attr)]
    return out


def _cased(word: str, like: str) -> str:
    if like.isupper() and len(like) > 1:
        return word.upper()
    if like[:1].isupper():
        return word[:1].upper() + word[1:]
    if like.islower():
        return word.lower()
    return word


class Swapper:
    """Rewrites a text as each group of one attribute: every term of any group becomes the target group's term."""

    def __init__(self, groups: Mapping[str, list[str]]) -> None:
        self.groups = {g: list(ws) for g, ws in groups.items()}
        self._index: dict[str, int] = {}
        for words in self.groups.values():
            for i, w in enumerate(words):
                self._index.setdefault(w.lower(), i)  # an ambiguous word (her: him/his) takes its first place
        self._proper = {w.lower() for ws in self.groups.values() for w in ws if w[:1].isupper()}
        alternatives = sorted(self._index, key=len, reverse=True)
        self._pattern = re.compile(r"(?<!\w)(" + "|".join(re.escape(w) for w in alternatives) + r")(?!\w)", re.I)

    def _term(self, word: str) -> bool:
        """A term listed with a capital (``Mr``, ``John``) counts only with one: the ``ms`` of ``10 ms`` stays."""
        return word[:1].isupper() or word.lower() not in self._proper

    def found(self, text: str) -> bool:
        return any(self._term(m.group(0)) for m in self._pattern.finditer(text))

    def swap(self, text: str, group: str) -> str:
        words = self.groups[group]

        def one(m: re.Match) -> str:
            word = m.group(0)
            return _cased(words[self._index[word.lower()]], word) if self._term(word) else word

        return self._pattern.sub(one, text)
