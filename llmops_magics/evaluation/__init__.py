"""Evaluation: metrics, LLM-as-judge, paired A/B statistics, a generation cache, recorded results.

The operation (``EvalSpec``, ``evaluate()``) is ``ops/evaluate.py``; ``runner`` runs it. The
package is ``evaluation`` rather than ``evaluate`` on purpose: ``llmops_magics.evaluate``
is the function, and a subpackage of the same name would replace it as an attribute of
``llmops_magics`` as soon as anything imported the subpackage.

Importing this package is cheap (no torch, pandas, numpy, rouge-score or httpx); each is
imported where it is used.
"""

from .consistency import ConsistencyWarning
from .jobs import EvalJob
from .metrics import Example, MetricContext, MetricSpec, get_metric, list_metrics, metric
from .persist import get_eval
from .results import EvalResult
from .stats import Comparison, compare_paired

__all__ = [
    "Comparison",
    "ConsistencyWarning",
    "EvalResult",
    "Example",
    "MetricContext",
    "MetricSpec",
    "compare_paired",
    "EvalJob",
    "get_eval",
    "get_metric",
    "list_metrics",
    "metric",
]
