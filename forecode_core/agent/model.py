"""The agent's model over any chat stream (``forecode_core.chat.types``' events): the
editor's service call, the bench's client, a test's scripted stream."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence

from forecode_core.agent.loop import ModelAnswer
from forecode_core.chat.types import ChatMessage, ChatParams
from forecode_core.streams import Delta, Done, Event, FinishReason, StreamError

__all__ = ["ChatStreamModel"]

_ids = itertools.count(1)


class ChatStreamModel:
    """``AgentModel`` over ``chat(params) -> events``; ``model``: the service's model id
    ("" for its default)."""

    def __init__(self, chat: Callable[[ChatParams], Iterable[Event]], model: str = "") -> None:
        self._chat = chat
        self._model = model
        self._conversation = f"agent-{next(_ids)}"

    def answer(self, messages: Sequence[ChatMessage], max_tokens: int) -> ModelAnswer:
        params = ChatParams(
            conversation_id=self._conversation,
            messages=tuple(messages),
            max_tokens=max_tokens,
            model=self._model,
        )
        parts: list[str] = []
        done: Done | None = None
        try:
            for event in self._chat(params):
                if isinstance(event, Delta):
                    parts.append(event.text)
                elif isinstance(event, Done):
                    done = event
        except StreamError as exc:
            return ModelAnswer("".join(parts), error=exc.message)
        if done is None:
            return ModelAnswer("".join(parts), error="the answer ended without finishing")
        if done.finish_reason == FinishReason.CANCELLED:
            return ModelAnswer("".join(parts), error="cancelled")
        usage = done.usage
        tokens = int(usage.get("prompt_tokens", 0)) + int(usage.get("completion_tokens", 0))
        return ModelAnswer("".join(parts), tokens, done.finish_reason != FinishReason.LENGTH)
