"""Recording runs and artifacts to an experiment tracker (W&B), never at the cost of the local record."""

from .base import Recorder, RecordingWarning, Run
from .memory import MemoryRecorder
from .safe import SafeRecorder
from .wandb_recorder import WandbOptions, WandbRecorder, resolve_mode

__all__ = [
    "Recorder",
    "Run",
    "RecordingWarning",
    "MemoryRecorder",
    "SafeRecorder",
    "WandbOptions",
    "WandbRecorder",
    "resolve_mode",
]
