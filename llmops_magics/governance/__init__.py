"""Governance: finding and removing personal data (PII) before it spreads.

``entities`` names what can be found and reads ``[tool.llmops.governance]`` (no heavy
import); ``engine`` builds Microsoft Presidio once per process, offline; ``sources``
reads the texts of a dataset, an eval's outputs, a prompt or a deployment's request log;
``scan`` and ``redact`` run the ``pii-scan`` and ``pii-redact`` operations; ``filters``
redacts what leaves the machine by default (request-log texts, W&B tables of examples).
Presidio is imported only when something is scanned: ``%load_ext`` never pays for it.
"""
