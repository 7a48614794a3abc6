"""Base models: the tiny one the project trains itself, and any local Hugging Face folder."""

from .embeddings import cosine_similarity, embed
from .generation import Generation, count_tokens, generate
from .loading import LoadedModel, load_model, resolve_model_source, tokenizer_digest
from .tiny import TINY_MODEL_NAME, TinyModelSpec, build_tiny_model, cached_tiny_model, tiny_base_model
from .world import make_world, task_examples

__all__ = [
    "TINY_MODEL_NAME",
    "Generation",
    "LoadedModel",
    "TinyModelSpec",
    "build_tiny_model",
    "cached_tiny_model",
    "cosine_similarity",
    "embed",
    "count_tokens",
    "generate",
    "load_model",
    "make_world",
    "resolve_model_source",
    "task_examples",
    "tiny_base_model",
    "tokenizer_digest",
]
