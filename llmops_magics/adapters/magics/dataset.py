"""``%dataset NAME --from VAR_OR_PATH`` and ``%dataset list|show|diff|history|register``.

A name that is also a subcommand (``list``, ``show``…) is registered with
``%dataset register NAME --from …``; the short form reads the first word as a
subcommand whenever it is one.
"""

from __future__ import annotations

from pathlib import Path

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments

from ... import datasets
from .base import split, usage_errors

__all__ = ["DatasetMagics"]

SUBCOMMANDS = ("list", "show", "diff", "history", "register")


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


@magics_class
class DatasetMagics(Magics):
    @magic_arguments()
    @argument(
        "name",
        help="Dataset name (letters, digits, '.', '_', '-'), or list|show|diff|history; "
        "'register NAME' registers a dataset whose name is a subcommand.",
    )
    @argument(
        "--from",
        "-f",
        dest="source",
        required=True,
        help="A variable in the notebook (DataFrame, datasets.Dataset, list of dicts) "
        "or a .csv/.jsonl/.json/.parquet path.",
    )
    @argument("--validation", "-v", type=float, default=None, help="Fraction held out as the validation split.")
    @argument("--seed", type=int, default=0, help="Seed of the train/validation split.")
    @argument("--alias", "-a", action="append", default=[], help="Alias to point at this version (repeatable).")
    @argument("--require", "-r", default="", help="Comma-separated columns the data must have.")
    @argument("--description", "-d", default=None, help="What this version is (metadata, not content).")
    @line_magic
    @usage_errors
    def dataset(self, line):
        """Version a DataFrame, a file or an HF dataset (with a train/validation split), or manage datasets.

        %dataset NAME --from VAR_OR_PATH [--validation 0.2] [--seed N] [--alias A] [--require col,...]
        %dataset register NAME --from VAR_OR_PATH ...   (any name, also list, show, diff or history)
        %dataset list [SEARCH] | show REF | diff REF_A REF_B [--key COL | --whole-rows] | history NAME

        The same rows make the same version, whatever format they came in.
        """
        words = split(line)
        head = words[0] if words else ""
        if head == "register":
            return self._register(words[1:], line)
        if head in SUBCOMMANDS:
            if any(w in ("-f", "--from") or w.startswith("--from=") for w in words[1:]):
                raise UsageError(
                    f"{head!r} is a %dataset subcommand; to register a dataset named {head!r} "
                    f"write %dataset register {head} --from ..."
                )
            commands = {"list": self._list, "show": self._show, "diff": self._diff, "history": self._history}
            return commands[head](words[1:])
        return self._register(words, line)

    def _register(self, words: list[str], line: str):
        args = self.dataset.parser.parse_args(words)
        return datasets.save_dataset(
            args.name,
            self._lookup(args.source),
            validation_fraction=args.validation,
            seed=args.seed,
            required_columns=[c.strip() for c in args.require.split(",") if c.strip()],
            aliases=args.alias,
            description=args.description,
            spec={"magic": f"%dataset {line}".strip(), "from": args.source},
        )

    def _lookup(self, source: str):
        ns = self.shell.user_ns
        if source.isidentifier() and source in ns:
            return ns[source]
        if Path(source).expanduser().exists():
            return source
        raise UsageError(f"--from {source!r} is neither a variable in this notebook nor an existing file")

    def _list(self, words):
        return datasets.list_datasets(_list.parser.parse_args(words).search)

    def _show(self, words):
        return datasets.get_dataset(_show.parser.parse_args(words).ref)

    def _diff(self, words):
        args = _diff.parser.parse_args(words)
        return datasets.diff_datasets(args.ref_a, args.ref_b, key=args.key, detect_key=not args.whole_rows)

    def _history(self, words):
        return datasets.dataset_history(_history.parser.parse_args(words).name)
