"""The OpenAI wire format: request validation, error bodies, response and stream chunks.

Requests are validated strictly (a string where a number belongs is an error,
not a guess) and every rejection is OpenAI's error shape with a 4xx status::

    {"error": {"message": "...", "type": "invalid_request_error", "param": "max_tokens", "code": null}}

Extensions ride in fields OpenAI clients pass through untouched (``extra_body``):
``variables`` (an object) fills the deployment's prompt template on the server;
``min_tokens`` and ``ignore_eos`` (as in vLLM) keep EOS from ending a completion
early, for fixed-length benchmarks. Every response carries ``llmops``
(deployment, arm, version) as well as the ``X-LLMOps-*`` headers.

What vLLM serves is served: ``n`` choices (choice ``i`` of a seeded request samples with
seed + i), ``logprobs``/``top_logprobs`` (up to 20, from the raw logits),
``max_completion_tokens``, ``stream_options.include_usage``, and all of them streamed: a
stream of ``n`` choices (or of several completion prompts, choice ``p * n + i``) tells them
apart by ``choices[].index``, each ends with its own ``finish_reason``, and the usage chunk
counts them all; a streamed chunk's ``logprobs`` hold the values of the tokens that made its
text (``text_offset`` counts from the start of the answer, as without ``stream``). A field the
server does not implement is refused with a 400 naming it unless it holds the value that
asks for nothing (``frequency_penalty: 0``, ``tools: []``, ``NEUTRAL``); nothing is ignored.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticError

from ..errors import ValidationError
from ..inputs import TooLarge, loads

__all__ = [
    "RequestError",
    "CompletionRequest",
    "ChatRequest",
    "ChatMessage",
    "parse_request",
    "parse_body",
    "LoadLoraRequest",
    "UnloadLoraRequest",
    "error_body",
    "new_id",
    "completion_body",
    "chat_body",
    "sse",
    "completion_logprobs",
    "chat_logprobs",
    "MAX_BODY_BYTES",
]

MAX_BODY_BYTES = 1_000_000
MAX_STOP = 4
MAX_N = 16
MAX_LOGPROBS = 20  # vLLM's default cap (OpenAI's completions allow 5, chat 20)

# OpenAI request fields this server does not implement, with the values that ask for nothing
# (a client library may send them at their defaults). Any other value is a 400 naming the
# field; a field that is not OpenAI's at all is a 400 too: nothing a client asks for is ignored.
NEUTRAL: dict[str, tuple[Any, ...]] = {
    "frequency_penalty": (None, 0, 0.0),
    "presence_penalty": (None, 0, 0.0),
    "logit_bias": (None, {}),
    "response_format": (None, {"type": "text"}),
    "tools": (None, []),
    "tool_choice": (None, "none", "auto"),
    "functions": (None, []),
    "function_call": (None, "none", "auto"),
    "parallel_tool_calls": (None, True, False),
    "store": (None, False),
    "metadata": (None, {}),
    "service_tier": (None, "auto", "default"),
    "modalities": (None, ["text"]),
}


class RequestError(ValidationError):
    """A request the server rejects; ``status`` is the HTTP code, the rest fills OpenAI's error body."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        param: str | None = None,
        code: str | None = None,
        type: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.message, self.status, self.param, self.code, self.type = message, status, param, code, type

    def body(self) -> dict[str, Any]:
        return error_body(self.message, self.type, self.param, self.code)


def error_body(message: str, type: str = "invalid_request_error", param: str | None = None, code: str | None = None):
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class TextPart(_Strict):
    type: Literal["text"]
    text: str


class ChatMessage(_Strict):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(p.text for p in self.content)
        return self.content or ""


class StreamOptions(_Strict):
    include_usage: bool | None = None


class _Common(_Strict):
    model: str = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    n: int | None = Field(None, ge=1, le=MAX_N)
    stream: bool | None = None
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    seed: int | None = Field(None, ge=-(2**63), lt=2**64)  # what torch.manual_seed takes
    user: str | None = None
    variables: dict[str, Any] | None = None
    min_tokens: int | None = Field(None, ge=0)
    ignore_eos: bool | None = None

    def stops(self) -> tuple[str, ...]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        if len(stops) > MAX_STOP:
            raise RequestError(f"stop may hold at most {MAX_STOP} sequences, found {len(stops)}", param="stop")
        if any(not s for s in stops):
            raise RequestError("stop sequences must be non-empty strings", param="stop")
        return tuple(stops)

    def check_supported(self) -> None:
        for key, value in (self.model_extra or {}).items():
            if key not in NEUTRAL:
                raise RequestError(f"unknown field {key!r}: this server does not take it", param=key)
            if value not in NEUTRAL[key]:
                raise RequestError(f"{key} is not supported by this server (found {value!r})", param=key)
        if self.stream_options is not None and not self.stream:
            raise RequestError("stream_options is only allowed when stream is true", param="stream_options")

    @property
    def include_usage(self) -> bool:
        return bool(self.stream_options and self.stream_options.include_usage)

    @property
    def choices(self) -> int:
        return self.n or 1

    @property
    def top_k_logprobs(self) -> int | None:
        """None: no log-probabilities; k: the chosen token's and the k most likely ones'."""
        return None


class CompletionRequest(_Common):
    prompt: str | list[str] | None = None
    echo: bool | None = None
    logprobs: int | None = Field(None, ge=0, le=MAX_LOGPROBS)
    best_of: int | None = None
    suffix: str | None = None

    @property
    def top_k_logprobs(self) -> int | None:
        return self.logprobs

    def check_supported(self) -> None:
        super().check_supported()
        if self.echo:
            raise RequestError("echo is not supported by this server", param="echo")
        if (self.best_of or 1) != 1:
            raise RequestError("best_of is not supported by this server", param="best_of")
        if self.suffix:
            raise RequestError("suffix is not supported by this server", param="suffix")
        if self.prompt is None and self.variables is None:
            raise RequestError("you must provide a prompt (or variables for the deployed template)", param="prompt")
        if self.prompt is not None and self.variables is not None:
            raise RequestError("send either prompt or variables, not both", param="variables")
        if isinstance(self.prompt, list) and not self.prompt:
            raise RequestError("prompt must not be an empty list", param="prompt")


class ChatRequest(_Common):
    messages: list[ChatMessage] | None = None
    max_completion_tokens: int | None = Field(None, ge=1)
    logprobs: bool | None = None
    top_logprobs: int | None = Field(None, ge=0, le=MAX_LOGPROBS)

    def check_supported(self) -> None:
        super().check_supported()
        if self.top_logprobs is not None and not self.logprobs:
            raise RequestError("top_logprobs needs logprobs: true", param="top_logprobs")
        if self.messages is None and self.variables is None:
            raise RequestError("you must provide messages (or variables for the deployed template)", param="messages")
        if self.messages is not None and not self.messages:
            raise RequestError("messages must not be empty", param="messages")

    @property
    def token_limit(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens

    @property
    def top_k_logprobs(self) -> int | None:
        return (self.top_logprobs or 0) if self.logprobs else None


_TYPE_TAGS = {"str", "int", "float", "bool", "list", "dict", "none"}


def _param(loc: tuple) -> str:
    parts: list[str] = []
    for p in loc:
        if isinstance(p, int):
            parts.append(f"[{p}]")
        elif p in _TYPE_TAGS or not str(p).replace("_", "").isalnum():
            continue
        else:
            parts.append(("." if parts else "") + str(p))
    return "".join(parts)


class LoadLoraRequest(BaseModel):
    """vLLM's ``/v1/load_lora_adapter`` body; ``lora_path`` is a folder or a registry reference."""

    model_config = ConfigDict(extra="forbid", strict=True)
    lora_name: str = Field(min_length=1)
    lora_path: str = Field(min_length=1)


class UnloadLoraRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    lora_name: str = Field(min_length=1)
    lora_int_id: int | None = None  # vLLM accepts it; names are what this server goes by


def parse_request(cls: type[_Common], raw: bytes) -> Any:
    """A completion or chat request, checked for what this server supports."""
    req = parse_body(cls, raw)
    req.check_supported()
    req.stops()
    return req


def parse_body(cls: type[BaseModel], raw: bytes) -> Any:
    """Decode and validate a JSON body, or raise ``RequestError`` with the field that is wrong."""
    try:
        data = loads(raw, max_bytes=MAX_BODY_BYTES, what="the request body")
    except TooLarge as exc:
        raise RequestError(str(exc), status=413, code="request_too_large") from None
    except ValidationError as exc:  # nested too deeply (checked before parsing), not JSON, not UTF-8
        raise RequestError(f"could not parse the JSON body of your request: {exc}", code="invalid_json") from None
    if not isinstance(data, dict):
        raise RequestError(f"the request body must be a JSON object, found {type(data).__name__}")
    try:  # JSON escapes can spell lone surrogates ("\udcff"), which no tokenizer or log can encode
        json.dumps(data, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise RequestError("the request body holds text that is not valid Unicode (a lone surrogate)") from None
    try:
        req = cls.model_validate(data)
    except PydanticError as exc:
        err = exc.errors()[0]
        param = _param(err["loc"])
        if err["type"] == "missing":
            raise RequestError(f"missing required field {param!r}", param=param, code="missing_field") from None
        if err["type"] == "extra_forbidden":
            raise RequestError(f"unknown field {param!r}", param=param, code="invalid_value") from None
        raise RequestError(f"invalid value for {param!r}: {err['msg']}", param=param, code="invalid_value") from None
    return req


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _body(
    obj: str, rid: str, model: str, choices: list[dict[str, Any]], usage: tuple[int, int] | None, extra: dict[str, Any]
) -> dict[str, Any]:
    out = {
        "id": rid,
        "object": obj,
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "system_fingerprint": extra.get("fingerprint"),
        "llmops": extra,
    }
    if usage is not None:
        out["usage"] = _usage(*usage)
    return out


def completion_body(
    rid: str, model: str, choices: list[dict[str, Any]], usage: tuple[int, int] | None, extra: dict[str, Any]
) -> dict[str, Any]:
    return _body("text_completion", rid, model, choices, usage, extra)


def chat_body(
    rid: str,
    model: str,
    choices: list[dict[str, Any]],
    usage: tuple[int, int] | None,
    extra: dict[str, Any],
    chunk=False,
) -> dict[str, Any]:
    return _body("chat.completion.chunk" if chunk else "chat.completion", rid, model, choices, usage, extra)


def completion_logprobs(tokens: Any, offset: int = 0) -> dict[str, Any]:
    """OpenAI's completions shape: parallel lists of tokens, their log-probabilities, alternatives, offsets.

    ``offset`` is where the first token starts in the answer (a streamed chunk's tokens do not start at 0).
    """
    out: dict[str, list] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    for t in tokens:
        out["tokens"].append(t.token)
        out["token_logprobs"].append(t.logprob)
        out["top_logprobs"].append(dict(t.top))
        out["text_offset"].append(offset)
        offset += len(t.token)
    return out


def chat_logprobs(tokens: Any) -> dict[str, Any]:
    """OpenAI's chat shape: one entry per token with its UTF-8 bytes and its top alternatives."""

    def entry(token: str, logprob: float) -> dict[str, Any]:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8", "surrogatepass"))}

    content = [{**entry(t.token, t.logprob), "top_logprobs": [entry(a, lp) for a, lp in t.top]} for t in tokens]
    return {"content": content, "refusal": None}


def sse(payload: Any) -> str:
    """One server-sent event; ``[DONE]`` ends a stream as OpenAI's does."""
    data = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return f"data: {data}\n\n"
