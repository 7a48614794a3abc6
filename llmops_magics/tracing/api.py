"""``trace()`` and ``@traced``: spans around a user's own code, in the same traces as the model calls.

Both make ordinary spans of the workspace's tracing (``spans._Scope``), so a model call,
an eval or an ``openai`` client call made inside them is their child, and ``%trace show``
draws the whole tree. A function's arguments and result are content: recorded only when
the workspace captures content.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from . import conventions as C
from .spans import Span, _Scope, prompt_ref_of

__all__ = ["trace", "traced"]


def _pinned_prompt(prompt: Any, workspace: Any) -> str | None:
    if prompt is None or hasattr(prompt, "artifact"):
        return None if prompt is None else prompt.ref
    from ..prompts import get_prompt

    return get_prompt(str(prompt), workspace=workspace).ref


@contextmanager
def trace(
    name: str,
    /,
    *,
    prompt: Any = None,
    artifact: str | None = None,
    workspace: Any = None,
    **attributes: Any,
) -> Iterator[Span]:
    """A span around your own code, stored in the workspace's traces and parent of every traced
    call inside it (model calls, ``openai`` client calls after ``%trace on``, ``@traced`` functions)::

        with llmops_magics.trace("answer question", prompt="qa@production") as span:
            reply = client.chat.completions.create(...)
            span.record_output(reply.choices[0].message.content)

    ``prompt`` (a reference or a ``PromptVersion``) names the prompt version behind the work,
    pinned, and is inherited by the calls inside; ``artifact`` an artifact it belongs to;
    other keywords become attributes.
    """
    attrs: dict[str, Any] = {C.LLMOPS_OPERATION: "trace"}
    ref = _pinned_prompt(prompt, workspace)
    if artifact:
        attrs[C.LLMOPS_ARTIFACT_REF] = str(artifact)
    links = {C.LLMOPS_PROMPT_REF: ref} if ref else None
    with _Scope(Span, name, attrs, workspace=workspace, links=links) as span:
        span.set(attributes)
        yield span


def traced(func: Callable | None = None, /, *, name: str | None = None) -> Any:
    """Trace every call of a function: ``@traced`` or ``@traced(name="retrieve")``.

    The span is named after the function (its qualified name) unless ``name`` is given; its
    arguments and result are recorded when content is captured, and a rendered prompt among
    the arguments links the span to its prompt version. Coroutine functions are traced
    until they finish.
    """

    def decorate(fn: Callable) -> Callable:
        label = name or fn.__qualname__
        signature = inspect.signature(fn)

        def start(args: tuple, kwargs: dict) -> tuple[dict[str, Any], Any]:
            attrs: dict[str, Any] = {C.LLMOPS_OPERATION: "function"}
            ref = next((r for r in map(prompt_ref_of, (*args, *kwargs.values())) if r), None)
            if ref:
                attrs[C.LLMOPS_PROMPT_REF] = ref
            return attrs, (signature, args, kwargs)

        def record_input(span: Span, call: Any) -> None:
            if span.captures_content:
                sig, args, kwargs = call
                try:
                    bound = sig.bind_partial(*args, **kwargs).arguments
                except TypeError:
                    bound = {"args": args, "kwargs": kwargs}
                span.record_input({k: v for k, v in bound.items() if k not in ("self", "cls")})

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                attrs, call = start(args, kwargs)
                with _Scope(Span, label, attrs) as span:
                    record_input(span, call)
                    result = await fn(*args, **kwargs)
                    span.record_output(result)
                    return result

            return async_wrapper

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            attrs, call = start(args, kwargs)
            with _Scope(Span, label, attrs) as span:
                record_input(span, call)
                result = fn(*args, **kwargs)
                span.record_output(result)
                return result

        return wrapper

    return decorate(func) if func is not None else decorate
