"""The attribute names spans carry: the OpenTelemetry GenAI conventions, and the project's own.

The GenAI names are written out here rather than imported from
``opentelemetry.semconv._incubating``: that module is experimental and its names move
between releases, while stored spans (``traces.db``) and every collector reading our
OTLP must keep seeing the same keys. The values follow the conventions as of the
``gen_ai.provider.name`` era (``gen_ai.system`` was renamed to it).

Content (prompts, answers, function arguments and results) goes in ``GEN_AI_INPUT_MESSAGES``
/ ``GEN_AI_OUTPUT_MESSAGES`` / ``LLMOPS_INPUT`` / ``LLMOPS_OUTPUT`` only when capturing
content was asked for (``[tool.llmops.tracing] capture_content``); see ``settings``.
"""

from __future__ import annotations

# --- OpenTelemetry GenAI semantic conventions (https://opentelemetry.io/docs/specs/semconv/gen-ai/)
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_REQUEST_MAX_TOKENS = "gen_ai.request.max_tokens"
GEN_AI_REQUEST_SEED = "gen_ai.request.seed"
GEN_AI_REQUEST_TOP_P = "gen_ai.request.top_p"
GEN_AI_REQUEST_STOP_SEQUENCES = "gen_ai.request.stop_sequences"
GEN_AI_REQUEST_CHOICE_COUNT = "gen_ai.request.choice.count"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_PROMPT_NAME = "gen_ai.prompt.name"  # the prompt template's name (qa), beside our pinned reference
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
ERROR_TYPE = "error.type"
SERVER_ADDRESS = "server.address"
SERVER_PORT = "server.port"

# gen_ai.operation.name values
OP_CHAT = "chat"
OP_TEXT_COMPLETION = "text_completion"

# gen_ai.provider.name values: the protocol a call speaks ("openai" for any OpenAI-compatible
# endpoint, which is what the client sees) or the engine that ran it locally.
PROVIDER_OPENAI = "openai"
PROVIDER_TRANSFORMERS = "transformers"

# --- the project's own attributes
LLMOPS_PROMPT_REF = "llmops.prompt.ref"  # the pinned prompt version that made the input (prompt://qa/3)
LLMOPS_ARTIFACT_REF = "llmops.artifact.ref"  # what the traced work produced or serves (eval://…, deployment://…)
LLMOPS_MODEL_REF = "llmops.model.ref"  # the registered model or adapter version that answered
LLMOPS_OPERATION = "llmops.operation"  # the project operation a span stands for (eval, judge, compare, deploy, …)
LLMOPS_INPUT = "llmops.input"  # a traced function's arguments (content: opt-in)
LLMOPS_OUTPUT = "llmops.output"  # a traced function's result (content: opt-in)
LLMOPS_BATCH_SIZE = "llmops.batch.size"  # prompts answered by one generate() call
LLMOPS_CACHED = "llmops.cache.hits"  # answers an eval took from its generation cache instead of a call
LLMOPS_WORKERS = "llmops.workers"  # forked processes an eval's local answers were generated in (1: this one)

__all__ = [name for name in dir() if name.isupper()]
