"""``%config LLMOps.…``: the settings of the magics, defaulting to ``[tool.llmops]``."""

from __future__ import annotations

from traitlets import Enum, Float, Unicode, observe
from traitlets.config import Configurable

from ...context import workspaces as context

__all__ = ["LLMOps"]

_NAMES = ("home", "wandb_mode", "wandb_project", "wandb_entity", "wandb_timeout", "wandb_exit_timeout", "judge_model")


class LLMOps(Configurable):
    """Settings shared by every llmops magic. Changing one rebuilds the workspace the API uses."""

    home = Unicode(
        None,
        allow_none=True,
        help="Registry folder. Default: $LLMOPS_HOME, then [tool.llmops] home in the project's "
        "pyproject.toml, then ./.llmops.",
    ).tag(config=True)
    wandb_mode = Enum(
        ["auto", "offline", "online", "disabled"],
        default_value="auto",
        help="W&B mode: 'auto' follows $WANDB_MODE and is otherwise offline (sync later with `wandb sync`); "
        "'online' must be chosen explicitly; 'disabled' records only locally.",
    ).tag(config=True)
    wandb_project = Unicode("llmops", help="W&B project that runs and artifacts are recorded to.").tag(config=True)
    wandb_entity = Unicode(None, allow_none=True, help="W&B entity (team or user); default: yours.").tag(config=True)
    wandb_timeout = Float(
        60.0, help="Seconds a cell waits at most for a W&B call before leaving it to finish in the background."
    ).tag(config=True)
    wandb_exit_timeout = Float(
        15.0,
        help="Seconds the kernel waits at exit for W&B work still queued; the rest is left for `llmops sync`.",
    ).tag(config=True)

    judge_model = Unicode(
        None,
        allow_none=True,
        help="Model that judges when an eval names no --judge-model: a name in [tool.llmops.models], a folder, "
        "'tiny' or an endpoint. Default: $LLMOPS_JUDGE_MODEL, then [tool.llmops] judge_model.",
    ).tag(config=True)

    def __init__(self, **kwargs):
        """Start from the workspace in use, overlay ``%config``/``ipython_config.py`` values, apply once.

        Applying per trait would rebuild the workspace with half-set values (the trait
        defaults for the rest), so notifications are held until every trait is set.
        """
        defaults = context.current().settings
        self._loading = True
        with self.hold_trait_notifications():
            super().__init__(**kwargs)
            for name in _NAMES:
                if name not in self.config.get("LLMOps", {}) and name not in kwargs:
                    self.set_trait(name, getattr(defaults, name))
        self._loading = False
        self._apply()

    @observe(*_NAMES)
    def _changed(self, change):
        if not self._loading:
            self._apply()

    def _apply(self) -> None:
        wanted = {name: getattr(self, name) for name in _NAMES}
        ws = context.current()
        if any(getattr(ws.settings, k) != v for k, v in wanted.items()):
            context.configure(**wanted)
