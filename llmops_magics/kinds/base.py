"""What a codec does for every kind: load, details for browsers, code snippets."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..context.workspaces import Workspace
    from ..store import Artifact, Registry

__all__ = ["Codec"]

_VARIABLE = {"eval": "evaluation"}  # never shadow the builtin ``eval`` in a user's notebook


class Codec:
    """The generic codec: an artifact is loaded as its registry record."""

    kind = "*"
    getter: str | None = None  # the public function that loads this kind ("get_prompt")
    show_magic: str | None = None  # a magic line that shows one version ("%prompt show {ref}")
    detail_keys: tuple[str, ...] = ()  # metadata the sidebar shows, when that is all it shows

    def load(self, art: Artifact, ws: Workspace) -> Any:
        """The object a notebook works with (a ``PromptVersion``, an ``EvalResult`` …): what the
        public ``getter`` returns for it, else the registry record."""
        if self.getter is None:
            return art
        import llmops_magics

        return getattr(llmops_magics, self.getter)(art.ref, workspace=ws)

    def details(self, art: Artifact, reg: Registry) -> dict[str, Any]:
        """Kind-specific, JSON-ready facts for browsers (the sidebar's detail view)."""
        if not self.detail_keys:
            return {}
        from ..store.records import thaw

        meta = thaw(art.metadata)
        return {k: meta.get(k) for k in self.detail_keys}

    def snippets(self, art: Artifact) -> list[dict[str, str]]:
        """Code that loads, shows or reproduces ``art`` in a notebook cell."""
        variable = _VARIABLE.get(art.kind, art.kind.replace("-", "_"))
        loader = f"llmops_magics.{self.getter}" if self.getter else "llmops_magics.registry().resolve"
        out = [
            {
                "id": "load",
                "label": "Load in Python",
                "code": f'import llmops_magics\n\n{variable} = {loader}("{art.ref}")\n{variable}',
            }
        ]
        if self.show_magic:
            out.append(
                {
                    "id": "show",
                    "label": "Show with magic",
                    "code": "%load_ext llmops_magics\n" + self.show_magic.format(ref=art.ref),
                }
            )
        if art.spec.get("op"):
            out.append(
                {
                    "id": "reproduce",
                    "label": "Reproduce (replay its recorded call)",
                    "code": f'import llmops_magics\n\nllmops_magics.replay("{art.ref}")',
                }
            )
        return out
