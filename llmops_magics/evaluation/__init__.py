"""Evaluation: metrics, LLM-as-judge, paired A/B statistics, a generation cache, recorded results.

The package is ``evaluation`` rather than ``evaluate`` on purpose: ``llmops_magics.evaluate``
is the function, and a subpackage of the same name would replace it as an attribute of
``llmops_magics`` as soon as anything imported the subpackage.

Importing this package is cheap (no torch, pandas, numpy, rouge-score or httpx); each is
imported where it is used.
"""

from .consistency import ConsistencyWarning
from .metrics import Example, MetricContext, MetricSpec, get_metric, list_metrics, metric
from .persist import get_eval
from .results import EvalResult
from .runner import evaluate
from .stats import Comparison, compare_paired

__all__ = [
    "Comparison",
    "ConsistencyWarning",
    "EvalResult",
    "Example",
    "MetricContext",
    "MetricSpec",
    "compare_paired",
    "evaluate",
    "get_eval",
    "get_metric",
    "list_metrics",
    "metric",
]
