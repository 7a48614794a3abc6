"""llmops-magics: the LLM lifecycle in a notebook, versioned, linked and recorded.

``%load_ext llmops_magics`` registers the magics. Everything a magic does is also a
plain function here (``save_prompt``, ``get_prompt``, ``registry``, ``replay`` …), imported
lazily so that loading the extension stays fast and never pulls in torch,
transformers, peft, wandb or pandas.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "registry": ".context",
    "configure": ".context",
    "flush": ".context",
    "workspace": ".context",
    "sync": ".recording.sync",
    "save_prompt": ".ops.prompts",
    "get_prompt": ".prompts",
    "tag_prompt": ".prompts",
    "render_prompt": ".prompts",
    "prompt_history": ".prompts",
    "list_prompts": ".prompts",
    "diff_prompts": ".prompts",
    "PromptVersion": ".prompts",
    "save_dataset": ".ops.datasets",
    "get_dataset": ".datasets",
    "DatasetVersion": ".datasets",
    "diff_datasets": ".datasets",
    "list_datasets": ".datasets",
    "dataset_from_log": ".ops.fromlog",
    "dataset_from_traces": ".ops.fromtraces",
    "dataset_history": ".datasets",
    "tiny_base_model": ".models",
    "register_model": ".ops.models",
    "compare_models": ".ops.compare",
    "monitor": ".ops.monitor",
    "MonitorReport": ".monitoring.report",
    "get_monitor": ".monitoring.report",
    "retrain": ".ops.retrain",
    "get_pipeline": ".retraining",
    "Pipeline": ".retraining",
    "evaluate": ".ops.evaluate",
    "get_eval": ".evaluation",
    "metric": ".evaluation",
    "list_metrics": ".evaluation",
    "EvalResult": ".evaluation",
    "Comparison": ".evaluation",
    "ConsistencyWarning": ".evaluation",
    "eval_panel": ".adapters.widgets",
    "load_model": ".models",
    "generate": ".models",
    "task_examples": ".models",
    "finetune": ".ops.finetune",
    "finetune_runs": ".finetuning",
    "FinetuneJob": ".finetuning",
    "FinetuneResult": ".finetuning",
    "Job": ".ops.jobs",
    "deploy": ".ops.deploy",
    "list_deployments": ".serving",
    "get_deployment": ".serving",
    "deployment_status": ".serving",
    "deployment_logs": ".serving",
    "deployment_drift": ".serving",
    "stop_deployment": ".serving",
    "promote_deployment": ".serving",
    "add_adapter": ".serving",
    "remove_adapter": ".serving",
    "rollback_deployment": ".serving",
    "set_canary": ".serving",
    "ab": ".ops.ab",
    "feedback": ".serving.feedback",
    "export_vllm": ".serving",
    "pii_scan": ".ops.pii",
    "pii_redact": ".ops.pii",
    "get_pii_scan": ".governance.scan",
    "fairness": ".ops.fairness",
    "FairnessReport": ".governance.fairness_report",
    "get_fairness": ".governance.fairness_report",
    "card": ".ops.card",
    "export": ".ops.card",
    "get_card": ".governance.cards",
    "CardView": ".governance.cards",
    "PiiScan": ".governance.scan",
    "audit": ".ops.audit",
    "audit_events": ".governance.audit",
    "AuditLog": ".governance.audit",
    "policy_check": ".governance.policy",
    "Deployment": ".serving",
    "trace": ".tracing",
    "traced": ".tracing",
    "list_traces": ".tracing",
    "get_trace": ".tracing",
    "instrument_openai": ".tracing",
    "uninstrument_openai": ".tracing",
    "lineage_graph": ".display.lineage_svg",
    "LineageGraph": ".display.lineage_svg",
    "replay": ".ops.replay",
    "ReplayResult": ".ops.replay",
    "Registry": ".store",
    "Artifact": ".store",
    "Reference": ".store",
    "parse_reference": ".store",
    "LLMOpsError": ".errors",
    "ValidationError": ".errors",
    "InvalidReferenceError": ".errors",
    "RenderError": ".errors",
    "PolicyError": ".errors",
    "NotFoundError": ".errors",
    "AmbiguousReferenceError": ".errors",
    "RegistryError": ".errors",
    "IntegrityError": ".errors",
    "RecordingError": ".errors",
    "JobError": ".errors",
    "EndpointError": ".errors",
    "RegressionError": ".errors",
    "JobCancelledError": ".errors",
    "JobTimeoutError": ".errors",
    "DeploymentError": ".errors",
}

__all__ = sorted([*_EXPORTS, "__version__", "load_ipython_extension", "unload_ipython_extension"])


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'llmops_magics' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    """The server extension (REST routes under ``/llmops/``); imported only by jupyter_server."""
    return [{"module": "llmops_magics.adapters.jupyter"}]


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    """The prebuilt JupyterLab sidebar shipped inside the package."""
    return [{"src": "labextension", "dest": "llmops-magics"}]


def load_ipython_extension(ipython: Any) -> None:
    from .adapters.magics import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from .adapters.magics import unload

    unload(ipython)
