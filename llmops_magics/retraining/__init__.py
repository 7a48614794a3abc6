"""Retraining a deployment (``%retrain``): combine data, fine-tune, gate, canary, judge, promote or roll back.

The front is ``ops/retrain.py`` (the spec and its rules); ``run`` makes the steps,
``combine`` the training data, ``gate`` the eval verdict, ``pipeline`` the recorded result.
The package is ``retraining`` so that ``llmops_magics.retrain`` stays the function.
"""

from .pipeline import KIND, Pipeline, Step, get_pipeline

__all__ = ["KIND", "Pipeline", "Step", "get_pipeline"]
