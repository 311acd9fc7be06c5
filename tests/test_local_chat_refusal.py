"""Without the chat service, chat falls back to the completion engine's model — unless that
model is one the chat benchmark measured as unable to chat (Gemma 3 270M recites its
instructions): then a clear error says why and what to do, instead of a useless reply."""

from __future__ import annotations

from typing import Any

import pytest

from app.ui.cloud import LocalFallback
from forecode_core.chat.types import ChatError, ChatParams
from forecode_core.models import MODELS, USEFUL_CHAT, chat_refusal


@pytest.mark.parametrize(
    ("file_name", "refused"),
    [
        ("gemma-3-270m-q4_k_m.gguf", True),  # 0 % of the chat benchmark
        ("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", False),  # 49 %
        ("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", False),  # 78 %
        ("my-own-model.Q5_K_M.gguf", False),  # not measured: the user's pick may chat
        ("", False),
    ],
)
def test_chat_refusal_follows_the_measured_pass_rate(file_name: str, refused: bool) -> None:
    why = chat_refusal(file_name)
    assert bool(why) is refused
    if refused:
        assert "Gemma 3 270M" in why and "0%" in why


def test_every_registry_model_has_a_measured_chat_rate() -> None:
    assert all(spec.chat_pass_rate is not None for spec in MODELS.values())
    assert 0 < USEFUL_CHAT < 1


class _Engine:
    """The engine seam as LocalFallback reads it: state, model_path; chat is never reached
    when the model is refused."""

    state = "ready"

    def __init__(self, path: str) -> None:
        self.model_path = path
        self.chats: list[Any] = []

    def chat(self, *args: Any, **kwargs: Any) -> int:
        self.chats.append((args, kwargs))
        return 1


def test_the_fallback_refuses_a_model_that_cannot_chat_with_a_clear_reason() -> None:
    engine = _Engine("/models/gemma-3-270m-q4_k_m.gguf")
    fallback = LocalFallback(lambda: engine)
    assert fallback.available  # it still completes; only chat is refused
    with pytest.raises(ChatError, match="too small to chat") as caught:
        fallback.chat(ChatParams(conversation_id="c", messages=()))
    assert "Restart Chat Service" in str(caught.value)
    assert engine.chats == []  # nothing sent to the worker
