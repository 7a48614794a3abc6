"""Watching a deployment after it ships: checks over its request log, and online A/B statistics.

``checks``/``drift`` turn a window of the request log into pass/warn/fail checks
against the deployment's baselines; ``abstats`` judges a canary against its primary
with the user as the unit. Plain Python (numpy, scipy, scikit-learn, imported lazily).
"""
