"""Files given to ``%dataset`` that a parser would choke on: one clear line each, nothing registered.

A 10,000-deep JSONL line, a 2 GB line (a sparse file: nothing is written, and the reader
must stop at its line limit rather than read it whole), bytes that are not UTF-8, a CSV
with a million columns, a .json file over its size limit.
"""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

import llmops_magics as lm

pytestmark = pytest.mark.faults


def _deep(path):
    path.write_text('{"q": "fine", "a": "fine"}\n' + "[" * 10_000 + "]" * 10_000 + "\n")


def _huge_line(path):
    with path.open("wb") as fh:
        fh.write(b'{"q": "')
        fh.truncate(2 * 2**30)  # 2 GiB, sparse: no newline anywhere


def _not_utf8(path):
    path.write_bytes(b'{"q": "ok", "a": "ok"}\n{"q": "caf\xe9", "a": "x"}\n')


def _million_columns(path):
    path.write_text(",".join(f"c{i}" for i in range(1_000_000)) + "\n" + ",".join("1" * 1) + "\n")


def _big_json(path):
    with path.open("wb") as fh:
        fh.write(b"[")
        fh.truncate(300 * 2**20)


CASES = {
    "deep.jsonl": (_deep, "line 2 is nested more than 64 levels deep"),
    "huge.jsonl": (_huge_line, "line 1 is longer than 16 MiB"),
    "latin1.jsonl": (_not_utf8, "line 2 is not UTF-8"),
    "wide.csv": (_million_columns, "1,000,000 columns, at most 10,000"),
    "big.json": (_big_json, "300 MiB is over the 256 MiB limit; write it as .jsonl"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_a_hostile_file_is_one_usage_error_line_and_registers_nothing(ip, tmp_path, name):
    make, message = CASES[name]
    path = tmp_path / name
    make(path)
    counter = lm.registry().change_counter()
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("dataset", f"qa --from {path}")
    assert type(info.value) is UsageError and "\n" not in str(info.value)
    assert message in str(info.value) and str(path) in str(info.value)
    assert lm.registry().change_counter() == counter
