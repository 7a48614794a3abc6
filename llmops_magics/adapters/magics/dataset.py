"""``%dataset NAME --from VAR_OR_PATH``, ``%dataset from-log DEPLOYMENT`` and ``%dataset list|show|diff|history|register``.

A name that is also a subcommand (``list``, ``show``…) is registered with
``%dataset register NAME --from …``; the short form reads the first word as a
subcommand whenever it is one.
"""

from __future__ import annotations

from pathlib import Path

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from .base import call, parse_spec, spec_arguments, split, usage_errors

__all__ = ["DatasetMagics"]

SUBCOMMANDS = ("list", "show", "diff", "history", "register", "from-log", "from-traces")


@magic_arguments()
@argument("search", nargs="?", help="Show only names containing this text.")
def _list(line):
    """%dataset list [SEARCH]"""


@magic_arguments()
@argument("ref", help="Dataset reference: name, name/2, name@alias or dataset://name/2.")
def _show(line):
    """%dataset show REF"""


@magic_arguments()
@argument("ref_a")
@argument("ref_b")
@argument(
    "--key",
    "-k",
    default=None,
    help="Column that identifies a row, to report changed rows (default: an id-like column if one is unique).",
)
@argument("--whole-rows", action="store_true", help="Compare whole rows; do not look for an id column.")
def _diff(line):
    """%dataset diff REF_A REF_B [--key COLUMN | --whole-rows]"""


@magic_arguments()
@argument("name")
def _history(line):
    """%dataset history NAME"""


@spec_arguments("llmops_magics.ops.fromlog:FromLogSpec")
def _from_log(line):
    """%dataset from-log DEPLOYMENT [--name N] [--since 2h] [--where feedback=down] [--with-corrections]"""


@spec_arguments("llmops_magics.ops.fromtraces:FromTracesSpec")
def _from_traces(line):
    """%dataset from-traces NAME [--prompt REF] [--since 2h] [--where model=M] [--field COLUMN=SOURCE]"""


@magics_class
class DatasetMagics(Magics):
    @spec_arguments("llmops_magics.ops.datasets:DatasetSpec")
    @line_magic
    @usage_errors
    def dataset(self, line):
        """Version a DataFrame, a file or an HF dataset (with a train/validation split), or manage datasets.

        %dataset NAME --from VAR_OR_PATH [--validation 0.2] [--seed N] [--alias A] [--require col,...]
        %dataset register NAME --from VAR_OR_PATH ...   (any name, also list, show, diff or history)
        %dataset from-log DEPLOYMENT [--name N] [--since 2h] [--where feedback=down] [--with-corrections]
        %dataset from-traces NAME [--prompt REF] [--since 2h] [--where model=M] [--field prompt=input]
        %dataset list [SEARCH] | show REF | diff REF_A REF_B [--key COL | --whole-rows] | history NAME

        The same rows make the same version, whatever format they came in.
        """
        words = split(line)
        head = words[0] if words else ""
        if head == "register":
            return self._save(words[1:], line)
        if head == "from-log":
            from ...ops.fromlog import FROM_LOG

            return FROM_LOG.run(parse_spec(_from_log, words[1:])[0], call(f"%dataset {line}"))
        if head == "from-traces":
            from ...ops.fromtraces import FROM_TRACES

            return FROM_TRACES.run(parse_spec(_from_traces, words[1:])[0], call(f"%dataset {line}"))
        if head in SUBCOMMANDS:
            if any(w in ("-f", "--from") or w.startswith("--from=") for w in words[1:]):
                raise UsageError(
                    f"{head!r} is a %dataset subcommand; to register a dataset named {head!r} "
                    f"write %dataset register {head} --from ..."
                )
            return getattr(self, f"_{head}")(words[1:])
        return self._save(words, line)

    def _save(self, words: list[str], line: str):
        from ...ops.datasets import DATASET

        spec, _ = parse_spec(self.dataset, words)
        return DATASET.run(spec.replace(data=self._lookup(spec.data)), call(f"%dataset {line}"))

    def _lookup(self, source: str):
        ns = self.shell.user_ns
        if source.isidentifier() and source in ns:
            return ns[source]
        if Path(source).expanduser().exists():
            return source
        raise UsageError(f"--from {source!r} is neither a variable in this notebook nor an existing file")

    def _list(self, words):
        return _datasets().list_datasets(_list.parser.parse_args(words).search)

    def _show(self, words):
        return _datasets().get_dataset(_show.parser.parse_args(words).ref)

    def _diff(self, words):
        args = _diff.parser.parse_args(words)
        return _datasets().diff_datasets(args.ref_a, args.ref_b, key=args.key, detect_key=not args.whole_rows)

    def _history(self, words):
        return _datasets().dataset_history(_history.parser.parse_args(words).name)


def _datasets():
    from ... import datasets

    return datasets
