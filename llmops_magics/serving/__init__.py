"""Deployment control, on the kernel's side: start, replace, watch and stop model servers.

The operation (``DeploySpec``, ``deploy()``) is ``ops/deploy.py``; ``control`` runs it,
``launcher`` starts and stops processes, ``liveness`` says whether one is alive (one
answer for every caller), ``status`` and ``drift`` read what a server has done. The
server process itself is ``llmops_magics.modelserver``; the vLLM engine is vLLM's own
process, which ``vllm`` launches or exports. Importing this package is cheap.

The package is ``serving`` rather than ``deploy`` so that ``llmops_magics.deploy`` stays the
function (a subpackage of that name would replace it on import).
"""

from ..ops.deploy import Canary, DeploySpec, parse_canary
from .control import promote_deployment, rollback_deployment, set_canary, stop_deployment
from .drift import DriftReport, deployment_drift
from .hotswap import add_adapter, remove_adapter
from .status import deployment_logs, deployment_status, get_deployment, list_deployments, monitor_snapshot
from .views import Deployment, DeploymentList, DeploymentStatus, LogTail, StopResult
from .vllm import VllmExport, export_vllm, vllm_command

__all__ = [
    "Canary",
    "DeploySpec",
    "add_adapter",
    "remove_adapter",
    "Deployment",
    "DeploymentList",
    "DeploymentStatus",
    "DriftReport",
    "LogTail",
    "StopResult",
    "VllmExport",
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
