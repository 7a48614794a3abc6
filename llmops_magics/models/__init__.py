"""Base models: the tiny one the project trains itself, and any local Hugging Face folder."""

from .tiny import TINY_MODEL_NAME, TinyModelSpec, build_tiny_model, tiny_base_model
from .world import make_world, task_examples

__all__ = ["TINY_MODEL_NAME", "TinyModelSpec", "build_tiny_model", "make_world", "task_examples", "tiny_base_model"]
