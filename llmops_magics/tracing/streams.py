"""Streamed ``openai`` answers: the span ends when the stream is used up, closed or fails.

The wrappers hand every chunk on unchanged and keep only what the span needs: each
choice's finish reason, the usage chunk (sent when the request asked for
``stream_options={"include_usage": True}``), and, when content is captured, the text.
Anything else is read from the stream itself (``response``, ``close`` …).
"""

from __future__ import annotations

from typing import Any

from .conventions import OP_CHAT

__all__ = ["TracedStream", "TracedAsyncStream"]


class _Observed:
    def __init__(self, stream: Any, span: Any, operation: str) -> None:
        self._stream, self._span, self._operation = stream, span, operation
        self._texts: dict[int, list[str]] = {}
        self._reasons: dict[int, str] = {}
        self._usage: Any = None
        self._model: str | None = None
        self._id: str | None = None
        self._done = False

    def _observe(self, chunk: Any) -> None:
        self._model = self._model or getattr(chunk, "model", None)
        self._id = self._id or getattr(chunk, "id", None)
        if getattr(chunk, "usage", None) is not None:
            self._usage = chunk.usage
        keep = self._span.captures_content
        for choice in getattr(chunk, "choices", None) or ():
            index = getattr(choice, "index", 0) or 0
            if getattr(choice, "finish_reason", None):
                self._reasons[index] = str(choice.finish_reason)
            if keep:
                if self._operation == OP_CHAT:
                    text = getattr(getattr(choice, "delta", None), "content", None)
                else:
                    text = getattr(choice, "text", None)
                if text:
                    self._texts.setdefault(index, []).append(text)

    def _finish(self, exc: BaseException | None = None) -> None:
        if self._done:
            return
        self._done = True
        order = sorted(set(self._reasons) | set(self._texts))
        self._span.response(
            finish_reasons=[self._reasons.get(i, "") for i in order],
            input_tokens=getattr(self._usage, "prompt_tokens", None),
            output_tokens=getattr(self._usage, "completion_tokens", None),
            outputs=["".join(self._texts.get(i, [])) for i in order],
            model=self._model,
            response_id=self._id,
        )
        self._span.finish(exc)

    def __del__(self) -> None:
        """A stream dropped before its end (a loop that broke out, never closed): its span ends with what was read."""
        if not self.__dict__.get("_done", True):
            try:
                self._finish()
            except Exception:  # never from a finaliser
                pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


class TracedStream(_Observed):
    """A ``Stream`` whose span ends with it."""

    def __iter__(self) -> TracedStream:
        return self

    def __next__(self) -> Any:
        try:
            chunk = next(self._stream)
        except StopIteration:
            self._finish()
            raise
        except BaseException as exc:
            self._finish(exc)
            raise
        self._observe(chunk)
        return chunk

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            self._finish()

    def __enter__(self) -> TracedStream:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class TracedAsyncStream(_Observed):
    """An ``AsyncStream`` whose span ends with it."""

    def __aiter__(self) -> TracedAsyncStream:
        return self

    async def __anext__(self) -> Any:
        try:
            chunk = await self._stream.__anext__()
        except StopAsyncIteration:
            self._finish()
            raise
        except BaseException as exc:
            self._finish(exc)
            raise
        self._observe(chunk)
        return chunk

    async def close(self) -> None:
        try:
            await self._stream.close()
        finally:
            self._finish()

    async def __aenter__(self) -> TracedAsyncStream:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
