"""Serving: ``%deploy`` as a Python API, the OpenAI-compatible server, monitoring, canaries, engines.

The core of ``%deploy`` (named ``serving`` so that ``llmops_magics.deploy`` can be
the function: a subpackage of that name would replace it on import). Importing
this package is cheap: the server stack (FastAPI, uvicorn, torch, prometheus)
is imported only by the server process, and Ray or vLLM only by their engines.
"""

from .control import deploy, promote_deployment, rollback_deployment, set_canary, stop_deployment
from .drift import DriftReport, deployment_drift
from .spec import Canary, DeploymentSpec, parse_canary
from .status import deployment_logs, deployment_status, get_deployment, list_deployments, monitor_snapshot
from .views import Deployment, DeploymentList, DeploymentStatus, LogTail, StopResult
from .vllm import VllmExport, export_vllm, vllm_command

__all__ = [
    "Canary",
    "Deployment",
    "DeploymentList",
    "DeploymentSpec",
    "DeploymentStatus",
    "DriftReport",
    "LogTail",
    "StopResult",
    "VllmExport",
    "deploy",
    "deployment_drift",
    "deployment_logs",
    "deployment_status",
    "export_vllm",
    "get_deployment",
    "list_deployments",
    "monitor_snapshot",
    "parse_canary",
    "promote_deployment",
    "rollback_deployment",
    "set_canary",
    "stop_deployment",
    "vllm_command",
]
