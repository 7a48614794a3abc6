"""The one exception tree of llmops-magics.

Every boundary translates these: the magics turn any ``LLMOpsError`` into a plain
IPython ``UsageError`` (one line, no traceback), the HTTP services into a 4xx JSON
body, the CLI into a message and exit status 2. Each class also derives from the
nearest builtin so callers that only know ``ValueError`` or ``LookupError`` still
catch the right thing::

    LLMOpsError
    ├── ValidationError (ValueError)        bad input: a name, a template, an option
    │   ├── InvalidReferenceError           a reference that does not parse
    │   ├── RenderError                     a template rendered with missing variables
    │   └── PolicyError                     the release policy refuses a version (what it lacks)
    ├── NotFoundError (LookupError)         a reference that parses but names nothing
    │   └── AmbiguousReferenceError         a bare name that exists under several kinds
    ├── RegistryError (RuntimeError)        the registry folder itself is unusable
    │   └── IntegrityError                  verify() found an inconsistency
    ├── RecordingError (RuntimeError)       W&B failed; always downgraded to a warning
    ├── JobError (RuntimeError)             a background job failed or was cancelled
    │   ├── JobCancelledError               it stopped on request (its checkpoint is kept)
    │   └── JobTimeoutError (TimeoutError)  wait(timeout) ran out before it ended
    ├── EndpointError (RuntimeError)        an OpenAI-compatible endpoint failed or was unreachable
    ├── RegressionError (RuntimeError)      an A/B eval found B significantly worse (CI gate)
    └── DeploymentError (RuntimeError)      a model server failed to start, stop or answer
"""

from __future__ import annotations

__all__ = [
    "LLMOpsError",
    "ValidationError",
    "InvalidReferenceError",
    "RenderError",
    "PolicyError",
    "NotFoundError",
    "AmbiguousReferenceError",
    "RegistryError",
    "IntegrityError",
    "RecordingError",
    "JobError",
    "EndpointError",
    "RegressionError",
    "JobCancelledError",
    "JobTimeoutError",
    "DeploymentError",
]


class LLMOpsError(Exception):
    """Base of every error this package raises on purpose."""


class ValidationError(LLMOpsError, ValueError):
    """Input was rejected before anything was written."""


class InvalidReferenceError(ValidationError):
    """A reference string does not follow ``kind://name/3``, ``kind://name@alias`` or ``name``."""


class RenderError(ValidationError):
    """A template could not be rendered with the variables given."""


class PolicyError(ValidationError):
    """``[tool.llmops.policy]`` refuses a version an alias or a deployment would point at; nothing moved.

    ``OVERRIDE_HELP`` is the one help text of ``--override-policy`` (the deploy spec's field and
    the tag and promote commands); it lives here because the magics' parsers are built when
    the extension loads, which imports no operation module.
    """

    OVERRIDE_HELP = (
        "Let a version [tool.llmops.policy] refuses through anyway, with this REASON (recorded in the audit trail)."
    )


class NotFoundError(LLMOpsError, LookupError):
    """A well-formed reference that points at no artifact, version or alias."""


class AmbiguousReferenceError(NotFoundError):
    """A bare name exists under more than one kind; the caller must say which."""


class RegistryError(LLMOpsError, RuntimeError):
    """The registry folder or database cannot be used."""


class IntegrityError(RegistryError):
    """The registry's records and blobs disagree."""


class RecordingError(LLMOpsError, RuntimeError):
    """Mirroring to W&B failed. Callers turn this into a warning; the local record stands."""


class JobError(LLMOpsError, RuntimeError):
    """A background job failed, was cancelled, or was asked for a result it does not have."""


class EndpointError(LLMOpsError, RuntimeError):
    """An OpenAI-compatible endpoint could not be reached or answered with an error."""


class RegressionError(LLMOpsError, RuntimeError):
    """``fail_on_regression``: a compared target is significantly worse than the baseline.

    Raised after the eval was saved, so the record of the failing run is kept; ``result``
    is the full ``EvalResult`` and ``regressions`` the comparisons that failed.
    """

    def __init__(self, message: str, result=None, regressions=()) -> None:
        super().__init__(message)
        self.result = result
        self.regressions = tuple(regressions)


class JobCancelledError(JobError):
    """The job stopped because it was asked to; a fine-tune keeps its checkpoint for ``resume``."""


class JobTimeoutError(JobError, TimeoutError):
    """``wait(timeout)`` returned before the job ended; the job goes on."""


class DeploymentError(LLMOpsError, RuntimeError):
    """A deployment's server process failed to start, died, or did not stop; the message says which."""
