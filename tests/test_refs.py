import pytest

from llmops_magics.errors import InvalidReferenceError, ValidationError
from llmops_magics.store import Reference, parse_reference, validate_alias, validate_name


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("prompt://qa/3", Reference("prompt", "qa", 3, None)),
        ("prompt://qa@production", Reference("prompt", "qa", None, "production")),
        ("prompt://qa", Reference("prompt", "qa", None, None)),
        ("qa", Reference(None, "qa", None, None)),
        ("qa/12", Reference(None, "qa", 12, None)),
        ("qa@staging", Reference(None, "qa", None, "staging")),
        ("qa@latest", Reference(None, "qa", None, "latest")),
    ],
)
def test_every_reference_form_parses(text, expected):
    assert parse_reference(text) == expected


def test_a_default_kind_fills_in_a_bare_name():
    assert parse_reference("qa", kind="prompt").kind == "prompt"


def test_an_explicit_kind_that_disagrees_with_the_expected_one_is_rejected():
    with pytest.raises(InvalidReferenceError, match="names a dataset, but a prompt is expected"):
        parse_reference("dataset://qa/1", kind="prompt")


@pytest.mark.parametrize(
    "text", ["", "   ", "prompt://", "qa/0", "qa/x", "qa/1/2", "bogus://qa", "../etc", "a b", "qa/²", "qa/" + "9" * 20]
)
def test_malformed_references_are_rejected(text):
    with pytest.raises(InvalidReferenceError):
        parse_reference(text)


def test_references_print_back_in_their_canonical_form():
    assert str(parse_reference("prompt://qa/3")) == "prompt://qa/3"
    assert str(parse_reference("qa@prod", kind="prompt")) == "prompt://qa@prod"


@pytest.mark.parametrize("name", ["", "a/b", "a\\b", "..", "x" * 129, "-lead", "sp ace", "é"])
def test_bad_names_are_rejected_with_the_reason(name):
    with pytest.raises(ValidationError, match="name"):
        validate_name(name)


@pytest.mark.parametrize("alias", ["latest", "3"])
def test_reserved_aliases_are_rejected(alias):
    with pytest.raises(ValidationError):
        validate_alias(alias)
