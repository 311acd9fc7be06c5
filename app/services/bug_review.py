"""The bug finder's tier-2 runner: the local engine's chat as a blocking ``ask`` (worker
threads only), and one file's review of its changed functions.

Choice (issue 16): the local engine's chat (``local_models.client.EngineClient.chat``, the
engine owner's engine) rather than the service: the review runs only when the editor is idle
and nothing else asks the model, the local worker is already warm with the completion model,
and a one-line answer of about 30 tokens costs one prompt prefill (~1 k tokens) per sample —
no gRPC hop, no second model loaded. The worker's chat supersedes older chats, so the owner
never starts a review while another request runs, and stops between samples when one starts.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from forecode_core.bugs.functions import (
    changed_functions,
    changed_lines,
    functions_in,
    head_version,
)
from forecode_core.bugs.runner import Ask, Review, Score, context_for, review_function
from forecode_core.chat.types import ChatMessage, ChatParams, Role
from forecode_core.chat.types import EngineChatClient as ChatClient

__all__ = [
    "ChatClient",
    "EngineAsk",
    "ModelError",
    "ScoringEngine",
    "engine_score",
    "review_changes",
]

MAX_TOKENS = 64
TIMEOUT_S = 120.0


class ModelError(RuntimeError):
    """The model did not answer (an error, a timeout, or the review was stopped)."""


class EngineAsk:
    """``ask(system, user, temperature) -> answer`` through an ``EngineClient``'s chat; blocks
    the calling (worker) thread up to ``timeout_s``; ``stop()`` (any thread) cancels the
    request in flight."""

    _ids = itertools.count(1)

    def __init__(self, client: ChatClient, timeout_s: float = TIMEOUT_S) -> None:
        self._client = client
        self._timeout_s = timeout_s
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._current: int | None = None
        self.model_name = ""

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            rid = self._current
        if rid is not None:
            self._client.cancel(rid)

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def __call__(self, system: str, user: str, temperature: float) -> str:
        if self._stopped.is_set():
            raise ModelError("stopped")
        done = threading.Event()
        result: dict[str, str] = {}

        def on_done(_rid: int, reply: Any) -> None:
            result["text"] = str(getattr(reply, "text", ""))
            done.set()

        def on_error(_rid: int, message: str) -> None:
            result["error"] = message
            done.set()

        params = ChatParams(
            conversation_id=f"bug-review-{next(self._ids)}",
            messages=(ChatMessage(Role.SYSTEM, system), ChatMessage(Role.USER, user)),
            max_tokens=MAX_TOKENS,
            temperature=temperature,
        )
        rid = self._client.chat(
            params,
            on_chunk=lambda _r, _t: None,
            on_done=on_done,
            on_error=on_error,
            max_tokens=MAX_TOKENS,
        )
        with self._lock:
            self._current = rid
        try:
            if not done.wait(self._timeout_s):
                self._client.cancel(rid)
                raise ModelError(f"no answer in {self._timeout_s:.0f} s")
        finally:
            with self._lock:
                self._current = None
        if self._stopped.is_set():
            raise ModelError("stopped")
        if "error" in result:
            raise ModelError(result["error"])
        return result["text"]


class ScoringEngine(Protocol):
    """What the score needs of an engine (``local_models.engine.Engine``)."""

    def tokenize(self, text: str, *, add_bos: bool = False) -> list[int]: ...

    def score(
        self,
        prompt: Sequence[int],
        continuation: Sequence[int],
        should_stop: Callable[[], bool] | None = None,
    ) -> list[tuple[float, float]] | None: ...


def engine_score(engine: ScoringEngine, should_stop: Callable[[], bool] | None = None) -> Score:
    """The surprise score's ``score(prefix, continuation)`` on an engine: the two texts
    tokenized apart (the same cut for HEAD's line and the buffer's), the continuation's
    tokens' log-probabilities after the prefix."""

    def score(prefix: str, continuation: str) -> list[tuple[float, float]] | None:
        prompt = engine.tokenize(prefix, add_bos=True)
        return engine.score(prompt, engine.tokenize(continuation), should_stop)

    return score


def review_changes(
    ask: Ask,
    path: str,
    text: str,
    diff: str | None,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    head: str | None = None,
) -> list[Review]:
    """Review the functions of ``text`` that ``diff`` (``git diff -U0 HEAD`` of the file;
    None: an untracked file, every function) changes; with ``head`` (HEAD's copy of the
    file) each function's small replacements are the fill question. Worker threads only."""
    functions = functions_in(path, text)
    targets = functions if diff is None else changed_functions(path, text, changed_lines(diff))
    out: list[Review] = []
    for function in targets:
        if should_stop():
            break
        context = context_for(text, function, functions)
        before = None if head is None else head_version(path, head, function)
        try:
            review = review_function(
                ask,
                text,
                function,
                context,
                path=path,
                should_stop=should_stop,
                before=before,
            )
        except ModelError:
            break
        out.append(review)
    return out
