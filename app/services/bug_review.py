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
from forecode_core.bugs.runner import Ask, Review, Score, Scoring, Target, context_for, review
from forecode_core.chat.types import ChatMessage, ChatParams, Role
from forecode_core.chat.types import EngineChatClient as ChatClient

__all__ = [
    "ChatClient",
    "EngineAsk",
    "EngineScore",
    "ModelError",
    "ScoringEngine",
    "engine_score",
    "review_changes",
    "scoring_for",
]

MAX_TOKENS = 64
TIMEOUT_S = 120.0


class ModelError(RuntimeError):
    """The model did not answer (an error, a timeout, or the review was stopped)."""


class ScoreClient(Protocol):
    """What ``EngineScore`` needs of ``local_models.client.EngineClient``."""

    def score(
        self,
        prefix: str,
        continuation: str,
        *,
        on_done: Callable[[int, Any], None],
        on_error: Callable[[int, str], None],
    ) -> int: ...

    def cancel(self, request_id: int) -> None: ...


class _Blocking:
    """One request at a time through an ``EngineClient``, waited for on the calling (worker)
    thread up to ``timeout_s``; ``stop()`` (any thread) cancels the request in flight."""

    def __init__(self, client: Any, timeout_s: float = TIMEOUT_S) -> None:
        self._client: Any = client
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

    def _wait(self, send: Callable[[Callable[..., None], Callable[..., None]], int]) -> Any:
        """``send(on_done, on_error)`` starts the request; its ``Done``."""
        if self._stopped.is_set():
            raise ModelError("stopped")
        done = threading.Event()
        result: dict[str, Any] = {}

        def on_done(_rid: int, reply: Any) -> None:
            result["done"] = reply
            done.set()

        def on_error(_rid: int, message: str) -> None:
            result["error"] = message
            done.set()

        rid = send(on_done, on_error)
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
        return result["done"]


class EngineAsk(_Blocking):
    """``ask(system, user, temperature) -> answer`` through an ``EngineClient``'s chat; blocks
    the calling (worker) thread up to ``timeout_s``; ``stop()`` (any thread) cancels the
    request in flight."""

    _ids = itertools.count(1)

    def __init__(self, client: ChatClient, timeout_s: float = TIMEOUT_S) -> None:
        super().__init__(client, timeout_s)

    def __call__(self, system: str, user: str, temperature: float) -> str:
        params = ChatParams(
            conversation_id=f"bug-review-{next(self._ids)}",
            messages=(ChatMessage(Role.SYSTEM, system), ChatMessage(Role.USER, user)),
            max_tokens=MAX_TOKENS,
            temperature=temperature,
        )

        def send(on_done: Callable[..., None], on_error: Callable[..., None]) -> int:
            return int(
                self._client.chat(
                    params,
                    on_chunk=lambda _r, _t: None,
                    on_done=on_done,
                    on_error=on_error,
                    max_tokens=MAX_TOKENS,
                )
            )

        return str(getattr(self._wait(send), "text", ""))


class EngineScore(_Blocking):
    """``score(prefix, continuation)`` (``forecode_core.bugs.runner.Score``) through an
    ``EngineClient``'s score request (the worker's ``Engine.score``); blocks the calling
    (worker) thread up to ``timeout_s``; ``stop()`` (any thread) cancels it."""

    def __init__(self, client: ScoreClient, timeout_s: float = TIMEOUT_S) -> None:
        super().__init__(client, timeout_s)

    def __call__(self, prefix: str, continuation: str) -> list[tuple[float, float]] | None:
        def send(on_done: Callable[..., None], on_error: Callable[..., None]) -> int:
            return int(self._client.score(prefix, continuation, on_done=on_done, on_error=on_error))

        reply = self._wait(send)
        if getattr(reply, "stop_reason", "") == "cancelled":
            return None
        rows = getattr(reply, "metrics", {}).get("scores")
        if not isinstance(rows, list):
            raise ModelError("the engine's score came without scores")
        return [(float(lp), float(top)) for lp, top in rows]


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


def scoring_for(ask: object) -> Scoring | None:
    """The surprise score on the same engine client as ``ask`` (an ``EngineAsk``; its stop
    stops the score too), None for any other ask."""
    if not isinstance(ask, EngineAsk):
        return None
    score = EngineScore(ask._client, ask._timeout_s)
    score._stopped = ask._stopped  # one stop for both
    return Scoring(score)


def review_changes(
    ask: Ask | None,
    path: str,
    text: str,
    diff: str | None,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    head: str | None = None,
    score: Score | None = None,
) -> list[Review]:
    """Review the functions of ``text`` that ``diff`` (``git diff -U0 HEAD`` of the file;
    None: an untracked file, every function) changes; with ``head`` (HEAD's copy of the
    file) each function's small replacements are scored (``score``) and, where no score
    agreed, the fill question. Worker threads only."""
    functions = functions_in(path, text)
    targets = functions if diff is None else changed_functions(path, text, changed_lines(diff))
    out: list[Review] = []
    for function in targets:
        if should_stop():
            break
        context = context_for(text, function, functions)
        before = None if head is None else head_version(path, head, function)
        try:
            found = review(
                Target(text, function, context, path, before),
                ask,
                None if score is None else Scoring(score),
                should_stop,
            )
        except ModelError:
            break
        out.append(found)
    return out
