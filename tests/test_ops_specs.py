"""Every operation's four fronts come from its one spec: magic flags, CLI flags, API keywords, replay fields.

Each test runs over the whole catalog, so an operation added later is held to the same
promise without a new test.
"""

from __future__ import annotations

import argparse
import inspect
import json

import pytest
from IPython.core.error import UsageError

import llmops_magics as lm
from llmops_magics.adapters.cli import build_parser
from llmops_magics.adapters.magics import MAGICS
from llmops_magics.ops.argv import add_options, flags_of, parse_line, redact_command
from llmops_magics.ops.catalog import CATALOG, Call, get
from llmops_magics.ops.spec import SECRET, Spec, option

OPS = [get(name) for name in CATALOG]
FRONT_ONLY = {"finetune": {"wait"}, "eval": {"wait", "panel", "show", "list_metrics"}}
# Operations reached through another magic's subcommand: %model compare, %deploy ab, %dataset from-log|from-traces.
SUBCOMMANDS = {
    "compare": "llmops_magics.adapters.magics.model:_compare",
    "ab": "llmops_magics.adapters.magics.deploy:_ab",
    "from-log": "llmops_magics.adapters.magics.dataset:_from_log",
    "from-traces": "llmops_magics.adapters.magics.dataset:_from_traces",
    "pii-scan": "llmops_magics.adapters.magics.pii:_scan",
    "pii-redact": "llmops_magics.adapters.magics.pii:_redact",
}


def _magic(op):
    if op.name in SUBCOMMANDS:
        module, attr = SUBCOMMANDS[op.name].split(":")
        return getattr(__import__(module, fromlist=[attr]), attr)
    for cls in MAGICS:
        for kind in ("line", "cell"):
            fn = cls.magics.get(kind, {}).get(op.name)
            if fn is not None:
                return getattr(cls, fn)
    raise AssertionError(f"no magic %{op.name}")


def _cli(op) -> argparse.ArgumentParser:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[op.name]


def _expected(op, front):
    return {
        o.name: o.flag or o.name for o in op.spec.options() if front in o.fronts and not (front == "magic" and o.cell)
    }


@pytest.mark.parametrize("op", OPS, ids=CATALOG)
def test_the_magic_takes_exactly_the_specs_flags(op):
    parser = _magic(op).parts()["parser"]
    flags = flags_of(parser)
    for dest in FRONT_ONLY.get(op.name, ()):
        flags.pop(dest)
    assert flags == _expected(op, "magic")
    assert all(a.default is argparse.SUPPRESS for a in parser._actions if a.dest in flags)  # defaults: the spec's


@pytest.mark.parametrize("op", OPS, ids=CATALOG)
def test_the_cli_subcommand_takes_exactly_the_specs_flags(op):
    parser = _cli(op)
    assert flags_of(parser) == _expected(op, "cli")
    assert all(a.default is argparse.SUPPRESS for a in parser._actions if a.dest in flags_of(parser))


@pytest.mark.parametrize("op", OPS, ids=CATALOG)
def test_the_python_function_takes_the_specs_fields_with_the_same_defaults(op):
    function = getattr(lm, op.function)
    params = dict(inspect.signature(function).parameters)
    assert params.pop("workspace").default is None
    assert list(params) == [o.name for o in op.spec.options()]
    for opt in op.spec.options():
        default = params[opt.name].default
        if opt.required:
            assert default is inspect.Parameter.empty, opt.name
        else:
            assert default == opt.default and type(default) is type(opt.default), opt.name


@pytest.mark.parametrize("op", OPS, ids=CATALOG)
def test_replay_reads_back_every_stored_field(op):
    stored = {o.name for o in op.spec.options() if o.stored}
    spec = op.spec.from_dict({o.name: _sample(o) for o in op.spec.options() if o.required})
    record = Call(command=f"%{op.name} …").record(spec)
    assert set(record["args"]) == stored
    again = op.spec.from_dict(json.loads(json.dumps(record["args"])))
    assert again.to_dict() == spec.to_dict()


@pytest.mark.parametrize("op", OPS, ids=CATALOG)
def test_the_magics_question_mark_help_lists_every_option(ip, op):
    from IPython.core.oinspect import getdoc

    doc = _magic(op).getdoc() if op.name in SUBCOMMANDS else getdoc(ip.find_magic(op.name))
    for opt in op.spec.options():
        if "magic" in opt.fronts and not opt.cell:
            assert (opt.flag or opt.name) in doc, opt.name


@pytest.mark.parametrize("op", OPS, ids=CATALOG)
def test_every_option_has_help_and_a_flag_or_a_position(op):
    for opt in op.spec.options():
        assert opt.help.strip() and (opt.flag.startswith("--") or opt.positional), opt.name


def _sample(opt):
    return ["x", "y"] if opt.kind == "list" else "x"


# ---------------------------------------------------------------------- the mechanism itself


@pytest.fixture
def demo():
    from dataclasses import dataclass

    @dataclass(frozen=True, kw_only=True)
    class DemoSpec(Spec):
        op = "demo"
        name: str = option(positional=True, help="a name")
        steps: int = option(3, help="how many")
        rate: float | None = option(None, help="a rate")
        tags: tuple[str, ...] = option((), flag="--tag", help="tags")
        key: str | None = option(None, secret=True, help="a secret")
        fast: bool = option(False, help="go fast")

    return DemoSpec


def test_a_flag_given_as_text_and_the_same_value_from_python_make_the_same_spec(demo):
    parser = argparse.ArgumentParser()
    add_options(parser, demo, "cli")
    values, _ = parse_line(parser, ["n", "--steps", "7", "--rate", "0.5", "--tag", "a", "--tag", "b", "--fast"], demo)
    assert demo(**values) == demo(name="n", steps=7, rate=0.5, tags=("a", "b"), fast=True)


def test_a_flag_left_out_takes_the_specs_default(demo):
    parser = argparse.ArgumentParser()
    add_options(parser, demo, "cli")
    values, _ = parse_line(parser, ["n"], demo)
    assert values == {"name": "n"} and demo(**values).steps == 3


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("steps", "many", "steps must be an integer, found 'many'"), ("rate", True, "rate must be a number")],
)
def test_a_value_of_the_wrong_type_names_the_field(demo, field, value, message):
    with pytest.raises(lm.ValidationError, match=message):
        demo(name="n", **{field: value})


def test_an_unknown_or_missing_argument_is_refused_naming_it(demo):
    with pytest.raises(lm.ValidationError, match=r"unknown argument.*bogus"):
        demo.from_dict({"name": "n", "bogus": 1})
    with pytest.raises(lm.ValidationError, match="demo needs name"):
        demo.from_dict({})


def test_a_secret_is_stored_as_stars_and_hidden_in_the_typed_line(demo):
    spec = demo(name="n", key="s3cret")
    assert spec.to_dict()["key"] == SECRET and "s3cret" not in spec.call_text("demo")
    assert redact_command("%demo n --key s3cret", demo) == "%demo n --key ***"


# ---------------------------------------------------------------------- fronts end to end


@pytest.mark.slow
def test_a_quoted_finetune_name_names_the_run_without_its_quotes(ip, qa_dataset):
    job = ip.run_line_magic("finetune", '--data qa --max-steps 1 --logging-steps 1 --name "my run" --wait')
    art = job.result.artifact
    assert (job.name, art.metadata["run_name"], art.spec["args"]["name"]) == ("my run",) * 3
    assert art.ref == "adapter://my-run/1"


def test_a_magic_error_is_one_plain_usage_error_line(ip):
    with pytest.raises(UsageError) as info:
        ip.run_line_magic("deploy", "model://m --port 99999")
    assert type(info.value) is UsageError and "\n" not in str(info.value)
    assert "port must be an integer from 0 to 65535" in str(info.value)
