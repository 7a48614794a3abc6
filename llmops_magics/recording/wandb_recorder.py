"""W&B as the recorder: real runs, real artifacts, offline unless online is chosen.

Online must be an explicit choice (``mode="online"`` or ``WANDB_MODE=online``):
with an API key set and no mode, ``wandb.init`` waits ~100 s on an unreachable
network before failing. Nothing here ever asks for a login. ``wandb`` is imported
on first use so ``%load_ext`` stays fast.
"""

from __future__ import annotations

import json
import netrc
import os
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..context.settings import resolve_mode
from ..errors import RecordingError
from ..store.records import Artifact, thaw
from .base import LineageLink, Recorder, RecordingWarning, Run, Tables

__all__ = ["WandbRecorder", "WandbOptions", "resolve_mode"]


def _has_credentials() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        auth = netrc.netrc().authenticators(os.environ.get("WANDB_BASE_URL", "api.wandb.ai").split("//")[-1])
    except (OSError, netrc.NetrcParseError):
        return False
    return bool(auth and auth[2])


def _cell(value: Any) -> Any:
    """A value a ``wandb.Table`` column accepts: scalars as they are, anything else as JSON text."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return json.dumps(value, sort_keys=True, default=str)


def version_alias(artifact: Artifact) -> str:
    """W&B numbers versions itself (``v0``…); this alias ties its version to ours."""
    return f"llmops-v{artifact.version}"


@dataclass(frozen=True)
class WandbOptions:
    mode: str = "auto"
    project: str = "llmops"
    entity: str | None = None
    dir: str | None = None
    init_timeout: float = 30.0


class WandbRun(Run):
    def __init__(self, run: Any, mode: str) -> None:
        self._run = run
        self.id = run.id
        self.mode = mode
        self.info = {"run_id": run.id, "mode": mode, "project": run.project, "run_dir": str(Path(run.dir).parent)}

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        self._run.log(dict(metrics), step=step)

    def log_table(self, key: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        import wandb

        self._run.log({key: wandb.Table(columns=list(columns), data=[list(r) for r in rows])})

    def summary(self, values: Mapping[str, Any]) -> None:
        self._run.summary.update(dict(values))

    def log_artifact(
        self, artifact: Artifact, path: Path | None, inputs: Sequence[LineageLink] = (), tables: Tables | None = None
    ) -> dict[str, Any]:
        import wandb

        edges = [{"source": a.ref, "target": artifact.ref, "relation": rel} for a, rel in inputs]
        if edges:
            self._run.config.update({"llmops_lineage": edges}, allow_val_change=True)
            if self.mode == "online":  # W&B refuses use_artifact offline; the edges above carry it then
                for a, _rel in inputs:
                    self._use_input(a, artifact)
        meta = {
            "llmops_ref": artifact.ref,
            "llmops_digest": artifact.digest,
            "llmops_version": artifact.version,
            **thaw(artifact.metadata),
        }
        art = wandb.Artifact(artifact.name, type=artifact.kind, metadata=meta)
        if path is not None:
            p = Path(path)
            if p.is_dir():
                art.add_dir(str(p))
            else:
                art.add_file(str(p), name=str(artifact.metadata.get("filename", p.name)))
        for key, (columns, rows) in (tables or {}).items():
            table = wandb.Table(columns=list(columns), data=[[_cell(v) for v in r] for r in rows])
            art.add(table, key)
            self._run.log({f"{artifact.kind}/{artifact.name}/{key}": table})
        aliases = sorted({*artifact.aliases, version_alias(artifact)})
        self._run.log_artifact(art, aliases=aliases)
        return {
            **self.info,
            "artifact": f"{artifact.name}:{version_alias(artifact)}",
            "type": artifact.kind,
            "aliases": aliases,
        }

    def _use_input(self, source: Artifact, target: Artifact) -> None:
        """Mark ``source`` as an input of this run, best effort.

        An input that was never mirrored (a local folder registered as a base model, or one
        whose own mirror failed or is still uploading) makes ``use_artifact`` raise; that must
        not stop the output from being logged, and the edge is in the run's config anyway.
        """
        try:
            self._run.use_artifact(f"{source.name}:{version_alias(source)}", type=source.kind)
        except Exception as exc:
            warnings.warn(
                f"W&B lineage {source.ref} → {target.ref} not linked ({type(exc).__name__}: {exc}); "
                "the edge is in the run's config (llmops_lineage)",
                RecordingWarning,
                stacklevel=2,
            )

    def finish(self, exit_code: int = 0) -> None:
        self._run.finish(exit_code=exit_code)


class WandbRecorder(Recorder):
    name = "wandb"

    def __init__(self, options: WandbOptions | None = None) -> None:
        self.options = options or WandbOptions()
        self.mode = resolve_mode(self.options.mode)

    def start_run(self, *, job_type: str, name: str | None = None, config: Mapping[str, Any] | None = None) -> WandbRun:
        if self.mode == "online" and not _has_credentials():
            raise RecordingError(
                "wandb mode is online but no credentials were found (set WANDB_API_KEY); "
                "use mode 'offline' and `wandb sync` later"
            )
        import wandb

        settings = wandb.Settings(
            silent=True,
            console="off",
            init_timeout=self.options.init_timeout,
            x_disable_stats=True,
            disable_git=True,
            save_code=False,
            x_save_requirements=False,
            disable_job_creation=True,
        )
        run_dir = self.options.dir or os.environ.get("WANDB_DIR")
        if run_dir:
            Path(run_dir).mkdir(parents=True, exist_ok=True)
        run = wandb.init(
            project=self.options.project,
            entity=self.options.entity,
            job_type=job_type,
            name=name,
            config=dict(config or {}),
            mode=self.mode,
            dir=run_dir,
            reinit="create_new",
            settings=settings,
        )
        return WandbRun(run, self.mode)

    def abandon(self, timeout: float = 2.0) -> None:
        """Tear down this process's W&B service now, stopping it if its teardown does not end in ``timeout``.

        W&B's own exit hook waits for its ``wandb-core`` service, which waits for every run it
        still tries to reach the server for (a minute per run when the server is unreachable).
        ``wandb.teardown()`` is W&B's way to end it (and unregisters that hook); if it does not
        return in time the service process is stopped, which lets it return. Offline run files
        written so far stay for ``wandb sync``. The service handle is W&B's private state, so
        every step is best effort.
        """
        import sys

        wandb = sys.modules.get("wandb")
        if wandb is None:
            return
        try:  # taken first: teardown() forgets the service before it waits for it
            from wandb.sdk import wandb_setup

            process = wandb_setup._singleton._connection._proc._process  # type: ignore[union-attr]
        except Exception:
            process = None
        done = threading.Event()

        def teardown() -> None:
            try:
                wandb.teardown()
            except BaseException:
                pass
            done.set()

        threading.Thread(target=teardown, name="llmops-wandb-teardown", daemon=True).start()
        if done.wait(timeout) or process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except Exception:
            process.kill()
        done.wait(timeout)
