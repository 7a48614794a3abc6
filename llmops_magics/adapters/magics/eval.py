"""``%eval``: evaluate or compare targets on a dataset; ``result = %eval …`` returns the ``EvalResult``."""

from __future__ import annotations

import os

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from .base import split, usage_errors

__all__ = ["EvalMagics"]


def _unescape(text: str) -> str:
    """``\\n`` → newline, leaving non-ASCII text intact (plain ``unicode_escape`` would mangle it)."""
    return text.encode("latin-1", "backslashreplace").decode("unicode_escape")


def _metrics(values: list[str]) -> list[str] | None:
    """Each ``--metrics`` value split like the API splits a string, so ``regex:^\\d{1,3}$`` stays one metric."""
    from ...evaluation.metrics import split_metric_specs

    names = [m for v in values for m in split_metric_specs(v)]
    return names or None


@magics_class
class EvalMagics(Magics):
    @magic_arguments()
    @argument(
        "target", nargs="*", help="Model/adapter reference, local model folder, prompt reference or endpoint URL."
    )
    @argument(
        "--compare", "-c", nargs="+", default=[], help="More targets compared with the first (A) on the same data."
    )
    @argument("--data", "-d", default=None, help="Dataset reference, e.g. qa-task or dataset://qa-task/2.")
    @argument("--split", default=None, help="Split to evaluate (default: validation, then test, then all rows).")
    @argument(
        "--metrics",
        "-m",
        action="append",
        default=[],
        help="Comma-separated metrics (repeatable); regex:PATTERN keeps its commas; write {{ }} for { }.",
    )
    @argument("--prompt", "-p", default=None, help="Prompt reference to render every row with.")
    @argument("--model", default=None, help="Model that runs prompt targets (reference, folder or URL).")
    @argument("--limit", type=int, default=None, help="Evaluate only the first N rows.")
    @argument("--max-new-tokens", type=int, default=32)
    @argument("--temperature", type=float, default=0.0)
    @argument(
        "--seed", type=int, default=None, help="Sampling seed; with --temperature > 0 answers are cached only with one."
    )
    @argument("--batch-size", type=int, default=16, help="Generation batch size (concurrent requests for endpoints).")
    @argument("--stop", action="append", default=[], help="Stop string, escapes allowed: --stop '\\n' (repeatable).")
    @argument("--target-column", default=None, help="Column holding the reference answer (default: answer, …).")
    @argument("--judge-model", default=None, help="Model or endpoint that judges (judge, faithfulness_judge).")
    @argument("--judge-prompt", default=None, help="Judge prompt reference (default prompt://judge-correctness).")
    @argument("--judge-k", type=int, default=3, help="Judge samples per example; their variance is reported.")
    @argument("--judge-temperature", type=float, default=0.7)
    @argument("--endpoint-model", default=None, help="Model name sent to endpoints (default: the first listed).")
    @argument("--api-key-env", default=None, help="Environment variable holding the endpoint's API key.")
    @argument("--name", default=None, help="Name of the eval artifact (default: data and targets).")
    @argument("--no-cache", action="store_true", help="Regenerate every answer instead of using the cache.")
    @argument("--fail-on-regression", action="store_true", help="Fail when B is significantly worse than A.")
    @argument(
        "--min-delta",
        type=float,
        default=None,
        help="Smallest mean difference that can be significant (default: float noise only).",
    )
    @argument("--panel", action="store_true", help="Also display the side-by-side comparison panel.")
    @argument("--show", default=None, metavar="REF", help="Show a recorded eval instead of running one.")
    @argument("--list-metrics", action="store_true", help="List the registered metrics.")
    @line_magic
    @usage_errors
    def eval(self, line):
        """Evaluate a model, adapter, prompt or endpoint on a dataset, or compare several (A/B).

        %eval TARGET [--compare TARGET ...] --data DATASET [--metrics exact_match,rouge_l] [--limit N]
              [--prompt REF] [--model REF] [--judge-model REF] [--fail-on-regression] [--panel] ...
        %eval --show eval://NAME/3 [--panel]      %eval --list-metrics
        """
        from ... import evaluation

        args = self._parse(line)
        if args.list_metrics:
            return evaluation.list_metrics()
        if args.show:
            result = evaluation.get_eval(args.show)
        else:
            result = evaluation.evaluate(args.target, data=args.data, magic=f"%eval {line}", **self._options(args))
        if args.panel:
            self._display_panel(result)
        return result

    def _parse(self, line: str):
        """Shell quoting (``--stop '\\n'``, ``-m 'regex:\\d+'``), unlike ``parse_argstring``, which keeps the quotes."""
        try:
            argv = split(line)
        except ValueError as exc:
            raise UsageError(f"%eval: cannot split the line: {exc}") from None
        return self.eval.parser.parse_args(argv)

    @staticmethod
    def _options(args) -> dict:
        api_key = None
        if args.api_key_env:
            api_key = os.environ.get(args.api_key_env)
            if not api_key:
                raise UsageError(f"--api-key-env: environment variable {args.api_key_env} is not set")
        options = dict(
            compare=args.compare,
            split=args.split,
            model=args.model,
            prompt=args.prompt,
            limit=args.limit,
            max_new_tokens=args.max_new_tokens,
            temperature=args.temperature,
            seed=args.seed,
            batch_size=args.batch_size,
            stop=[_unescape(s) for s in args.stop],
            target_column=args.target_column,
            judge_model=args.judge_model,
            judge_prompt=args.judge_prompt,
            judge_k=args.judge_k,
            judge_temperature=args.judge_temperature,
            endpoint_model=args.endpoint_model,
            api_key=api_key,
            name=args.name,
            cache=not args.no_cache,
            fail_on_regression=args.fail_on_regression,
            min_delta=args.min_delta,
        )
        metrics = _metrics(args.metrics)
        if metrics:
            options["metrics"] = metrics
        return options

    @staticmethod
    def _display_panel(result) -> None:
        from IPython.display import display

        from ..widgets import eval_panel

        display(eval_panel(result))
