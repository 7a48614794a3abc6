"""The local artifact registry: records in SQLite, content in a blob store, lineage as edges."""

from .integrity import GcPlan, VerifyReport, plan_gc, verify
from .records import Artifact, Edge
from .refs import KINDS, Reference, parse_reference, validate_alias, validate_name
from .registry import NameSummary, Registry, SaveResult

__all__ = [
    "Artifact",
    "Edge",
    "GcPlan",
    "KINDS",
    "NameSummary",
    "Reference",
    "Registry",
    "SaveResult",
    "VerifyReport",
    "parse_reference",
    "plan_gc",
    "validate_alias",
    "validate_name",
    "verify",
]
